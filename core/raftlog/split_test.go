package raftlog

import (
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"

	"walraft/core/reclog"
	"walraft/sim"
)

// TestSaveSplitsLargeReady: a Ready whose entries together exceed the log's
// record limit (a node that was stalled or cut off receives its backlog in
// one Ready) is saved as several records and recovered whole. Before the
// split the append failed with reclog.ErrTooLarge and the node stopped.
func TestSaveSplitsLargeReady(t *testing.T) {
	const limit = 4096
	for _, n := range []int{1, 10, 100} {
		t.Run(fmt.Sprint(n, " entries"), func(t *testing.T) {
			r := newRig(3, sim.DefaultDiskConfig())
			opts := Options{Log: reclog.Options{MaxRecordBytes: limit}}
			st, err := Open(r.fs, "raft", []uint64{1, 2, 3}, opts)
			if err != nil {
				t.Fatal(err)
			}
			var ents []*pb.Entry
			var want []string
			for i := 1; i <= n; i++ {
				data := fmt.Sprintf("e%d-%s", i, strings.Repeat("x", 300))
				ents = append(ents, ent(uint64(i), 1, data))
				want = append(want, data+"@1")
			}
			if err := st.Save(hs(1, 1, 0), ents); err != nil {
				t.Fatalf("save %d entries (%d bytes of data) with a %d-byte record limit: %v", n, n*300, limit, err)
			}
			r.sync(t, st)
			st.Close()
			back, err := Open(r.fs, "raft", []uint64{1, 2, 3}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := entries(t, back); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("recovered %d entries, want %d", len(got), len(want))
			}
			if wantRecs := 1 + (n*320)/limit; back.Recovered() < wantRecs {
				t.Errorf("recovered %d records, want at least %d (entries split to fit)", back.Recovered(), wantRecs)
			}
		})
	}
}

func TestSplitEntriesFits(t *testing.T) {
	var ents []*pb.Entry
	for i := 1; i <= 50; i++ {
		ents = append(ents, ent(uint64(i), 1, strings.Repeat("y", i*10)))
	}
	runs := splitEntries(ents, 2000)
	total := 0
	for _, run := range runs {
		total += len(run)
		if len(run) > 1 && len(encodeEntries(run)) > 2000 {
			t.Errorf("run of %d entries encodes to %d bytes > 2000", len(run), len(encodeEntries(run)))
		}
	}
	if total != len(ents) || len(runs) < 2 {
		t.Fatalf("%d runs holding %d entries", len(runs), total)
	}
}
