package reclog

import (
	"fmt"
	"testing"
	"time"

	"walraft/core/env"
	"walraft/sim"
)

// harness runs a Log over a simulated disk. Completions are delivered
// directly from the disk's completion events, and dropped once the
// incarnation that registered them has crashed.
type harness struct {
	t     testing.TB
	sched *sim.Scheduler
	disk  *sim.Disk
	rng   *sim.Rand
	gen   int
	fs    env.FS
}

func newHarness(t testing.TB, seed uint64, cfg sim.DiskConfig) *harness {
	st := sim.NewStreams(seed)
	s := sim.NewScheduler()
	h := &harness{t: t, sched: s, disk: sim.NewDisk(s, st.Stream("disk"), cfg), rng: st.Stream("test")}
	h.fs = h.newFS()
	return h
}

func (h *harness) newFS() env.FS {
	g := h.gen
	return h.disk.FS(func(fn func()) {
		if h.gen == g {
			fn()
		}
	})
}

// crash loses the volatile state (per the disk's TornKeepProb) and gives the
// next incarnation a fresh FS.
func (h *harness) crash() {
	h.powerOff()
	h.boot()
}

// powerOff crashes the disk without starting the next incarnation: until
// boot, the disk has no page cache (damage done now shows in the boot's
// reads).
func (h *harness) powerOff() {
	h.gen++
	h.disk.Crash()
	h.fs = nil
}

// boot gives the next incarnation its FS.
func (h *harness) boot() { h.fs = h.newFS() }

func (h *harness) open(opts Options) *Log {
	h.t.Helper()
	l, err := Open(h.fs, "log", opts)
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	return l
}

// run runs events until cond holds (or an hour of virtual time passes).
func (h *harness) run(cond func() bool) {
	h.t.Helper()
	if !h.sched.RunWhile(func() bool { return !cond() }, h.sched.Now()+time.Hour) {
		h.t.Fatalf("condition not reached by %v", h.sched.Now())
	}
}

// sync calls l.Sync and runs until it completes.
func (h *harness) sync(l *Log) error {
	h.t.Helper()
	var res error
	done := false
	l.Sync(func(err error) { res, done = err, true })
	h.run(func() bool { return done })
	return res
}

// truncate calls l.Truncate and runs until it completes.
func (h *harness) truncate(l *Log, seq uint64) error {
	h.t.Helper()
	var res error
	done := false
	l.Truncate(seq, func(err error) { res, done = err, true })
	h.run(func() bool { return done })
	return res
}

// records reads every record of l.
func records(t testing.TB, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	err := l.Scan(l.First(), func(seq uint64, p []byte) error {
		if seq != l.First()+uint64(len(out)) {
			return fmt.Errorf("scan gave seq %d after %d records", seq, len(out))
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

// payload returns a deterministic payload for seq of n bytes; distinct
// seqs (and versions) give distinct payloads.
func payload(version int, seq uint64, n int) []byte {
	p := make([]byte, n)
	x := uint64(version)*0x9e3779b97f4a7c15 ^ seq*0xbf58476d1ce4e5b9
	for i := range p {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[i] = byte(x)
	}
	if n >= 12 {
		p[0], p[1], p[2], p[3] = byte(version), byte(version>>8), 'v', ':'
		for i := range 8 {
			p[4+i] = byte(seq >> (8 * i))
		}
	}
	return p
}
