package wal

import (
	"testing"

	"walraft/sim"
)

// TestReopenDuringTruncation is the case TestWALProperty found, made
// deterministic: a WAL truncates an acknowledged append, is reopened
// before the truncation is durable (closed, or its process killed, with
// the page cache kept), appends at once, and loses power with torn
// persistence. The new append is one record where the truncated one had
// two of the same size, so the old second record's chunk starts right
// where the new record ends, with the next seq.
//
// Recovery must hold the old append whole (the truncation was undone), or
// nothing, or the new append: never the new record followed by the old
// one, which would resurrect a truncated record after a newer one and pass
// for a complete append. Once the new append is acknowledged, it must
// survive alone.
func TestReopenDuringTruncation(t *testing.T) {
	tests := []struct {
		name string
		kill bool // ProcessExit and a new incarnation; otherwise Close and Open
		ack  bool // run until the new append is acknowledged before the crash
	}{
		{name: "close"},
		{name: "kill", kill: true},
		{name: "close-acked", ack: true},
		{name: "kill-acked", kill: true, ack: true},
	}
	cfg := Config{MaxBatchRecords: 1, MaxBatchBytes: 200, SegmentBytes: 1 << 10}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			undone := 0 // seeds whose crash brought the truncated append back
			for seed := uint64(1); seed <= 60; seed++ {
				dc := sim.DefaultDiskConfig()
				dc.TornKeepProb = 0.5
				dc.BlockSize = 512
				h := newHarness(t, seed, dc)
				w := h.open(cfg, nil)
				old := [][]byte{rec(0, 0, 16), rec(0, 1, 16)}
				acked := false
				if _, err := w.Append(old, func(err error) { acked = err == nil }); err != nil {
					t.Fatal(err)
				}
				h.run(func() bool { return acked })
				w.Truncate(0, nil)
				if tt.kill {
					h.gen++
					h.disk.ProcessExit()
				} else if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				w = h.open(cfg, nil)
				if got := all(t, w); len(got) != 0 {
					t.Fatalf("seed %d: reopened with %d records, the page cache holds the truncation", seed, len(got))
				}
				fresh := [][]byte{rec(1, 2, 16)}
				acked = false
				if _, err := w.Append(fresh, func(err error) { acked = err == nil }); err != nil {
					t.Fatal(err)
				}
				// Run until the batch is cut and handed to the reclog (or,
				// with ack, until its fsync completed).
				h.run(func() bool { return w.inflight != nil || acked })
				if tt.ack {
					h.run(func() bool { return acked })
				}
				h.crash()
				w = h.open(cfg, nil)
				got := all(t, w)
				switch {
				case tt.ack && !equalRecs(got, fresh):
					t.Fatalf("seed %d: the acknowledged append did not survive alone: %s", seed, diffRecs(got, fresh))
				case len(got) == 0, equalRecs(got, fresh):
				case equalRecs(got, old):
					undone++
				default:
					t.Fatalf("seed %d: recovered %d records of versions %d..%d: neither append whole", seed, len(got), recVersionOf(got[0]), recVersionOf(got[len(got)-1]))
				}
			}
			if !tt.ack && undone == 0 {
				t.Fatalf("no crash undid the truncation: the test exercises nothing")
			}
		})
	}
}
