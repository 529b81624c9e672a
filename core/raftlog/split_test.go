package raftlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

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
	sizes := entrySizes(ents)
	runs := splitEntries(ents, sizes, 2000)
	total := 0
	for _, run := range runs {
		enc := encodeEntries(nil, run, sizes[total:total+len(run)])
		total += len(run)
		if len(run) > 1 && len(enc) > 2000 {
			t.Errorf("run of %d entries encodes to %d bytes > 2000", len(run), len(enc))
		}
	}
	if total != len(ents) || len(runs) < 2 {
		t.Fatalf("%d runs holding %d entries", len(runs), total)
	}
}

// TestEncodeEntriesBytes: encoding with the sizes computed once (and
// protobuf's cached sizes) gives exactly the bytes of a plain
// deterministic marshal of each entry, for entries of every field shape:
// the bytes reach the disk, and a seed must write the same ones.
func TestEncodeEntriesBytes(t *testing.T) {
	var ents []*pb.Entry
	for i := 1; i <= 40; i++ {
		e := ent(uint64(i), uint64(1+i/7), strings.Repeat("z", (i*37)%300))
		if i%5 == 0 {
			e.Data = nil
		}
		if i%9 == 0 {
			typ := pb.EntryConfChange
			e.Type = &typ
		}
		ents = append(ents, e)
	}
	got := encodeEntries(nil, ents, entrySizes(ents))
	want := []byte{kindEntries}
	want = binary.AppendUvarint(want, uint64(len(ents)))
	for _, e := range ents {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		want = binary.AppendUvarint(want, uint64(len(b)))
		want = append(want, b...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from a plain marshal:\n got %x\nwant %x", got, want)
	}
}
