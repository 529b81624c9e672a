package reclog

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"walraft/sim"
)

// scanView is what a Scanner's consumer keeps: the records it read, updated
// from each ScanResult's Changed.
type scanView struct {
	sc   *Scanner
	recs [][]byte // records [first, first+len)
	res  ScanResult
}

func (v *scanView) update(t *testing.T, src ImageSource) {
	t.Helper()
	res := v.sc.Scan(src)
	if res.Changed < res.First || res.Changed > res.Next {
		t.Fatalf("Changed %d outside [%d, %d]", res.Changed, res.First, res.Next)
	}
	if res.First != v.res.First {
		v.recs = nil
	} else if keep := int(res.Changed - res.First); keep < len(v.recs) {
		v.recs = v.recs[:keep]
	}
	for seq := res.First + uint64(len(v.recs)); seq < res.Next; seq++ {
		p, err := v.sc.Read(src, seq)
		if err != nil {
			t.Fatalf("Read(%d): %v", seq, err)
		}
		v.recs = append(v.recs, p)
	}
	v.res = res
}

// freshScan scans src with a new Scanner and returns its records.
func freshScan(t *testing.T, src ImageSource) ([][]byte, ScanResult) {
	t.Helper()
	sc, err := NewScanner("log", Options{SegmentBytes: 6 << 10})
	if err != nil {
		t.Fatal(err)
	}
	res := sc.Scan(src)
	var out [][]byte
	for seq := res.First; seq < res.Next; seq++ {
		p, err := sc.Read(src, seq)
		if err != nil {
			t.Fatalf("fresh Read(%d): %v", seq, err)
		}
		out = append(out, p)
	}
	return out, res
}

// corruptSome damages three bytes at a random spot of a random durable
// segment of h's disk and reports whether it did.
func corruptSome(h *harness) bool {
	names := h.disk.DurableFiles()
	if len(names) == 0 {
		return false
	}
	name := names[h.rng.IntN(len(names))]
	img, _ := h.disk.DurableImage(name)
	if len(img) == 0 {
		return false
	}
	return h.disk.CorruptDurable(name, int64(h.rng.IntN(len(img))), 3)
}

// TestScannerMatchesOpen drives a log through appends, syncs, truncations,
// torn crashes and latent corruption (of a running node's disk, or of a
// down node's before it boots) on a simulated disk. After every step
// the incremental Scanner (updated through Changed) must hold exactly what
// a fresh Scanner reads, and at every crash it must predict what Open then
// recovers: the same records, and ErrCorrupt exactly when Open fails.
// It runs with and without KeepPayloads (the fresh Scanner it compares with
// keeps none), so the payloads a Scan keeps are the bytes Read would read,
// and with the disk's durable view as a ChangedNamesSource (the incremental
// Scanner looks only at the segments it names) or as a plain ImageSource
// (it looks at every segment each time).
func TestScannerMatchesOpen(t *testing.T) {
	for _, keep := range []bool{false, true} {
		for _, names := range []bool{false, true} {
			t.Run(fmt.Sprintf("keep=%v/changed-names=%v", keep, names), func(t *testing.T) { testScannerMatchesOpen(t, keep, names) })
		}
	}
}

// plainSource hides every method of an ImageSource beyond the interface's
// (ChangedNames).
type plainSource struct{ ImageSource }

func testScannerMatchesOpen(t *testing.T, keep, changedNames bool) {
	view := func(h *harness) ImageSource {
		if changedNames {
			return h.disk.DurableSource()
		}
		return plainSource{h.disk.DurableSource()}
	}
	opts := Options{SegmentBytes: 6 << 10}
	newScanner := func() *Scanner {
		sc, err := NewScanner("log", opts)
		if err != nil {
			t.Fatal(err)
		}
		if keep {
			sc.KeepPayloads()
		}
		return sc
	}
	var crashes, corrupt, torn, rescans, downCorrupt int
	var scans, short uint64 // Scans of the incremental Scanners, and how many took the short way
	defer func() {
		t.Logf("crashes %d, Open refused %d, torn tails %d, partial changes %d, damaged while down %d, short scans %d of %d", crashes, corrupt, torn, rescans, downCorrupt, short, scans)
		if crashes == 0 || corrupt == 0 || torn == 0 || rescans == 0 || downCorrupt == 0 {
			t.Errorf("the run did not reach every case")
		}
		if changedNames != (short > 0) {
			t.Errorf("%d of %d Scans took the short way with changed names %v", short, scans, changedNames)
		}
	}()
	for seed := uint64(1); seed <= 12; seed++ {
		cfg := sim.DefaultDiskConfig()
		cfg.TornKeepProb = 0.5
		h := newHarness(t, seed, cfg)
		src := view(h)
		v := &scanView{sc: newScanner()}
		l := h.open(opts)
		seq := uint64(0)
		corrupted := false
		check := func(step int) {
			s0, sh0 := v.sc.scans, v.sc.shortScans
			v.update(t, src)
			scans, short = scans+v.sc.scans-s0, short+v.sc.shortScans-sh0
			if v.res.Changed < v.res.Next && v.res.Changed > v.res.First {
				rescans++
			}
			want, wres := freshScan(t, src)
			if v.res.Next != wres.Next || v.res.First != wres.First || (v.res.Err == nil) != (wres.Err == nil) || v.res.Torn != wres.Torn {
				t.Fatalf("seed %d step %d: incremental %+v, fresh %+v", seed, step, v.res, wres)
			}
			if len(v.recs) != len(want) {
				t.Fatalf("seed %d step %d: incremental holds %d records, fresh %d", seed, step, len(v.recs), len(want))
			}
			for i := range want {
				if !bytes.Equal(v.recs[i], want[i]) {
					t.Fatalf("seed %d step %d: record %d differs", seed, step, wres.First+uint64(i))
				}
			}
		}
		for step := 0; step < 300; step++ {
			switch x := h.rng.IntN(100); {
			case x < 55:
				n := 1 + h.rng.IntN(3)
				for range n {
					if _, err := l.Append(payload(int(seed), seq, 1+h.rng.IntN(5000))); err != nil {
						break
					}
					seq++
				}
				if h.rng.Chance(0.6) {
					l.Sync(func(error) {})
				}
			case x < 80:
				h.sched.RunUntil(h.sched.Now() + h.rng.Duration(0, 3*cfg.SyncMax))
			case x < 85 && l.Next() > l.First():
				to := l.First() + uint64(h.rng.IntN(int(l.Next()-l.First())))
				l.Truncate(to, func(error) {})
				seq = to
			case x < 88 && !corrupted:
				corrupted = corruptSome(h)
			case x < 96:
				h.powerOff()
				if !corrupted && h.rng.Chance(0.2) {
					// Damage while the node is down: the boot reads it.
					corrupted = corruptSome(h)
					if corrupted {
						downCorrupt++
					}
				}
				h.boot()
				crashes++
				check(step)
				if v.res.Torn {
					torn++
				}
				l2, err := Open(h.fs, "log", opts)
				if (err != nil) != (v.res.Err != nil) {
					t.Fatalf("seed %d step %d: Open error %v, scanner predicted %v", seed, step, err, v.res.Err)
				}
				if err != nil {
					corrupt++
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("seed %d step %d: Open: %v", seed, step, err)
					}
					// Start over on a clean disk.
					h = newHarness(t, seed*1000+uint64(step), cfg)
					src = view(h)
					v = &scanView{sc: newScanner()}
					l, seq, corrupted = h.open(opts), 0, false
					continue
				}
				got := records(t, l2)
				if l2.First() != v.res.First || len(got) != len(v.recs) {
					t.Fatalf("seed %d step %d: Open recovered [%d, +%d), scanner [%d, +%d)", seed, step, l2.First(), len(got), v.res.First, len(v.recs))
				}
				for i := range got {
					if !bytes.Equal(got[i], v.recs[i]) {
						t.Fatalf("seed %d step %d: record %d differs from Open's", seed, step, l2.First()+uint64(i))
					}
				}
				l, seq = l2, l2.Next()
			}
			check(step)
		}
	}
}

// TestScannerAgreesWithOpenOnDamage pins, image by image, what Open and a
// Scanner of the durable images say about one log whose synced data was
// damaged: both refuse (ErrCorrupt) when a later chunk's durable mark
// proves the damaged spot was synced, and both cut the same torn tail when
// nothing does (the documented blind spots). The damage lands before the
// crash (a running node's page cache hides it until then) or while the
// node is down (nothing hides it from the boot).
//
// "while down" is the shape of the corrupt scenario's S11 failures (seeds
// 96, 104, 111, 170, 174): a chunk whose data is damaged, followed by a
// chunk whose mark equals its own position, damaged after the crash and
// before the boot. The simulated disk used to leave a down node's volatile
// image undamaged, so Open read intact bytes and opened while the Scanner,
// reading the durable image, found the proof: the one image the two were
// shown disagreed only because they were not shown the same image.
func TestScannerAgreesWithOpenOnDamage(t *testing.T) {
	// The log: records 0..7 synced, record 8 written after that sync
	// completed (its chunks' mark is its own start) and synced, then
	// records 9 and 10 unsynced when the crash is torn (a torn crash with
	// TornKeepProb 1 keeps them; their mark is record 8's end). Records are
	// 900 bytes: record 8 crosses the second block boundary, so its last
	// chunk starts block 2.
	const size = 900
	type spot func(l *Log) int64 // the file offset to damage
	dataOf := func(seq int) spot {
		return func(l *Log) int64 { return int64(l.segs[0].starts[seq]) + chunkHeaderSize + 10 }
	}
	headerOf := func(seq int) spot {
		return func(l *Log) int64 { return int64(l.segs[0].starts[seq]) + 12 }
	}
	segHeader := func(*Log) int64 { return 5 }
	tests := []struct {
		name       string
		at         spot
		down, torn bool
		// corrupt: both must refuse; else both keep records [0, keep).
		corrupt bool
		keep    uint64
	}{
		{"data before a chunk marked at its own position, damaged while running", dataOf(7), false, false, true, 0},
		{"data before a chunk marked at its own position, damaged while down", dataOf(7), true, false, true, 0},
		{"data before a chunk marked at its own position, damaged while down after a torn crash", dataOf(7), true, true, true, 0},
		{"data of the last synced record, nothing written after its sync", dataOf(8), true, false, false, 8},
		{"data of the last synced record, proven by unsynced records a torn crash kept", dataOf(8), true, true, true, 0},
		{"header of a record, proven from the next block", headerOf(7), true, false, true, 0},
		{"header of the last synced record", headerOf(8), true, false, false, 8},
		{"segment header", segHeader, true, false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sim.DefaultDiskConfig()
			if tt.torn {
				cfg.TornKeepProb = 1
			}
			h := newHarness(t, 5, cfg)
			opts := Options{}
			l := h.open(opts)
			for seq := range 8 {
				l.Append(payload(0, uint64(seq), size))
			}
			if err := h.sync(l); err != nil {
				t.Fatal(err)
			}
			l.Append(payload(0, 8, size))
			if err := h.sync(l); err != nil {
				t.Fatal(err)
			}
			if tt.torn {
				l.Append(payload(0, 9, size))
				l.Append(payload(0, 10, size))
			}
			name := h.disk.DurableFiles()[0]
			off := tt.at(l)
			corrupt := func() {
				if !h.disk.CorruptDurable(name, off, 1) {
					t.Fatalf("CorruptDurable(%s, %d) failed", name, off)
				}
			}
			if tt.down {
				h.powerOff()
				corrupt()
			} else {
				corrupt()
				h.powerOff()
			}
			sc, err := NewScanner("log", opts)
			if err != nil {
				t.Fatal(err)
			}
			res := sc.Scan(h.disk.DurableSource())
			h.boot()
			got, err := Open(h.fs, "log", opts)
			if (err != nil) != (res.Err != nil) {
				t.Fatalf("Open error %v, Scanner error %v: they disagree on %s byte %d", err, res.Err, name, off)
			}
			if tt.corrupt {
				if !errors.Is(err, ErrCorrupt) || !errors.Is(res.Err, ErrCorrupt) {
					t.Fatalf("Open %v, Scanner %v; want ErrCorrupt from both", err, res.Err)
				}
				if err.Error() != "reclog: open \"log\": "+res.Err.Error() {
					t.Errorf("Open and Scanner give different proofs:\n%v\n%v", err, res.Err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !res.Torn || res.First != got.First() || res.Next != got.Next() || res.Next != tt.keep {
				t.Fatalf("Scanner kept [%d, %d) torn %v, Open [%d, %d); want [0, %d) cut", res.First, res.Next, res.Torn, got.First(), got.Next(), tt.keep)
			}
			for seq := range tt.keep {
				p, err := got.Read(seq)
				if err != nil || !bytes.Equal(p, payload(0, seq, size)) {
					t.Fatalf("record %d after Open: %v", seq, err)
				}
			}
		})
	}
}
