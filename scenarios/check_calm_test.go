package scenarios

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// calmHistory returns a valid fault-free standalone history of n requests
// per acks level (0, 1, -1, interleaved), each answered after the given
// latency, every record in the final log. LatencyBound is 1s.
func calmHistory(n int, lat0, lat1, latAll time.Duration) *History {
	h := &History{Run: RunInfo{Mode: ModeStandalone, Nodes: []NodeID{1}, Partitions: []PartKey{tp0},
		AcksTimeout: 30 * sec, End: 100 * sec, FaultFree: true, LatencyBound: sec}}
	var payloads []uint64
	at := sec
	for i := 0; i < 3*n; i++ {
		acks := []int8{0, 1, -1}[i%3]
		lat := []time.Duration{lat0, lat1, latAll}[i%3]
		pl := uint64(1000 + i)
		o := Op{Node: 1, Kind: KindProduce, Acks: acks, Payloads: []uint64{pl}, Invoke: at, Complete: at + lat}
		switch acks {
		case 0:
			o.Outcome = OutcomeNone
		case 1:
			o.Outcome, o.Offset, o.Evidence = OutcomeOK, int64(i), &Evidence{DurableEnd: int64(i + 1)}
		default:
			o.Outcome, o.Offset, o.Evidence = OutcomeOK, int64(i), &Evidence{DurableEnd: int64(i + 1), HWM: int64(i + 1)}
		}
		addOp(h, o)
		payloads = append(payloads, pl)
		at += sec / 2
	}
	h.Final = &FinalState{Time: 100 * sec, Nodes: []FinalNode{finalNode(1, 1, nil, payloads...)}}
	h.Final.Nodes[0].RaftFirst = 0
	return h
}

// TestCheckCalmFires: each new check fires on a synthetic history built to
// break it, and names the invariant; TestCheckCalmQuiet: the same checks
// stay quiet on the valid neighbours of those histories.
func TestCheckCalmFires(t *testing.T) {
	partial := func(h *History, offs ...int64) {
		// A 2-record request, of which only some records are in every
		// final log, at the given offsets (from 7), with fillers between.
		addOp(h, Op{Node: 1, Kind: KindProduce, Acks: 0, Payloads: []uint64{201, 202}, Invoke: 92 * sec, Complete: 92 * sec, Outcome: OutcomeNone})
		for i := range h.Final.Nodes {
			p := &h.Final.Nodes[i].Parts[0]
			for k, off := range offs {
				for int64(len(p.Records)) < off {
					p.Records = append(p.Records, Rec{Offset: int64(len(p.Records)), Payload: 900 + uint64(len(p.Records))})
				}
				p.Records = append(p.Records, Rec{Offset: off, Payload: 201 + uint64(k)})
			}
			p.HWM, p.LogEnd = int64(len(p.Records)), int64(len(p.Records))
		}
	}
	tests := []struct {
		name   string
		h      func() *History
		mutate func(h *History)
		want   string
		detail string
	}{
		{name: "S12: first record of a request without the second", h: validCluster,
			mutate: func(h *History) { partial(h, 7) },
			want:   InvS12, detail: "produce op 8 (acks=0, \"none\", 2 records, payloads [201 202]"},
		{name: "S12: records of one request not consecutive", h: validCluster,
			mutate: func(h *History) { partial(h, 7, 9) },
			want:   InvS12, detail: "record 0 (payload 201) at offset 7"},
		{name: "S12: records of one request out of order", h: validCluster,
			mutate: func(h *History) {
				partial(h, 7, 8)
				for i := range h.Final.Nodes {
					r := h.Final.Nodes[i].Parts[0].Records
					r[7].Payload, r[8].Payload = 202, 201
				}
			},
			want: InvS12, detail: "partly present in n1's final t/0 log"},
		{name: "L3: timeout in a fault-free run", h: validCluster,
			mutate: func(h *History) { h.Run.FaultFree = true },
			want:   InvL3, detail: "acks=-1 op 6 sent to n1 at 1m0s in a fault-free stretch (from 0s) ended indeterminate at 1m30s: timeout"},
		{name: "L3: indeterminate answer after the calm workload started", h: validCluster,
			mutate: func(h *History) { h.Live.CalmFrom = 55 * sec },
			want:   InvL3, detail: "in a fault-free stretch (from 55s) ended indeterminate"},
		{name: "L3: request of the calm workload never answered", h: validCluster,
			mutate: func(h *History) {
				h.Live.CalmFrom = 93 * sec
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: 1, Payloads: []uint64{300}, Invoke: 94 * sec, Outcome: OutcomePending})
			},
			want: InvL3, detail: "acks=1 op 8 sent to n1 at 1m34s in a fault-free stretch (from 1m33s) was never answered"},
		{name: "L4: an acks=-1 reply over the bound", h: func() *History { return calmHistory(20, ms, 5*ms, 10*ms) },
			mutate: func(h *History) { h.Ops[5].Complete = h.Ops[5].Invoke + 1500*ms },
			want:   InvL4, detail: "acks=-1 op 6 sent to n1 at 3.5s took 1.5s, over the fault-free bound 1s"},
		{name: "L4: acks=1 median above acks=-1", h: func() *History { return calmHistory(20, ms, 10*ms, 5*ms) },
			// A cluster: standalone, both levels wait for the same fsync.
			mutate: func(h *History) { h.Run.Mode = ModeCluster },
			want:   InvL4, detail: "median latency of acks=1 (10ms over 20 requests) is not below that of acks=-1 (5ms over 20 requests)"},
		{name: "L4: acks=0 median equal to acks=1", h: func() *History { return calmHistory(20, 5*ms, 5*ms, 10*ms) },
			want: InvL4, detail: "median latency of acks=0 (5ms over 20 requests) is not below that of acks=1"},
		{name: "L1: the leader stranded records with nothing in flight", h: validCluster,
			mutate: func(h *History) {
				h.Live.ConvergedAt, h.Live.ProbeOK = 0, false
				h.Live.Stranded = "leader n1 t/0 holds records it accepted and never committed: log end 9, durable end 8, committed end 7"
			},
			want: InvL1, detail: "with no request in flight, leader n1 t/0 holds records it accepted and never committed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h()
			if tt.mutate != nil {
				tt.mutate(h)
			}
			rep := Check(h)
			if rep.Err != nil {
				t.Fatal(rep.Err)
			}
			if got := violated(&rep); !slices.Contains(got, tt.want) {
				t.Fatalf("violated %v, want %s among them:\n%s", got, tt.want, rep.String())
			}
			found := false
			for _, v := range rep.Violations {
				found = found || (v.Invariant == tt.want && strings.Contains(v.Detail, tt.detail))
			}
			if !found {
				t.Errorf("no %s violation mentions %q:\n%s", tt.want, tt.detail, rep.String())
			}
		})
	}
}

func TestCheckCalmQuiet(t *testing.T) {
	tests := []struct {
		name   string
		h      func() *History
		mutate func(h *History)
		want   map[string]Verdict // verdicts of the new invariants
	}{
		{name: "whole request at consecutive offsets", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: 0, Payloads: []uint64{201, 202}, Invoke: 92 * sec, Complete: 92 * sec, Outcome: OutcomeNone})
				for i := range h.Final.Nodes {
					p := &h.Final.Nodes[i].Parts[0]
					p.Records = append(p.Records, recs(7, 201, 202)...)
					p.HWM, p.LogEnd = 9, 9
				}
			},
			want: map[string]Verdict{InvS12: VerdictOK, InvL3: VerdictNA, InvL4: VerdictNA}},
		{name: "legacy path: a partial request is not judged", h: validCluster,
			mutate: func(h *History) {
				h.Run.Path = "legacy"
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: 0, Payloads: []uint64{201, 202}, Invoke: 92 * sec, Complete: 92 * sec, Outcome: OutcomeNone})
				for i := range h.Final.Nodes {
					p := &h.Final.Nodes[i].Parts[0]
					p.Records = append(p.Records, recs(7, 201)...)
					p.HWM, p.LogEnd = 8, 8
				}
			},
			want: map[string]Verdict{InvS12: VerdictNA}},
		{name: "timeout before the calm workload started", h: validCluster,
			mutate: func(h *History) { h.Live.CalmFrom = 61 * sec },
			want:   map[string]Verdict{InvL3: VerdictOK, InvL4: VerdictNA}},
		{name: "fault-free latencies in order and bounded", h: func() *History { return calmHistory(20, ms, 5*ms, 10*ms) },
			want: map[string]Verdict{InvL3: VerdictOK, InvL4: VerdictOK, InvS12: VerdictOK}},
		{name: "too few samples to compare medians", h: func() *History { return calmHistory(19, ms, 10*ms, 5*ms) },
			want: map[string]Verdict{InvL4: VerdictOK}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h()
			if tt.mutate != nil {
				tt.mutate(h)
			}
			rep := Check(h)
			if rep.Err != nil {
				t.Fatal(rep.Err)
			}
			if len(rep.Violations) != 0 {
				t.Fatalf("violations on a valid history:\n%s", rep.String())
			}
			for inv, want := range tt.want {
				if got := rep.Verdict(inv); got != want {
					t.Errorf("%s = %s, want %s", inv, got, want)
				}
			}
		})
	}
}

// TestScheduleBudget: latent corruption of synced data is in budget on a
// minority of the nodes and beyond it on half of them or more.
func TestScheduleBudget(t *testing.T) {
	c := func(node uint64) Fault { return Fault{At: sec, Kind: FaultCorrupt, Node: node, Log: CorruptRaft} }
	tests := []struct {
		name   string
		nodes  int
		s      Schedule
		beyond bool
	}{
		{name: "no corruption", nodes: 3, s: Schedule{{At: sec, Kind: FaultCrash, Node: 1, Dur: sec}}},
		{name: "one of three", nodes: 3, s: Schedule{c(2), c(2)}},
		{name: "two of five", nodes: 5, s: Schedule{c(1), c(4)}},
		{name: "two of three", nodes: 3, s: Schedule{c(1), c(3)}, beyond: true},
		{name: "one of two", nodes: 2, s: Schedule{c(1)}, beyond: true},
		{name: "standalone", nodes: 1, s: Schedule{c(1)}, beyond: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Validate(tt.nodes); err != nil {
				t.Fatal(err)
			}
			why := tt.s.BeyondBudgetFor(tt.nodes)
			if (why != "") != tt.beyond {
				t.Fatalf("BeyondBudgetFor(%d) = %q, want beyond %v", tt.nodes, why, tt.beyond)
			}
		})
	}
	if err := (Schedule{{At: sec, Kind: FaultCrash, Node: 1, Log: CorruptWAL}}).Validate(3); err == nil {
		t.Errorf("a crash with a corruption target validated")
	}
	if err := (Schedule{{At: sec, Kind: FaultCorrupt, Node: 1, Log: "disk"}}).Validate(3); err == nil {
		t.Errorf("an unknown corruption target validated")
	}
}

// TestL4StandaloneAcksLevelsShareFsync: a standalone node answers acks=1
// and acks=-1 after the same WAL fsync, so L4 does not order their medians
// (a 1-node property run failed at random on 657us against 650us); the
// same medians in a cluster break L4 (TestCheckCalmFires).
func TestL4StandaloneAcksLevelsShareFsync(t *testing.T) {
	rep := Check(calmHistory(20, ms, 10*ms, 5*ms))
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if got := violated(&rep); slices.Contains(got, InvL4) {
		t.Fatalf("standalone run with acks=1 median above acks=-1 violates L4:\n%s", rep.String())
	}
}
