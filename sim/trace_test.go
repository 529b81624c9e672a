package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"walraft/core/env"
)

// chatter is a busy test node: on random timers it sends a message to a
// random peer, appends it to its log file and sometimes syncs; it answers
// some messages it receives. Everything it does is traced.
type chatter struct {
	id    env.NodeID
	e     env.Env
	peers []env.NodeID
	f     env.File // nil once a write failed
	sent  uint64
}

func bootChatter(peers []env.NodeID) BootFunc {
	return func(id env.NodeID, e env.Env) (Receiver, error) {
		n := &chatter{id: id, e: e, peers: peers}
		f, err := e.FS.Open("log")
		if errors.Is(err, env.ErrNotExist) {
			f, err = e.FS.Create("log")
			if err == nil {
				e.FS.SyncDir(func(err error) { n.trace("dirsync", errCode(err), 0, 0) })
			}
		}
		if err != nil {
			return nil, err
		}
		n.f = f
		n.trace("boot", f.Size(), 0, 0)
		n.arm()
		return n, nil
	}
}

func errCode(err error) int64 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, env.ErrIO):
		return 1
	case errors.Is(err, env.ErrClosed):
		return 2
	}
	return 3
}

func (n *chatter) trace(kind string, a, b, c int64) {
	n.e.Tracer.Trace(env.Event{Kind: kind, A: a, B: b, C: c})
}

func (n *chatter) arm() {
	d := time.Duration(1+n.e.Rand.Uint64()%20) * time.Millisecond
	n.e.Clock.AfterFunc(d, n.tick)
}

func (n *chatter) tick() {
	to := n.peers[n.e.Rand.Uint64()%uint64(len(n.peers))]
	n.sent++
	msg := binary.LittleEndian.AppendUint64(nil, n.sent)
	n.e.Net.Send(to, msg)
	n.trace("tick", int64(to), int64(n.sent), n.e.Clock.Now().Microseconds())
	if n.f != nil {
		if _, err := n.f.Write(msg); err != nil {
			n.trace("write.err", errCode(err), 0, 0)
			n.f = nil
		} else if n.e.Rand.Uint64()%3 == 0 {
			size := n.f.Size()
			n.f.Sync(func(err error) { n.trace("sync", size, errCode(err), 0) })
		}
	}
	n.arm()
}

func (n *chatter) Receive(from env.NodeID, msg []byte) {
	n.trace("recv", int64(from), int64(binary.LittleEndian.Uint64(msg)), 0)
	if n.e.Rand.Uint64()%4 == 0 {
		n.e.Net.Send(from, msg)
	}
}

// busyResult is what a busy run leaves behind.
type busyResult struct {
	hash   uint64
	n      uint64
	events []TraceEvent
	net    NetStats
	disk   DiskStats // summed over the nodes
}

// runBusy runs five chatters for d of virtual time under random faults:
// crashes with delayed restarts, pauses, partitions, one-way cuts, clock
// rate changes, on lossy links and faulty disks.
func runBusy(t testing.TB, seed uint64, record bool, d time.Duration) busyResult {
	t.Helper()
	cfg := DefaultWorldConfig()
	cfg.Net = LinkConfig{Latency: time.Millisecond, Jitter: 2 * time.Millisecond, DropProb: 0.05, DupProb: 0.05,
		ReorderProb: 0.1, ReorderDelay: 20 * time.Millisecond}
	cfg.Trace.Record = record
	w, err := NewWorld(seed, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	disk := DiskConfig{SyncMin: 100 * time.Microsecond, SyncMax: 2 * time.Millisecond,
		StallProb: 0.02, StallMin: 10 * time.Millisecond, StallMax: 100 * time.Millisecond,
		WriteEIOProb: 0.001, SyncEIOProb: 0.01, TornKeepProb: 0.5, BlockSize: 64}
	ids := []env.NodeID{1, 2, 3, 4, 5}
	for _, id := range ids {
		if err := w.AddNode(id, bootChatter(ids), disk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	rng := w.Streams().Stream("test/faults")
	s := w.Sched()
	var fault func()
	fault = func() {
		id := ids[rng.IntN(len(ids))]
		switch rng.IntN(7) {
		case 0:
			if w.Crash(id) == nil {
				_ = w.RestartAfter(id, rng.Duration(10*time.Millisecond, 300*time.Millisecond))
			}
		case 1:
			if w.Pause(id) == nil {
				s.After(rng.Duration(time.Millisecond, 200*time.Millisecond), func() { _ = w.Resume(id) })
			}
		case 2:
			_ = w.Net().PartitionMinority(id, ids[(int(id)+rng.IntN(3))%len(ids)])
		case 3:
			w.Net().Heal()
		case 4:
			_ = w.Net().Isolate(id)
		case 5:
			_ = w.SetClockRate(id, RateOne-100_000+rng.Int64N(200_001))
		case 6:
			_ = w.Net().Cut(id, ids[(int(id)+rng.IntN(4))%len(ids)])
		}
		s.After(rng.Duration(20*time.Millisecond, 200*time.Millisecond), fault)
	}
	s.After(50*time.Millisecond, fault)
	s.RunFor(d)
	r := busyResult{hash: w.Trace().Hash(), n: w.Trace().Len(), events: w.Trace().Events(), net: w.Net().Stats()}
	for _, id := range ids {
		ds := w.Disk(id).Stats()
		r.disk.Syncs += ds.Syncs
		r.disk.Crashes += ds.Crashes
		r.disk.TornKept += ds.TornKept
		r.disk.Stalls += ds.Stalls
		r.disk.SyncErrors += ds.SyncErrors
	}
	return r
}

func TestTraceSameSeedSameHash(t *testing.T) {
	a := runBusy(t, 11, true, 5*time.Second)
	b := runBusy(t, 11, true, 5*time.Second)
	if i, diff := FirstDivergence(a.events, b.events); diff {
		t.Fatalf("same seed diverged at event %d of %d/%d:\n  a: %v\n  b: %v", i, len(a.events), len(b.events), at(a.events, i), at(b.events, i))
	}
	if a.hash != b.hash || a.n != b.n || uint64(len(a.events)) != a.n {
		t.Fatalf("same seed: hashes %x/%x over %d/%d events", a.hash, b.hash, a.n, b.n)
	}
	// The workload is busy: every fault and component took part.
	if a.net.Delivered < 1000 || a.net.DroppedBy[DropCut] == 0 || a.net.DroppedBy[DropLoss] == 0 ||
		a.net.DroppedBy[DropDown] == 0 || a.net.Duplicated == 0 || a.net.Reordered == 0 {
		t.Errorf("network not exercised: %+v", a.net)
	}
	if a.disk.Syncs < 500 || a.disk.Crashes == 0 || a.disk.TornKept == 0 || a.disk.Stalls == 0 || a.disk.SyncErrors == 0 {
		t.Errorf("disk not exercised: %+v", a.disk)
	}
	kinds := map[string]int{}
	for _, e := range a.events {
		kinds[e.Kind]++
	}
	for _, k := range []string{"boot", "tick", "recv", "sync", "proc.crash", "proc.boot", "proc.pause", "proc.resume",
		"net.partition", "net.heal", "net.isolate", "net.cut", "clock.rate", "net.drop", "net.dup", "net.deliver"} {
		if kinds[k] == 0 {
			t.Errorf("no %q event in the trace", k)
		}
	}
	// A run that only hashes gets the same hash.
	if c := runBusy(t, 11, false, 5*time.Second); c.hash != a.hash || c.events != nil {
		t.Fatalf("hash-only run: hash %x (want %x), %d events kept", c.hash, a.hash, len(c.events))
	}
}

func at(evs []TraceEvent, i int) string {
	if i < len(evs) {
		return evs[i].String()
	}
	return "(end)"
}

func TestTraceDifferentSeedsDifferentHashes(t *testing.T) {
	seen := map[uint64]uint64{}
	for seed := uint64(1); seed <= 5; seed++ {
		h := runBusy(t, seed, false, time.Second).hash
		if prev, ok := seen[h]; ok {
			t.Fatalf("seeds %d and %d have the same hash %x", prev, seed, h)
		}
		seen[h] = seed
	}
}

func TestFirstDivergence(t *testing.T) {
	ev := func(at time.Duration, kind string) TraceEvent { return TraceEvent{At: at, Node: 1, Kind: kind} }
	base := []TraceEvent{ev(1, "a"), ev(2, "b"), ev(3, "c")}
	changed := func(i int, f func(*TraceEvent)) []TraceEvent {
		c := append([]TraceEvent(nil), base...)
		f(&c[i])
		return c
	}
	tests := []struct {
		name   string
		a, b   []TraceEvent
		want   int
		wantOK bool
	}{
		{"equal", base, base, -1, false},
		{"both empty", nil, nil, -1, false},
		{"first", base, changed(0, func(e *TraceEvent) { e.At = 9 }), 0, true},
		{"middle node", base, changed(1, func(e *TraceEvent) { e.Node = 2 }), 1, true},
		{"last text", base, changed(2, func(e *TraceEvent) { e.Text = "x" }), 2, true},
		{"field D", base, changed(2, func(e *TraceEvent) { e.D = 1 }), 2, true},
		{"prefix", base, base[:2], 2, true},
		{"longer", base[:1], base, 1, true},
		{"one empty", nil, base, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, ok := FirstDivergence(tt.a, tt.b)
			if i != tt.want || ok != tt.wantOK {
				t.Fatalf("FirstDivergence = %d, %v; want %d, %v", i, ok, tt.want, tt.wantOK)
			}
		})
	}
	// On a real trace.
	a := runBusy(t, 3, true, 500*time.Millisecond).events
	b := append([]TraceEvent(nil), a...)
	k := len(b) * 2 / 3
	b[k].A++
	if i, ok := FirstDivergence(a, b); !ok || i != k {
		t.Fatalf("FirstDivergence on a real trace = %d, %v; want %d", i, ok, k)
	}
}

func TestTraceEventString(t *testing.T) {
	tests := []struct {
		e    TraceEvent
		want string
	}{
		{TraceEvent{At: 12345678901, Node: 2, Kind: "wal.sync", A: 1, B: -2}, "12.345678901s n2 wal.sync a=1 b=-2 c=0 d=0"},
		{TraceEvent{At: 3 * time.Second, Kind: "net.heal"}, "3.000000000s world net.heal a=0 b=0 c=0 d=0"},
		{TraceEvent{At: 5, Node: 10, Kind: "raft.info", D: 7, Text: "1 became \"leader\"\n"},
			`0.000000005s n10 raft.info a=0 b=0 c=0 d=7 "1 became \"leader\"\n"`},
		{TraceEvent{At: -1500 * time.Millisecond, Node: 1, Kind: "k"}, "-1.500000000s n1 k a=0 b=0 c=0 d=0"},
	}
	for _, tt := range tests {
		if got := tt.e.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestTraceHashCoversEveryField(t *testing.T) {
	base := TraceEvent{At: 5, Node: 1, Kind: "k", A: 1, B: 2, C: 3, D: 4, Text: "t"}
	variants := map[string]TraceEvent{"base": base}
	for name, f := range map[string]func(*TraceEvent){
		"At": func(e *TraceEvent) { e.At++ }, "Node": func(e *TraceEvent) { e.Node++ },
		"Kind": func(e *TraceEvent) { e.Kind = "j" }, "A": func(e *TraceEvent) { e.A++ },
		"B": func(e *TraceEvent) { e.B++ }, "C": func(e *TraceEvent) { e.C++ },
		"D": func(e *TraceEvent) { e.D++ }, "Text": func(e *TraceEvent) { e.Text = "u" },
		// Length prefixes: moving a byte from Kind to Text changes the hash.
		"Kind/Text boundary": func(e *TraceEvent) { e.Kind, e.Text = "kt", "" },
	} {
		v := base
		f(&v)
		variants[name] = v
	}
	hashes := map[uint64]string{}
	for name, e := range variants {
		tr, err := NewTrace(TraceConfig{})
		must(t, err)
		tr.Add(e)
		if prev, ok := hashes[tr.Hash()]; ok {
			t.Errorf("variants %q and %q hash equal", prev, name)
		}
		hashes[tr.Hash()] = name
	}
	// Order matters.
	x, y := base, variants["A"]
	t1, _ := NewTrace(TraceConfig{})
	t2, _ := NewTrace(TraceConfig{})
	t1.Add(x)
	t1.Add(y)
	t2.Add(y)
	t2.Add(x)
	if t1.Hash() == t2.Hash() {
		t.Error("hash ignores event order")
	}
}

func TestTraceKeeps(t *testing.T) {
	tests := []struct {
		cfg        TraceConfig
		add        int
		wantEvents int
		wantLast   []int64 // A of the ring's events
	}{
		{TraceConfig{}, 5, 0, []int64{}},
		{TraceConfig{Record: true}, 5, 5, []int64{}},
		{TraceConfig{Ring: 3}, 2, 0, []int64{0, 1}},
		{TraceConfig{Ring: 3}, 7, 0, []int64{4, 5, 6}},
		{TraceConfig{Record: true, Ring: 1}, 4, 4, []int64{3}},
	}
	for _, tt := range tests {
		tr, err := NewTrace(tt.cfg)
		must(t, err)
		for i := 0; i < tt.add; i++ {
			tr.Add(TraceEvent{Kind: "k", A: int64(i)})
		}
		var last []int64
		for _, e := range tr.Last() {
			last = append(last, e.A)
		}
		if len(tr.Events()) != tt.wantEvents || fmt.Sprint(last) != fmt.Sprint(tt.wantLast) || tr.Len() != uint64(tt.add) {
			t.Errorf("%+v after %d: %d events, last %v, len %d; want %d, %v", tt.cfg, tt.add, len(tr.Events()), last, tr.Len(), tt.wantEvents, tt.wantLast)
		}
	}
}

func TestTraceAddDoesNotAllocate(t *testing.T) {
	tr, err := NewTrace(TraceConfig{Ring: 16})
	must(t, err)
	e := TraceEvent{At: 1, Node: 2, Kind: "wal.sync", A: 1, B: 2, C: 3, D: 4, Text: "some text"}
	for i := 0; i < 16; i++ {
		tr.Add(e) // fill the ring
	}
	if n := testing.AllocsPerRun(1000, func() { tr.Add(e) }); n != 0 {
		t.Fatalf("Trace.Add allocates %v times per event", n)
	}
}

func BenchmarkTraceAdd(b *testing.B) {
	tr, _ := NewTrace(TraceConfig{})
	e := TraceEvent{At: 1, Node: 2, Kind: "wal.sync", A: 1, B: 2, C: 3, D: 4}
	for b.Loop() {
		e.At++
		tr.Add(e)
	}
}

// BenchmarkBusyWorld measures the simulator's overhead on the busy
// workload (1s of virtual time per op).
func BenchmarkBusyWorld(b *testing.B) {
	var events uint64
	for b.Loop() {
		events += runBusy(b, 1, false, time.Second).n
	}
	b.ReportMetric(float64(events)/float64(b.N), "events/op")
}

// TestMixStringWords pins mixString to its definition, word by word: the
// length, then each 8 bytes little-endian, the last word zero-padded. The
// trace hash of every golden run depends on it, for every length.
func TestMixStringWords(t *testing.T) {
	ref := func(h uint64, s string) uint64 {
		h = mix(h, uint64(len(s)))
		for i := 0; i < len(s); i += 8 {
			var w uint64
			for k := 0; k < 8 && i+k < len(s); k++ {
				w |= uint64(s[i+k]) << (8 * k)
			}
			h = mix(h, w)
		}
		return h
	}
	src := "raft.send.append.response/\x00\xff\x80wal.truncate:gate.open;node.recover.cut"
	for n := 0; n <= len(src); n++ {
		for off := 0; off+n <= len(src); off += 7 {
			s := src[off : off+n]
			if got, want := mixString(hashSeed, s), ref(hashSeed, s); got != want {
				t.Fatalf("mixString(%q) = %#x, want %#x", s, got, want)
			}
		}
	}
}
