package wal

import (
	"errors"
	"testing"
	"time"

	"walraft/core/env"
	"walraft/sim"
)

// TestDeferredAppends checks AppendDeferred's promises, each against the
// simulated disk's durable image (ground truth), not the WAL's own
// DurableEnd: a batch of deferred appends is answered (and noticed) after
// its write with no fsync; a batch holding an ordinary Append waits for its
// fsync, which also covers earlier deferred records; deferred bytes past
// DeferredSyncBytes, a SyncDeferred call, or DeferredSyncInterval after
// the first unsynced one start a background fsync; a truncation lowers
// what a background fsync in flight covers.
func TestDeferredAppends(t *testing.T) {
	type step struct {
		deferred int // records appended with AppendDeferred in this event
		ordinary int // records appended with Append in the same event
		syncAll  bool
		truncate int64 // > 0: Truncate(truncate) after the appends
	}
	// The cases run a second of simulated time: noInterval keeps the
	// interval's fsync out of the cases about the other triggers.
	noInterval := time.Minute
	tests := []struct {
		name      string
		cfg       Config
		steps     []step
		wantSyncs int   // fsyncs the WAL issued (wal.sync.done + wal.bgsync)
		wantDur   int64 // records in the durable image at the end
		wantEnd   int64 // DurableEnd at the end
		notices   int
		wantMixed int // wal.mixed events: fsynced batches that also held deferred appends
	}{
		{name: "deferred only: answered unsynced", cfg: Config{DeferredSyncInterval: noInterval},
			steps: []step{{deferred: 3}, {deferred: 2}}, wantSyncs: 0, wantDur: 0, wantEnd: 0, notices: 2},
		{name: "the interval syncs an idle WAL",
			steps: []step{{deferred: 3}, {deferred: 2}}, wantSyncs: 1, wantDur: 5, wantEnd: 5, notices: 2},
		{name: "mixed batch waits for its fsync", cfg: Config{DeferredSyncInterval: noInterval},
			steps: []step{{deferred: 2, ordinary: 1}}, wantSyncs: 1, wantDur: 3, wantEnd: 3, notices: 1, wantMixed: 1},
		{name: "ordinary fsync covers earlier deferred records", cfg: Config{DeferredSyncInterval: noInterval},
			steps: []step{{deferred: 4}, {ordinary: 1}}, wantSyncs: 1, wantDur: 5, wantEnd: 5, notices: 2},
		{name: "threshold starts a background fsync",
			cfg:   Config{DeferredSyncBytes: 250, DeferredSyncInterval: noInterval},
			steps: []step{{deferred: 2}, {deferred: 2}, {deferred: 2}, {deferred: 1}}, wantSyncs: 1, wantDur: 6, wantEnd: 6, notices: 4},
		{name: "SyncDeferred syncs what was appended", cfg: Config{DeferredSyncInterval: noInterval},
			steps: []step{{deferred: 3}, {deferred: 1, syncAll: true}}, wantSyncs: 1, wantDur: 4, wantEnd: 4, notices: 2},
		{name: "truncation lowers a background fsync's mark",
			cfg:   Config{DeferredSyncBytes: 100, DeferredSyncInterval: noInterval},
			steps: []step{{deferred: 4}, {deferred: 1, truncate: 2}}, wantSyncs: 1, wantDur: 2, wantEnd: 2, notices: 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, uint64(100+i), sim.DefaultDiskConfig())
			notices := 0
			w := h.open(tt.cfg, func(BatchNotice) { notices++ })
			id := 0
			pending := 0
			for _, st := range tt.steps {
				for _, kind := range []struct {
					n        int
					deferred bool
				}{{st.deferred, true}, {st.ordinary, false}} {
					for range kind.n {
						pending++
						done := func(err error) {
							pending--
							if err != nil && !errors.Is(err, ErrTruncated) {
								t.Errorf("done: %v", err)
							}
						}
						r := [][]byte{rec(0, id, 50)}
						id++
						var err error
						if kind.deferred {
							_, err = w.AppendDeferred(r, done)
						} else {
							_, err = w.Append(r, done)
						}
						if err != nil {
							t.Fatal(err)
						}
					}
				}
				if st.syncAll {
					w.SyncDeferred()
				}
				// Let the batch be cut and written, then truncate while a
				// background fsync may be in flight.
				h.sched.Step()
				if st.truncate > 0 {
					w.Truncate(st.truncate, nil)
				}
				h.run(func() bool { return pending == 0 })
			}
			h.sched.RunWhile(func() bool { return true }, h.sched.Now()+time.Second)
			syncs, mixed := 0, 0
			for _, e := range h.events {
				switch e.Kind {
				case "wal.sync.done", "wal.bgsync":
					syncs++
				case "wal.mixed":
					mixed++
				}
			}
			if mixed != tt.wantMixed {
				t.Errorf("%d mixed batches traced, want %d", mixed, tt.wantMixed)
			}
			if syncs != tt.wantSyncs {
				t.Errorf("%d fsyncs issued, want %d", syncs, tt.wantSyncs)
			}
			// A fsync covers at least what was written when it was issued,
			// and may catch later writes too (the simulated disk, like
			// Linux, may persist them).
			if got := int64(len(h.durableRecords())); got < tt.wantDur || tt.wantSyncs == 0 && got != 0 {
				t.Errorf("durable image holds %d records, want at least %d (none without a fsync)", got, tt.wantDur)
			}
			if w.DurableEnd() != tt.wantEnd {
				t.Errorf("DurableEnd %d, want %d", w.DurableEnd(), tt.wantEnd)
			}
			if w.DurableEnd() > int64(len(h.durableRecords())) {
				t.Errorf("DurableEnd %d ahead of the durable image", w.DurableEnd())
			}
			if notices != tt.notices {
				t.Errorf("%d notices, want %d", notices, tt.notices)
			}
		})
	}
}

// TestDeferredCrashLosesOnlyUnsynced: a crash keeps what a background
// fsync made durable and may lose the deferred records after it, as a
// suffix (recovery rewrites them from the Raft log, core/node).
func TestDeferredCrashLosesOnlyUnsynced(t *testing.T) {
	h := newHarness(t, 9, sim.DefaultDiskConfig())
	w := h.open(Config{DeferredSyncInterval: time.Minute}, nil)
	answered := 0
	for i := range 6 {
		if _, err := w.AppendDeferred([][]byte{rec(0, i, 40)}, func(err error) { answered++ }); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			w.SyncDeferred()
		}
		h.run(func() bool { return answered == i+1 })
	}
	h.sched.RunWhile(func() bool { return true }, h.sched.Now()+time.Second)
	if w.DurableEnd() != 3 {
		t.Fatalf("DurableEnd %d, want 3 (SyncDeferred after the third)", w.DurableEnd())
	}
	h.crash()
	w = h.open(Config{}, nil)
	if got := len(all(t, w)); got < 3 || got > 6 {
		t.Fatalf("recovered %d records, want the 3 synced and at most the 3 after", got)
	}
}

// TestDeferredSyncFailure: a failed background fsync is fail-stop, like any
// other (DESIGN.md 3.5): the WAL takes no more appends.
func TestDeferredSyncFailure(t *testing.T) {
	h := newHarness(t, 11, sim.DefaultDiskConfig())
	w := h.open(Config{DeferredSyncBytes: 10}, nil)
	h.drain()
	h.disk.FailNextSyncs(1)
	done := false
	if _, err := w.AppendDeferred([][]byte{rec(0, 0, 40)}, func(err error) { done = err == nil }); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if !done {
		t.Fatal("the deferred append was not answered")
	}
	if !errors.Is(w.Err(), ErrFailed) || !errors.Is(w.Err(), env.ErrIO) {
		t.Fatalf("Err() = %v, want ErrFailed wrapping ErrIO", w.Err())
	}
	if _, err := w.AppendDeferred([][]byte{{1}}, nil); !errors.Is(err, ErrFailed) {
		t.Fatalf("AppendDeferred after the failure: %v", err)
	}
}

// TestHoldCuts: while cuts are held the WAL cuts no batch, whatever is
// queued and whether a batch is in flight or not; released, it cuts one
// batch holding everything that queued meanwhile (the pipelined leader's
// group commit, core/node). Holding twice or releasing twice is harmless.
func TestHoldCuts(t *testing.T) {
	tests := []struct {
		name     string
		before   int // deferred appends written before the hold
		held     int // deferred appends made while held
		ordinary bool
	}{
		{name: "idle WAL", held: 5},
		{name: "after a batch", before: 2, held: 4},
		{name: "ordinary appends too", before: 1, held: 3, ordinary: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, uint64(200+i), sim.DefaultDiskConfig())
			var notices []BatchNotice
			w := h.open(Config{DeferredSyncInterval: time.Minute}, func(nt BatchNotice) { notices = append(notices, nt) })
			pending, id := 0, 0
			appendN := func(n int) {
				for range n {
					pending++
					done := func(err error) {
						pending--
						if err != nil {
							t.Errorf("done: %v", err)
						}
					}
					r := [][]byte{rec(0, id, 50)}
					id++
					var err error
					if tt.ordinary {
						_, err = w.Append(r, done)
					} else {
						_, err = w.AppendDeferred(r, done)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			appendN(tt.before)
			h.run(func() bool { return pending == 0 })
			w.HoldCuts(true)
			w.HoldCuts(true)
			appendN(tt.held)
			h.sched.RunWhile(func() bool { return true }, h.sched.Now()+100*time.Millisecond)
			if len(notices) != min(tt.before, 1) || pending != tt.held {
				t.Fatalf("while held: %d batches noticed, %d appends open; want %d and %d",
					len(notices), pending, min(tt.before, 1), tt.held)
			}
			w.HoldCuts(false)
			w.HoldCuts(false)
			h.run(func() bool { return pending == 0 })
			if len(notices) != min(tt.before, 1)+1 {
				t.Fatalf("released: %d batches noticed, want %d", len(notices), min(tt.before, 1)+1)
			}
			if last := notices[len(notices)-1]; last.Base != int64(tt.before) || last.Last != int64(tt.before+tt.held-1) {
				t.Fatalf("the batch after the hold covers [%d, %d], want [%d, %d]", last.Base, last.Last, tt.before, tt.before+tt.held-1)
			}
		})
	}
}
