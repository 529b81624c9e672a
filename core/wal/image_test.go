package wal

import (
	"bytes"
	"testing"

	"walraft/sim"
)

// TestImageMatchesWAL appends, truncates and crashes (torn) a WAL. After
// every step the Image's durable end must never pass the end the WAL
// itself reports durable once its syncs are drained, and at every crash it
// must equal what Open recovers, record for record.
func TestImageMatchesWAL(t *testing.T) {
	cfg := Config{SegmentBytes: 4 << 10, MaxBatchRecords: 8}
	crashes := 0
	for seed := uint64(1); seed <= 8; seed++ {
		dcfg := sim.DefaultDiskConfig()
		dcfg.TornKeepProb = 0.5
		h := newHarness(t, seed, dcfg)
		im, err := NewImage("wal/t/0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		src := h.disk.DurableSource()
		w := h.open(cfg, nil)
		for step := 0; step < 150; step++ {
			switch x := h.rng.IntN(10); {
			case x < 5:
				var recs [][]byte
				for range 1 + h.rng.IntN(4) {
					recs = append(recs, bytes.Repeat([]byte{byte(step)}, 1+h.rng.IntN(700)))
				}
				w.Append(recs, func(error) {})
			case x < 8:
				h.sched.RunUntil(h.sched.Now() + h.rng.Duration(0, 2*dcfg.SyncMax))
			case x < 9 && w.End() > w.Start():
				w.Truncate(w.Start()+h.rng.Int64N(w.End()-w.Start()), func(error) {})
			default:
				h.crash()
				crashes++
				if err := im.Update(src); err != nil {
					t.Fatalf("seed %d step %d: Update: %v", seed, step, err)
				}
				w = h.open(cfg, nil)
				if w.Start() != im.Start() || w.End() != im.End() {
					t.Fatalf("seed %d step %d: Open recovered [%d, %d), image [%d, %d)", seed, step, w.Start(), w.End(), im.Start(), im.End())
				}
				for off := w.Start(); off < w.End(); off++ {
					got, err := w.Read(off, 1<<20)
					if err != nil {
						t.Fatal(err)
					}
					rec, err := im.Record(src, off)
					if err != nil || !bytes.Equal(rec, got[0]) {
						t.Fatalf("seed %d step %d: offset %d: image %q (%v), WAL %q", seed, step, off, rec, err, got[0])
					}
				}
			}
			if err := im.Update(src); err != nil {
				t.Fatalf("seed %d step %d: Update: %v", seed, step, err)
			}
			if w.Err() == nil && w.DurableEnd() > im.End() {
				t.Fatalf("seed %d step %d: WAL reports durable end %d, image holds %d", seed, step, w.DurableEnd(), im.End())
			}
		}
	}
	if crashes == 0 {
		t.Fatal("no crash")
	}
}
