package reclog

import (
	"bytes"
	"errors"
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

// TestScannerMatchesOpen drives a log through appends, syncs, truncations,
// torn crashes and latent corruption on a simulated disk. After every step
// the incremental Scanner (updated through Changed) must hold exactly what
// a fresh Scanner reads, and at every crash it must predict what Open then
// recovers: the same records, and ErrCorrupt exactly when Open fails.
func TestScannerMatchesOpen(t *testing.T) {
	opts := Options{SegmentBytes: 6 << 10}
	var crashes, corrupt, torn, rescans int
	defer func() {
		t.Logf("crashes %d, Open refused %d, torn tails %d, partial changes %d", crashes, corrupt, torn, rescans)
		if crashes == 0 || corrupt == 0 || torn == 0 || rescans == 0 {
			t.Errorf("the run did not reach every case")
		}
	}()
	for seed := uint64(1); seed <= 12; seed++ {
		cfg := sim.DefaultDiskConfig()
		cfg.TornKeepProb = 0.5
		h := newHarness(t, seed, cfg)
		src := h.disk.DurableSource()
		sc, err := NewScanner("log", opts)
		if err != nil {
			t.Fatal(err)
		}
		v := &scanView{sc: sc}
		l := h.open(opts)
		seq := uint64(0)
		corrupted := false
		check := func(step int) {
			v.update(t, src)
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
				names := h.disk.DurableFiles()
				if len(names) > 0 {
					name := names[h.rng.IntN(len(names))]
					if img, _ := h.disk.DurableImage(name); len(img) > 0 {
						h.disk.CorruptDurable(name, int64(h.rng.IntN(len(img))), 3)
						corrupted = true
					}
				}
			case x < 96:
				h.crash()
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
					src = h.disk.DurableSource()
					sc, _ = NewScanner("log", opts)
					v = &scanView{sc: sc}
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
