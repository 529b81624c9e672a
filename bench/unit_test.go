package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"walraft/core/env"
	"walraft/core/node"
	"walraft/core/osenv"
)

func TestValidate(t *testing.T) {
	ok := DefaultConfig()
	standalone := ok
	standalone.Mode = ModeStandalone
	standalone.Nodes = 0 // ignored in standalone mode
	tests := []struct {
		name string
		edit func(*Config)
		base Config
		bad  bool
	}{
		{"default", func(*Config) {}, ok, false},
		{"standalone ignores nodes", func(*Config) {}, standalone, false},
		{"acks 0", func(c *Config) { c.Acks = node.AcksNone }, ok, false},
		{"kill in window", func(c *Config) { c.KillLeaderAfter = time.Second }, ok, false},
		{"no mode", func(c *Config) { c.Mode = "" }, ok, true},
		{"one-node cluster", func(c *Config) { c.Nodes = 1 }, ok, true},
		{"huge cluster", func(c *Config) { c.Nodes = MaxNodes + 1 }, ok, true},
		{"no producers", func(c *Config) { c.Producers = 0 }, ok, true},
		{"too many producers", func(c *Config) { c.Producers = MaxProducers + 1 }, ok, true},
		{"zero duration", func(c *Config) { c.Duration = 0 }, ok, true},
		{"negative warmup", func(c *Config) { c.Warmup = -time.Second }, ok, true},
		{"acks 2", func(c *Config) { c.Acks = 2 }, ok, true},
		{"record smaller than header", func(c *Config) { c.Size = HeaderSize - 1 }, ok, true},
		{"record too large", func(c *Config) { c.Size = MaxSize + 1 }, ok, true},
		{"bad path", func(c *Config) { c.Path = 7 }, ok, true},
		{"no partitions", func(c *Config) { c.Partitions = 0 }, ok, true},
		{"procs untouched", func(c *Config) { c.Procs = 0 }, ok, false},
		{"node's election timeout", func(c *Config) { c.ElectionTimeout = 0 }, ok, false},
		{"election timeout too short", func(c *Config) { c.ElectionTimeout = 50 * time.Millisecond }, ok, true},
		{"negative procs", func(c *Config) { c.Procs = -1 }, ok, true},
		{"kill after window", func(c *Config) { c.KillLeaderAfter = c.Duration }, ok, true},
		{"kill standalone", func(c *Config) { c.KillLeaderAfter = time.Second }, standalone, true},
		{"stall in window", func(c *Config) { c.StallLeaderDiskAfter, c.StallFor = time.Second, time.Second }, ok, false},
		{"stall without duration", func(c *Config) { c.StallLeaderDiskAfter = time.Second }, ok, true},
		{"stall duration alone", func(c *Config) { c.StallFor = time.Second }, ok, true},
		{"stall after window", func(c *Config) { c.StallLeaderDiskAfter, c.StallFor = c.Duration, time.Second }, ok, true},
		{"stall standalone", func(c *Config) { c.StallLeaderDiskAfter, c.StallFor = time.Second, time.Second }, standalone, true},
		{"critical path", func(c *Config) { c.CriticalPath = true }, ok, false},
		{"critical path standalone", func(c *Config) { c.CriticalPath = true }, standalone, true},
		{"critical path of 5 nodes", func(c *Config) { c.CriticalPath, c.Nodes = true, 5 }, ok, true},
		{"critical path of 2 partitions", func(c *Config) { c.CriticalPath, c.Partitions = true, 2 }, ok, true},
		{"stall and kill", func(c *Config) {
			c.StallLeaderDiskAfter, c.StallFor, c.KillLeaderAfter = time.Second, time.Second, 2*time.Second
		}, ok, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.base
			tc.edit(&c)
			err := c.Validate()
			if tc.bad != (err != nil) {
				t.Fatalf("Validate() = %v, want error %v", err, tc.bad)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for s, want := range map[string]node.Acks{"0": node.AcksNone, "1": node.AcksLeader, "all": node.AcksAll, "-1": node.AcksAll} {
		if got, err := ParseAcks(s); err != nil || got != want {
			t.Errorf("ParseAcks(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if _, err := ParseAcks("2"); !errors.Is(err, ErrConfig) {
		t.Errorf("ParseAcks(2) = %v, want ErrConfig", err)
	}
	for s, want := range map[string]node.Path{"batch": node.PathBatch, "legacy": node.PathLegacy, "pipelined": node.PathPipelined} {
		if got, err := ParsePath(s); err != nil || got != want || got.String() != s {
			t.Errorf("ParsePath(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if _, err := ParsePath("fast"); !errors.Is(err, ErrConfig) {
		t.Errorf("ParsePath(fast) = %v, want ErrConfig", err)
	}
}

func TestRecord(t *testing.T) {
	for _, size := range []int{HeaderSize, 17, 24, 27, 256, 1000} {
		r := makeRecord(7, 42, size)
		if len(r) != size || !matchRecord(r, 7, 42, size) {
			t.Fatalf("size %d: record does not match itself", size)
		}
		if matchRecord(r, 7, 43, size) || matchRecord(r, 8, 42, size) || matchRecord(r, 7, 42, size+1) {
			t.Fatalf("size %d: record matches another producer, seq or size", size)
		}
		for i := HeaderSize; i < size; i++ { // every filler byte is checked
			r[i] ^= 1
			if matchRecord(r, 7, 42, size) {
				t.Fatalf("size %d: flipped filler byte %d still matches", size, i)
			}
			r[i] ^= 1
		}
	}
	if bytes.Equal(makeRecord(1, 1, 64)[HeaderSize:], makeRecord(1, 2, 64)[HeaderSize:]) {
		t.Fatal("filler does not depend on the sequence number")
	}
}

// fakeLog is a partition log for verifyPartition: records by offset and a
// HWM.
type fakeLog struct {
	recs  [][]byte
	hwm   int64
	err   error // returned by every fetch when set
	calls int
}

func (l *fakeLog) fetch(off int64, maxBytes int) ([]node.Record, int64, error) {
	l.calls++
	if l.err != nil {
		return nil, l.hwm, l.err
	}
	if off > l.hwm {
		return nil, l.hwm, fmt.Errorf("%w: %d", node.ErrOffsetOutOfRange, off)
	}
	var out []node.Record
	size := 0
	for o := off; o < l.hwm; o++ {
		if len(out) > 0 && size+len(l.recs[o]) > maxBytes {
			break
		}
		size += len(l.recs[o])
		out = append(out, node.Record{Offset: o, Value: l.recs[o]})
	}
	return out, l.hwm, nil
}

func TestVerifyPartition(t *testing.T) {
	const size = 64
	// Ten records from two producers at offsets 0..9.
	build := func() (*fakeLog, []ack) {
		l := &fakeLog{hwm: 10}
		var acks []ack
		for i := range 10 {
			p, seq := uint64(i%2+1), uint64(i/2+1)
			l.recs = append(l.recs, makeRecord(p, seq, size))
			acks = append(acks, ack{off: int64(i), producer: p, seq: seq})
		}
		// Out of order, as producers report them.
		acks[0], acks[9] = acks[9], acks[0]
		return l, acks
	}
	tests := []struct {
		name               string
		edit               func(*fakeLog, []ack) []ack
		verified, lost     int64
		wantErr, wantSamps bool
	}{
		{"all there", func(*fakeLog, []ack) []ack { return nil }, 10, 0, false, false},
		{"overwritten", func(l *fakeLog, _ []ack) []ack { l.recs[3] = makeRecord(9, 9, size); return nil }, 9, 1, false, true},
		{"torn", func(l *fakeLog, _ []ack) []ack { l.recs[5] = l.recs[5][:size-1]; return nil }, 9, 1, false, true},
		{"HWM behind", func(l *fakeLog, _ []ack) []ack { l.hwm = 7; return nil }, 7, 3, false, true},
		{"two acks at one offset", func(_ *fakeLog, a []ack) []ack {
			return append(a, ack{off: 4, producer: 3, seq: 1})
		}, 10, 1, false, true},
		{"fetch fails", func(l *fakeLog, _ []ack) []ack { l.err = errors.New("disk on fire"); return nil }, 0, 0, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, acks := build()
			if more := tc.edit(l, acks); more != nil {
				acks = more
			}
			v, err := verifyPartition(acks, size, l.fetch)
			if tc.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if v.verified != tc.verified || v.lost != tc.lost {
				t.Fatalf("verified %d lost %d, want %d and %d (%v)", v.verified, v.lost, tc.verified, tc.lost, v.samples)
			}
			if tc.wantSamps != (len(v.samples) > 0) {
				t.Fatalf("samples %v", v.samples)
			}
		})
	}
	// Small fetches: verification pages through the log.
	l, acks := build()
	v, err := verifyPartition(acks, size, func(off int64, _ int) ([]node.Record, int64, error) {
		return l.fetch(off, 2*size)
	})
	if err != nil || v.verified != 10 || v.lost != 0 || l.calls != 5 {
		t.Fatalf("paged: verified %d lost %d err %v after %d fetches; want 10, 0, nil, 5", v.verified, v.lost, err, l.calls)
	}
}

func TestCountingFS(t *testing.T) {
	loop := osenv.NewLoop()
	defer loop.Close()
	ofs, err := osenv.NewFS(t.TempDir(), loop)
	if err != nil {
		t.Fatal(err)
	}
	fs := NewCountingFS(ofs)
	done := make(chan error, 8)
	f, err := fs.Create("a/log")
	if err != nil {
		t.Fatal(err)
	}
	g, err := fs.Create("b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	f.Sync(func(err error) { done <- err })
	g.Sync(func(err error) { done <- err })
	fs.SyncDir(func(err error) { done <- err })
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if fs.Syncs() != 2 || fs.DirSyncs() != 1 || fs.Writes() != 1 {
		t.Fatalf("counted %d syncs, %d dir syncs and %d writes, want 2, 1 and 1", fs.Syncs(), fs.DirSyncs(), fs.Writes())
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fs.CloseAll(); n != 1 {
		t.Fatalf("CloseAll closed %d files, want 1 (the other was closed already)", n)
	}
	if _, err := f.Write([]byte("y")); !errors.Is(err, env.ErrClosed) {
		t.Fatalf("write after CloseAll: %v, want ErrClosed", err)
	}
	h, err := fs.Open("a/log")
	if err != nil {
		t.Fatal(err)
	}
	if h.Size() != 1 {
		t.Fatalf("reopened size %d, want 1", h.Size())
	}
	h.Close()
}

func TestNodeTracer(t *testing.T) {
	tr := newNodeTracer(false, true)
	tr.Trace(env.Event{Kind: "wal.notice", B: 0, C: 9}) // a follower's batch: not counted
	tr.Trace(env.Event{Kind: "raft.role", A: int64(node.RoleLeader)})
	for _, e := range []env.Event{
		{Kind: "produce", B: 10}, {Kind: "produce", B: 12},
		{Kind: "wal.batch", B: 10, C: 14},
		{Kind: "produce", B: 15},
		{Kind: "wal.notice", B: 10, C: 14},
		{Kind: "propose", B: 10},
		{Kind: "wal.batch", B: 15, C: 15},
		{Kind: "wal.notice", B: 15, C: 15},
		{Kind: "apply", C: 10},
		{Kind: "apply.legacy", C: 15}, // never proposed here: not timed
	} {
		time.Sleep(time.Millisecond)
		tr.Trace(e)
	}
	tr.Trace(env.Event{Kind: "raft.role", A: int64(node.RoleFollower)})
	tr.Trace(env.Event{Kind: "wal.notice", B: 16, C: 20})
	if b, r := tr.batches.Load(), tr.records.Load(); b != 2 || r != 6 {
		t.Fatalf("counted %d batches of %d records, want 2 of 6", b, r)
	}
	for name, want := range map[string]struct {
		s   *timeSum
		n   int64
		min time.Duration // total
	}{
		// One sleep of 1 ms before each event: produce 10 -> cut is 2
		// sleeps, produce 15 -> its cut 3; the cuts -> notices 2 and 1;
		// propose 10 -> apply 10 is 3.
		"queue": {&tr.queue, 2, 5 * time.Millisecond},
		"wal":   {&tr.walSync, 2, 3 * time.Millisecond},
		"raft":  {&tr.raft, 1, 3 * time.Millisecond},
	} {
		if n, d := want.s.snapshot(); n != want.n || d < want.min {
			t.Errorf("%s: %d samples totalling %v, want %d of at least %v", name, n, d, want.n, want.min)
		}
	}
	sa := newNodeTracer(true, false)
	sa.Trace(env.Event{Kind: "wal.notice", B: 0, C: 3})
	if sa.batches.Load() != 1 || sa.records.Load() != 4 {
		t.Fatal("standalone batches are not counted")
	}
}

// fakeFile is an env.File for the group-commit release test; only Write is
// used.
type fakeFile struct{ env.File }

func TestGroupCommitRelease(t *testing.T) {
	tests := []struct {
		files, quorum int
		synced        []uint64
		want          uint64
	}{
		{1, 1, []uint64{3}, 3},
		{3, 2, []uint64{5, 2, 0}, 2},
		{3, 2, []uint64{0, 4, 4}, 4},
		{3, 2, []uint64{5, 0, 0}, 0},
		{3, 3, []uint64{5, 4, 1}, 1},
	}
	for _, tc := range tests {
		var runErr error
		g := &groupCommit{quorum: tc.quorum, err: &runErr, fsyncs: new(atomic.Int64)}
		for i := range tc.files {
			g.files = append(g.files, &gcFile{f: fakeFile{}, synced: tc.synced[i]})
		}
		chans := make([]chan struct{}, 6)
		for i := range chans {
			chans[i] = make(chan struct{})
			g.waiters = append(g.waiters, gcWaiter{done: chans[i]})
		}
		g.release()
		for i, ch := range chans {
			select {
			case <-ch:
				if uint64(i) >= tc.want {
					t.Fatalf("%+v: record %d acked", tc, i)
				}
			default:
				if uint64(i) < tc.want {
					t.Fatalf("%+v: record %d not acked", tc, i)
				}
			}
		}
		if g.acked != tc.want || len(g.waiters) != 6-int(tc.want) {
			t.Fatalf("%+v: acked %d with %d waiters left", tc, g.acked, len(g.waiters))
		}
	}
}

// TestGroupCommitStages: a record that passes a stage is not acked but
// appended to the next stage, in order, and acked only when that one
// releases it.
func TestGroupCommitStages(t *testing.T) {
	var runErr error
	fsyncs := new(atomic.Int64)
	second := &groupCommit{quorum: 2, err: &runErr, fsyncs: fsyncs}
	for range 3 {
		// syncing: kick leaves the file alone, so nothing is written.
		second.files = append(second.files, &gcFile{f: fakeFile{}, syncing: true})
	}
	first := &groupCommit{quorum: 1, err: &runErr, fsyncs: fsyncs, then: second}
	first.files = []*gcFile{{f: fakeFile{}, synced: 2}}
	chans := make([]chan struct{}, 3)
	for i := range chans {
		chans[i] = make(chan struct{})
		first.waiters = append(first.waiters, gcWaiter{rec: []byte{byte(i)}, done: chans[i]})
	}
	first.release()
	if len(second.waiters) != 2 || second.waiters[0].rec[0] != 0 || second.waiters[1].rec[0] != 1 {
		t.Fatalf("second stage holds %+v, want records 0 and 1", second.waiters)
	}
	for i, ch := range chans {
		select {
		case <-ch:
			t.Fatalf("record %d acked after the first stage only", i)
		default:
		}
	}
	second.files[0].synced, second.files[2].synced = 2, 1
	second.release()
	for i, ch := range chans {
		select {
		case <-ch:
			if i >= 1 {
				t.Fatalf("record %d acked, only record 0 is on 2 of 3 files", i)
			}
		default:
			if i < 1 {
				t.Fatalf("record %d not acked", i)
			}
		}
	}
}

func TestResultOutput(t *testing.T) {
	r := Result{Mode: ModeCluster, Nodes: 3, Acks: "all", Path: "batch", Producers: 64, Size: 1024, Partitions: 1,
		Seconds: 20, MsgsPerSec: 12345.6, MBPerSec: 12.6, Latency: Latency{P50Ms: 1.5, P99Ms: 4.25, P999Ms: 12.5, MaxMs: 150},
		Acked: 250000, Verified: 250000, FsyncsPerSec: 3000, MeanBatch: 9.5, KilledLeader: 1, NewLeader: 2}
	r.setCeiling(CeilingResult{OneFile: CeilingRun{MsgsPerSec: 24691.2}, Quorum: CeilingRun{MsgsPerSec: 12345.6},
		WALThenQuorum: CeilingRun{MsgsPerSec: 6172.8}})
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"mode", "nodes", "acks", "path", "producers", "size", "msgs_per_sec", "p50_ms",
		"p99_ms", "p999_ms", "acked", "verified", "lost", "fsyncs_per_sec", "mean_batch", "mb_per_sec", "max_ms", "ceiling"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, js)
		}
	}
	if c := m["ceiling"].(map[string]any); c["ratio_one_file"].(float64) != 0.5 || c["ratio_quorum"].(float64) != 1 ||
		c["ratio_wal_then_quorum"].(float64) != 2 {
		t.Errorf("ceiling ratios: %v", c)
	}
	var b strings.Builder
	if err := r.Print(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"12,346 msg/s", "p99 4.25 ms", "max 150 ms", "lost 0", "leader 1 killed", "we are at 50%"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("Print output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestGroup(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567", -1500: "-1,500"} {
		if got := group(in); got != want {
			t.Errorf("group(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
