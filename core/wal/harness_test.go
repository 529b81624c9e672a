package wal

import (
	"bytes"
	"fmt"
	"time"

	"walraft/core/env"
	"walraft/sim"
)

// harness runs a WAL over a simulated disk and a clock on the scheduler.
// A crash drops every callback of the incarnation that registered it.
type harness struct {
	t      tb
	sched  *sim.Scheduler
	disk   *sim.Disk
	rng    *sim.Rand
	gen    int
	events []env.Event // trace of the current incarnation
}

func newHarness(t tb, seed uint64, cfg sim.DiskConfig) *harness {
	st := sim.NewStreams(seed)
	s := sim.NewScheduler()
	return &harness{t: t, sched: s, disk: sim.NewDisk(s, st.Stream("disk"), cfg), rng: st.Stream("test")}
}

// env returns the environment of the current incarnation.
func (h *harness) env() env.Env {
	g := h.gen
	deliver := func(fn func()) {
		if h.gen == g {
			fn()
		}
	}
	return env.Env{
		Clock:  &testClock{h: h, gen: g},
		FS:     h.disk.FS(deliver),
		Net:    nopNet{},
		Rand:   h.rng,
		Tracer: tracerFunc(func(e env.Event) { h.events = append(h.events, e) }),
	}
}

// crash loses volatile state (per TornKeepProb) and every pending callback.
func (h *harness) crash() {
	h.gen++
	h.disk.Crash()
	h.events = nil
}

func (h *harness) open(cfg Config, onNotice func(BatchNotice)) *WAL {
	h.t.Helper()
	w, err := Open(h.env(), "wal/t/0", "t", 0, cfg, onNotice)
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	return w
}

// run runs events until cond holds (at most an hour of virtual time).
func (h *harness) run(cond func() bool) {
	h.t.Helper()
	if !h.sched.RunWhile(func() bool { return !cond() }, h.sched.Now()+time.Hour) {
		h.t.Fatalf("condition not reached by %v", h.sched.Now())
	}
}

// drain runs events until none is left.
func (h *harness) drain() {
	for h.sched.Step() {
	}
}

// all reads every record of w.
func all(t tb, w *WAL) [][]byte {
	t.Helper()
	var out [][]byte
	for off := w.Start(); off < w.End(); {
		recs, err := w.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(recs) == 0 {
			t.Fatalf("Read(%d) below End %d returned nothing", off, w.End())
		}
		out = append(out, recs...)
		off += int64(len(recs))
	}
	return out
}

// durableRecords recovers, on a scratch disk, what a crash right now would
// leave of h's WAL (clean crash: the durable image only).
func (h *harness) durableRecords() [][]byte {
	h.t.Helper()
	s := sim.NewScheduler()
	d := sim.NewDisk(s, sim.NewStreams(1).Stream("scratch"), sim.DiskConfig{})
	fs := d.FS(nil)
	for _, name := range h.disk.DurableFiles() {
		img, _ := h.disk.DurableImage(name)
		f, err := fs.Create(name)
		if err != nil {
			h.t.Fatal(err)
		}
		f.Write(img)
	}
	e := env.Env{Clock: &schedClock{s}, FS: fs, Net: nopNet{}, Rand: sim.NewStreams(1).Stream("r"), Tracer: env.NopTracer{}}
	w, err := Open(e, "wal/t/0", "t", 0, Config{}, nil)
	if err != nil {
		h.t.Fatalf("recovering the durable image: %v", err)
	}
	return all(h.t, w)
}

// tb is what the harness needs of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

type testClock struct {
	h   *harness
	gen int
}

func (c *testClock) Now() time.Duration { return c.h.sched.Now() }

func (c *testClock) AfterFunc(d time.Duration, f func()) env.Timer {
	g := c.gen
	it := c.h.sched.After(d, func() {
		if c.h.gen == g {
			f()
		}
	})
	return &testTimer{it: it, s: c.h.sched}
}

type schedClock struct{ s *sim.Scheduler }

func (c *schedClock) Now() time.Duration { return c.s.Now() }
func (c *schedClock) AfterFunc(d time.Duration, f func()) env.Timer {
	return &testTimer{it: c.s.After(d, f), s: c.s}
}

type testTimer struct {
	it *sim.Item
	s  *sim.Scheduler
}

func (t *testTimer) Stop() bool { return t.it.Cancel(t.s) }

type nopNet struct{}

func (nopNet) Send(env.NodeID, []byte) {}

type tracerFunc func(env.Event)

func (f tracerFunc) Trace(e env.Event) { f(e) }

// rec returns a distinct record: version v (bumped by truncations), unique
// id, n bytes (at least 16).
func rec(v, id, n int) []byte {
	n = max(n, 16)
	p := make([]byte, n)
	copy(p, fmt.Sprintf("%04x%011x|", v&0xffff, id))
	for i := 16; i < n; i++ {
		p[i] = byte(id*31 + i)
	}
	return p
}

// recVersionOf returns the version rec encoded.
func recVersionOf(p []byte) int {
	var v int
	fmt.Sscanf(string(p[:4]), "%04x", &v)
	return v
}

func equalRecs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func diffRecs(got, want [][]byte) string {
	for i := range min(len(got), len(want)) {
		if !bytes.Equal(got[i], want[i]) {
			return fmt.Sprintf("record %d: got %.16q, want %.16q", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("got %d records, want %d", len(got), len(want))
}
