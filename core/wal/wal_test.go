package wal

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"walraft/core/env"
	"walraft/sim"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"set", Config{MaxBatchBytes: 10, MaxBatchRecords: 2, Linger: time.Millisecond, SegmentBytes: 4096, MaxRecordBytes: 100, MaxPendingBytes: 1000}, true},
		{"negative batch bytes", Config{MaxBatchBytes: -1}, false},
		{"negative batch records", Config{MaxBatchRecords: -1}, false},
		{"negative linger", Config{Linger: -1}, false},
		{"small segment", Config{SegmentBytes: 100}, false},
		{"huge record", Config{MaxRecordBytes: 1 << 30}, false},
		{"negative pending", Config{MaxPendingBytes: -5}, false},
		{"negative deferred bytes", Config{DeferredSyncBytes: -1}, false},
		{"negative deferred interval", Config{DeferredSyncInterval: -time.Second}, false},
	}
	for _, tt := range tests {
		err := tt.c.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestGroupCommit checks the batching rules: appends of one event form one
// batch; appends during an fsync accumulate into the next; each append is
// answered after its batch's fsync, in offset order, before the batch's
// notice; a notice covers exactly its batch.
func TestGroupCommit(t *testing.T) {
	h := newHarness(t, 1, sim.DefaultDiskConfig())
	var log []string
	var notices []BatchNotice
	w := h.open(Config{}, func(n BatchNotice) {
		notices = append(notices, n)
		log = append(log, fmt.Sprintf("notice %d-%d", n.Base, n.Last))
		// A notice comes only after its records are durable.
		if got := h.durableRecords(); int64(len(got)) <= n.Last {
			t.Errorf("notice [%d,%d] before its records were durable (%d durable)", n.Base, n.Last, len(got))
		}
	})
	id := 0
	appendUnit := func(n int) int64 {
		var recs [][]byte
		for range n {
			recs = append(recs, rec(0, id, 40))
			id++
		}
		var base int64
		base, err := w.Append(recs, func(err error) {
			if err != nil {
				t.Errorf("done(%d): %v", base, err)
			}
			log = append(log, fmt.Sprintf("done %d+%d", base, n))
			if got := h.durableRecords(); int64(len(got)) < base+int64(n) {
				t.Errorf("append at %d acked before durable", base)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return base
	}
	if b := appendUnit(2); b != 0 {
		t.Fatalf("first base %d", b)
	}
	appendUnit(3)
	// Let the first batch get cut and written, then append during its
	// fsync.
	h.sched.Step()
	if w.inflight == nil {
		t.Fatal("no batch in flight after the cut event")
	}
	appendUnit(1)
	appendUnit(4)
	if w.End() != 10 || w.DurableEnd() != 0 {
		t.Fatalf("End/DurableEnd = %d/%d", w.End(), w.DurableEnd())
	}
	h.run(func() bool { return len(notices) == 2 })
	want := "[done 0+2 done 2+3 notice 0-4 done 5+1 done 6+4 notice 5-9]"
	if got := fmt.Sprint(log); got != want {
		t.Fatalf("event order\n got %s\nwant %s", got, want)
	}
	for _, n := range notices {
		if n.Topic != "t" || n.Partition != 0 || int64(len(n.Records)) != n.Last-n.Base+1 {
			t.Fatalf("bad notice %+v", n)
		}
		for i, r := range n.Records {
			if !strings.HasPrefix(string(r), fmt.Sprintf("0000%011x|", n.Base+int64(i))) {
				t.Fatalf("notice %d record %d is %.16q", n.Seq, i, r)
			}
		}
	}
	if notices[0].Seq >= notices[1].Seq {
		t.Fatalf("notice seqs %d, %d", notices[0].Seq, notices[1].Seq)
	}
	if w.DurableEnd() != 10 {
		t.Fatalf("DurableEnd = %d", w.DurableEnd())
	}
	kinds := map[string]int{}
	for _, e := range h.events {
		kinds[e.Kind]++
	}
	if kinds["wal.open"] != 1 || kinds["wal.batch"] != 2 || kinds["wal.sync.done"] != 2 {
		t.Fatalf("trace kinds %v", kinds)
	}
}

func TestBatchLimits(t *testing.T) {
	h := newHarness(t, 2, sim.DefaultDiskConfig())
	var notices []BatchNotice
	w := h.open(Config{MaxBatchRecords: 4, MaxBatchBytes: 1000}, func(n BatchNotice) { notices = append(notices, n) })
	// Units of 3, 3, 1, 6 records (the last alone exceeds the record cap)
	// and one of 1200 bytes (alone exceeds the byte cap).
	for _, n := range []int{3, 3, 1, 6} {
		recs := make([][]byte, n)
		for i := range recs {
			recs[i] = []byte("r")
		}
		if _, err := w.Append(recs, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Append([][]byte{make([]byte, 1200)}, nil); err != nil {
		t.Fatal(err)
	}
	h.run(func() bool { return w.DurableEnd() == w.End() })
	var got []string
	for _, n := range notices {
		got = append(got, fmt.Sprintf("%d-%d", n.Base, n.Last))
	}
	if want := "[0-2 3-6 7-12 13-13]"; fmt.Sprint(got) != want {
		t.Fatalf("batches %v, want %s (whole appends only)", got, want)
	}
}

func TestAppendErrors(t *testing.T) {
	h := newHarness(t, 3, sim.DefaultDiskConfig())
	w := h.open(Config{MaxRecordBytes: 100, MaxPendingBytes: 250}, nil)
	called := false
	done := func(error) { called = true }
	if _, err := w.Append([][]byte{make([]byte, 101)}, done); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
	if _, err := w.Append([][]byte{make([]byte, 100), make([]byte, 100), make([]byte, 100)}, done); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("append beyond MaxPendingBytes: %v", err)
	}
	if _, err := w.Append([][]byte{make([]byte, 100), make([]byte, 100)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append([][]byte{make([]byte, 100)}, done); !errors.Is(err, ErrBackpressure) {
		t.Fatalf("over the pending bound: %v", err)
	}
	if w.End() != 2 {
		t.Fatalf("End = %d after rejected appends", w.End())
	}
	// Once written, the bytes no longer count.
	h.sched.Step()
	if _, err := w.Append([][]byte{make([]byte, 100)}, nil); err != nil {
		t.Fatalf("after the batch was written: %v", err)
	}
	h.drain()
	if called {
		t.Fatal("done called for a rejected append")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append([][]byte{{1}}, done); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func TestLinger(t *testing.T) {
	h := newHarness(t, 4, sim.DiskConfig{}) // instant syncs
	var cuts []time.Duration
	w := h.open(Config{Linger: 5 * time.Millisecond, MaxBatchRecords: 10}, func(n BatchNotice) { cuts = append(cuts, h.sched.Now()) })
	h.drain()
	start := h.sched.Now()
	for i := range 3 {
		h.sched.At(start+time.Duration(i)*time.Millisecond, func() { w.Append([][]byte{{byte(i)}}, nil) })
	}
	h.drain()
	if len(cuts) != 1 || cuts[0] != start+5*time.Millisecond {
		t.Fatalf("batches at %v, want one at %v", cuts, start+5*time.Millisecond)
	}
	// A full batch does not wait.
	now := h.sched.Now()
	recs := make([][]byte, 10)
	for i := range recs {
		recs[i] = []byte{1}
	}
	w.Append(recs, nil)
	h.drain()
	if len(cuts) != 2 || cuts[1] != now {
		t.Fatalf("full batch cut at %v, want %v", cuts[1:], now)
	}
}

func TestReadMaxBytes(t *testing.T) {
	h := newHarness(t, 5, sim.DefaultDiskConfig())
	w := h.open(Config{}, nil)
	w.Append([][]byte{make([]byte, 10), make([]byte, 20), make([]byte, 30)}, nil)
	h.drain()
	w.Append([][]byte{make([]byte, 40), make([]byte, 50)}, nil) // queued, not written
	tests := []struct {
		off      int64
		max      int
		wantLens []int
		err      error
	}{
		{0, 0, []int{10}, nil},
		{0, 30, []int{10, 20}, nil},
		{0, 29, []int{10}, nil},
		{1, 1000, []int{20, 30, 40, 50}, nil},
		{3, 45, []int{40}, nil},
		{4, 5, []int{50}, nil},
		{5, 100, nil, nil},
		{6, 100, nil, ErrOutOfRange},
		{-1, 100, nil, ErrOutOfRange},
	}
	for _, tt := range tests {
		recs, err := w.Read(tt.off, tt.max)
		var lens []int
		for _, r := range recs {
			lens = append(lens, len(r))
		}
		if !errors.Is(err, tt.err) || fmt.Sprint(lens) != fmt.Sprint(tt.wantLens) {
			t.Errorf("Read(%d, %d) = %v, %v; want %v, %v", tt.off, tt.max, lens, err, tt.wantLens, tt.err)
		}
	}
}

// TestSyncFailure: an fsync EIO fails exactly that batch's appends (and
// the queued ones), emits no notice, stops the WAL; reopening recovers the
// durable records.
func TestSyncFailure(t *testing.T) {
	h := newHarness(t, 6, sim.DefaultDiskConfig())
	var notices []BatchNotice
	w := h.open(Config{}, func(n BatchNotice) { notices = append(notices, n) })
	results := map[int64]error{}
	appendRec := func(id int) {
		var base int64
		base, err := w.Append([][]byte{rec(0, id, 30)}, func(err error) { results[base] = err })
		if err != nil {
			t.Fatal(err)
		}
	}
	appendRec(0)
	h.run(func() bool { return len(results) == 1 })
	h.disk.FailNextSyncs(1)
	appendRec(1)
	appendRec(2)
	h.sched.Step() // cut: batch {1,2} in flight, sync will fail
	appendRec(3)   // queued behind it
	h.run(func() bool { return len(results) == 4 })
	if results[0] != nil {
		t.Fatalf("first append: %v", results[0])
	}
	for _, off := range []int64{1, 2, 3} {
		if !errors.Is(results[off], ErrFailed) || !errors.Is(results[off], env.ErrIO) {
			t.Fatalf("append %d: %v, want ErrFailed wrapping ErrIO", off, results[off])
		}
	}
	if len(notices) != 1 {
		t.Fatalf("%d notices, want only the first batch's", len(notices))
	}
	if !errors.Is(w.Err(), ErrFailed) {
		t.Fatalf("Err() = %v", w.Err())
	}
	if _, err := w.Append([][]byte{{1}}, nil); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append after failure: %v", err)
	}
	var terr error
	tdone := false
	w.Truncate(0, func(err error) { terr, tdone = err, true })
	h.run(func() bool { return tdone })
	if !errors.Is(terr, ErrFailed) {
		t.Fatalf("Truncate after failure: %v", terr)
	}
	if k := h.events[len(h.events)-1].Kind; k != "wal.fail" {
		found := false
		for _, e := range h.events {
			found = found || e.Kind == "wal.fail"
		}
		if !found {
			t.Fatal("no wal.fail trace event")
		}
	}
	h.crash()
	w = h.open(Config{}, nil)
	got := all(t, w)
	if len(got) < 1 || string(got[0][:16]) != string(rec(0, 0, 30)[:16]) {
		t.Fatalf("recovered %d records", len(got))
	}
	// The reopened WAL works.
	done := false
	w.Append([][]byte{{9}}, func(err error) { done = err == nil })
	h.run(func() bool { return done })
}

func TestWriteFailure(t *testing.T) {
	h := newHarness(t, 7, sim.DefaultDiskConfig())
	w := h.open(Config{}, nil)
	h.drain()
	h.disk.FailNextWrites(1)
	var res error
	w.Append([][]byte{make([]byte, 3000)}, func(err error) { res = err })
	h.drain()
	if !errors.Is(res, ErrFailed) {
		t.Fatalf("append with a failed write: %v", res)
	}
	h.crash()
	w = h.open(Config{}, nil)
	if w.End() != 0 {
		t.Fatalf("recovered End %d from a failed write", w.End())
	}
}

// TestTruncate covers truncation of queued, in-flight and durable records,
// including one inside an append.
func TestTruncate(t *testing.T) {
	h := newHarness(t, 8, sim.DefaultDiskConfig())
	var notices []BatchNotice
	w := h.open(Config{}, func(n BatchNotice) { notices = append(notices, n) })
	results := map[int64]error{}
	id := 0
	appendN := func(n int) int64 {
		var recs [][]byte
		for range n {
			recs = append(recs, rec(0, id, 20))
			id++
		}
		var base int64
		base, err := w.Append(recs, func(err error) {
			if _, dup := results[base]; dup {
				t.Errorf("done called twice for %d", base)
			}
			results[base] = err
		})
		if err != nil {
			t.Fatal(err)
		}
		return base
	}
	appendN(3) // 0-2
	h.run(func() bool { return len(results) == 1 })
	appendN(2) // 3-4 in flight
	appendN(3) // 5-7 in flight
	h.sched.Step()
	appendN(2) // 8-9 queued
	appendN(2) // 10-11 queued
	// Cut inside the second in-flight append: 3-4 survive, 5 stays as a
	// record nobody waits for (rewritten as an append of its own, so the
	// in-flight batch's notice ends at 4), 6-11 go.
	var terr error
	tdone := false
	w.Truncate(6, func(err error) { terr, tdone = err, true })
	if w.End() != 6 {
		t.Fatalf("End = %d", w.End())
	}
	// New appends wait for the truncation.
	appendN(1) // 6
	h.run(func() bool { return tdone && len(results) == 6 })
	if terr != nil {
		t.Fatal(terr)
	}
	for base, want := range map[int64]error{0: nil, 3: nil, 5: ErrTruncated, 8: ErrTruncated, 10: ErrTruncated, 6: nil} {
		if !errors.Is(results[base], want) || (want == nil && results[base] != nil) {
			t.Errorf("append at %d: %v, want %v", base, results[base], want)
		}
	}
	var spans []string
	for _, n := range notices {
		spans = append(spans, fmt.Sprintf("%d-%d", n.Base, n.Last))
	}
	if want := "[0-2 3-4 5-6]"; fmt.Sprint(spans) != want {
		t.Fatalf("notices %v, want %s", spans, want)
	}
	got := all(t, w)
	if len(got) != 7 || recVersionOf(got[6]) != 0 || !strings.HasPrefix(string(got[6]), fmt.Sprintf("0000%011x|", 12)) {
		t.Fatalf("log after truncate: %d records", len(got))
	}
	// Truncate durable records inside an append, then crash: the
	// truncation holds, and the append's first records are durable again
	// (rewritten) once the next fsync completed.
	tdone = false
	w.Truncate(2, func(err error) { terr, tdone = err, true })
	h.run(func() bool { return tdone && w.DurableEnd() == 2 })
	if terr != nil || w.DurableEnd() != 2 {
		t.Fatalf("truncate(2): %v, DurableEnd %d", terr, w.DurableEnd())
	}
	h.crash()
	w = h.open(Config{}, nil)
	if w.End() != 2 {
		t.Fatalf("after crash End = %d, want 2", w.End())
	}
	tdone = false
	w.Truncate(5, func(err error) { terr, tdone = err, true })
	h.run(func() bool { return tdone })
	if !errors.Is(terr, ErrOutOfRange) {
		t.Fatalf("truncate beyond End: %v", terr)
	}
}

// TestCloseAnswersEverything: Close completes queued and in-flight appends
// with ErrClosed, exactly once, and emits no more notices.
func TestCloseAnswersEverything(t *testing.T) {
	h := newHarness(t, 9, sim.DefaultDiskConfig())
	notices := 0
	w := h.open(Config{}, func(BatchNotice) { notices++ })
	var errs []error
	for range 2 {
		w.Append([][]byte{{1}}, func(err error) { errs = append(errs, err) })
	}
	h.sched.Step()
	w.Append([][]byte{{2}}, func(err error) { errs = append(errs, err) })
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if len(errs) != 3 || notices != 0 {
		t.Fatalf("results %v, %d notices", errs, notices)
	}
	for _, err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("results %v", errs)
		}
	}
	if _, err := w.Read(0, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}

// TestReentrantCallbacks: done and notice callbacks may call back into the
// WAL; the next batch is still cut only after the notice.
func TestReentrantCallbacks(t *testing.T) {
	h := newHarness(t, 10, sim.DefaultDiskConfig())
	var order []string
	var w *WAL
	w = h.open(Config{}, func(n BatchNotice) {
		order = append(order, fmt.Sprintf("notice %d-%d", n.Base, n.Last))
		if n.Base == 0 {
			w.Append([][]byte{{3}}, func(err error) { order = append(order, fmt.Sprint("done3 ", err)) })
		}
	})
	w.Append([][]byte{{0}}, func(err error) {
		order = append(order, fmt.Sprint("done0 ", err))
		// Appended from a done callback: joins the next batch.
		w.Append([][]byte{{1}}, func(err error) { order = append(order, fmt.Sprint("done1 ", err)) })
		w.Append([][]byte{{2}}, func(err error) { order = append(order, fmt.Sprint("done2 ", err)) })
	})
	h.drain()
	want := "[done0 <nil> notice 0-0 done1 <nil> done2 <nil> done3 <nil> notice 1-3]"
	if fmt.Sprint(order) != want {
		t.Fatalf("order\n got %v\nwant %s", order, want)
	}
}

// TestTruncateFromDoneCallback: a truncation issued while a batch's appends
// are being answered clips that batch's notice.
func TestTruncateFromDoneCallback(t *testing.T) {
	h := newHarness(t, 11, sim.DefaultDiskConfig())
	var notices []BatchNotice
	w := h.open(Config{}, func(n BatchNotice) { notices = append(notices, n) })
	w.Append([][]byte{{0}, {1}}, func(error) { w.Truncate(1, func(error) {}) })
	w.Append([][]byte{{2}}, nil)
	h.drain()
	if len(notices) != 1 || notices[0].Base != 0 || notices[0].Last != 0 {
		t.Fatalf("notices %+v, want one for [0,0]", notices)
	}
	if w.End() != 1 || w.DurableEnd() != 1 {
		t.Fatalf("End/DurableEnd %d/%d", w.End(), w.DurableEnd())
	}
}

func TestCorruptOpen(t *testing.T) {
	h := newHarness(t, 12, sim.DefaultDiskConfig())
	w := h.open(Config{}, nil)
	w.Append([][]byte{make([]byte, 100)}, nil)
	h.drain()
	w.Append([][]byte{make([]byte, 100)}, nil) // its mark proves the first synced
	h.drain()
	name := h.disk.DurableFiles()[0]
	h.disk.CorruptDurable(name, 80, 1)
	h.crash()
	if _, err := Open(h.env(), "wal/t/0", "t", 0, Config{}, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a corrupt log: %v", err)
	}
}

// TestRecoveryPassesSyncError: when the recovery sync of a reopened WAL
// fails, OnRecovered gets the error, and nothing recovered is claimed
// durable: the owner must stop rather than start on records only the page
// cache may hold (the failed fsync may have dropped them).
func TestRecoveryPassesSyncError(t *testing.T) {
	h := newHarness(t, 3, sim.DefaultDiskConfig())
	w := h.open(Config{}, nil)
	done := false
	if _, err := w.Append([][]byte{rec(0, 0, 40), rec(0, 1, 40)}, func(err error) { done = err == nil }); err != nil {
		t.Fatal(err)
	}
	h.run(func() bool { return done })
	// The process exits with the machine up, and the next one's first
	// sync fails.
	h.gen++
	h.events = nil
	h.disk.ProcessExit()
	h.disk.FailNextSyncs(1)
	w = h.open(Config{}, nil)
	var got error
	called := false
	w.OnRecovered(func(err error) { called, got = true, err })
	h.run(func() bool { return called })
	if got == nil || !errors.Is(got, env.ErrIO) {
		t.Fatalf("OnRecovered(%v), want the recovery sync's EIO", got)
	}
	if w.DurableEnd() != w.Start() {
		t.Fatalf("DurableEnd %d after a failed recovery sync, want Start %d", w.DurableEnd(), w.Start())
	}
	for _, e := range h.events {
		if e.Kind == "wal.recovered" {
			t.Fatalf("traced %v after a failed recovery sync", e)
		}
	}
}
