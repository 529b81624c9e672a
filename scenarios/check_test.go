package scenarios

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// violated returns the invariants the report marks violated, in report
// order.
func violated(r *Report) []string {
	var out []string
	for _, v := range r.Verdicts {
		if v.Verdict == VerdictViolated {
			out = append(out, v.Invariant)
		}
	}
	return out
}

// verdicts returns the report's verdicts as a map.
func verdicts(r *Report) map[string]Verdict {
	m := map[string]Verdict{}
	for _, v := range r.Verdicts {
		m[v.Invariant] = v.Verdict
	}
	return m
}

// allVerdicts returns ok for every invariant except the listed n/a ones,
// and L3 and L4, which a synthetic history that is neither a fault-free run
// nor has a calm liveness workload does not speak about.
func allVerdicts(na ...string) map[string]Verdict {
	m := map[string]Verdict{}
	for _, inv := range CheckedInvariants {
		m[inv] = VerdictOK
		// These histories carry no availability truth: A1 does not apply
		// (avail_test.go judges it).
		if slices.Contains(na, inv) || inv == InvL3 || inv == InvL4 || inv == InvA1 {
			m[inv] = VerdictNA
		}
	}
	// The oracle's invariants need the disks: Check alone never judges S9,
	// S11, A2 and A3, and S10 only with ground-truth reply evidence, which these
	// synthetic histories do not carry.
	m[InvS9], m[InvS10], m[InvS11], m[InvA2], m[InvA3] = VerdictNA, VerdictNA, VerdictNA, VerdictNA, VerdictNA
	return m
}

func TestCheckQuietOnValidHistories(t *testing.T) {
	tests := []struct {
		name   string
		h      func() *History
		mutate func(h *History)
		want   map[string]Verdict
	}{
		{name: "cluster", h: validCluster, want: allVerdicts()},
		{name: "standalone", h: validStandalone, want: allVerdicts(InvS2, InvS8)},
		{name: "acks=1 loss with a leadership change is allowed", h: func() *History { return acks1Loss(true) },
			want: allVerdicts(InvS4, InvL1)},
		{name: "acks=1 retry lost cleanly while its first attempt's copy was read elsewhere", h: func() *History { return acks1Loss(true) },
			mutate: func(h *History) {
				// Op 1 (acks=1, payload 201, acked at offset 0, lost through
				// the leader change) becomes the retry of a first attempt
				// answered indeterminate, whose record the new leader
				// committed at offset 1, where a consumer read it (pipelined-
				// crashes seed 34). A read at another offset says nothing of
				// the lost copy: the loss stays clean.
				first := h.Ops[0]
				first.Invoke, first.Complete = 1500*ms, 1900*ms
				first.Outcome, first.Offset, first.Evidence, first.Err = OutcomeIndeterminate, 0, nil, "connection lost"
				h.Ops = append([]Op{first}, h.Ops...)
				for i := range h.Ops {
					h.Ops[i].ID = OpID(i + 1)
				}
				h.Ops[1].RetryOf = 1
				addOp(h, Op{Node: 2, Kind: KindFetch, From: 1, Invoke: 4500 * ms, Complete: 4500 * ms, Outcome: OutcomeOK,
					Fetch: &FetchReply{Records: recs(1, 201), HWM: 2, LogEnd: 2}})
				insertObs(h, obs(4400*ms, 2, 1, RoleLeader, 2, 2, 2, 2))
				for i := range h.Final.Nodes {
					n := &h.Final.Nodes[i]
					n.Raft = append(n.Raft, batch(3, 2, 1, 201))
					n.Parts[0].Records = append(n.Parts[0].Records, Rec{Offset: 1, Payload: 201})
					n.Parts[0].HWM, n.Parts[0].LogEnd = 2, 2
				}
			},
			want: allVerdicts(InvL1)},
		{name: "acks=-1 still pending when the run ended before its timeout", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: -1, Payloads: []uint64{400}, Invoke: 90 * sec, Outcome: OutcomePending})
			},
			want: allVerdicts()},
		{name: "answered right at timeout plus slack", h: validCluster,
			mutate: func(h *History) { h.Ops[5].Complete = h.Ops[5].Invoke + 30*sec + DefaultTimeoutSlack(30*sec) },
			want:   allVerdicts()},
		{name: "fetch at the instant the HWM moved reports the old HWM", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 2, Kind: KindFetch, From: 2, Invoke: 3200 * ms, Complete: 3200 * ms, Outcome: OutcomeOK,
					Fetch: &FetchReply{HWM: 2, LogEnd: 3}})
			},
			want: allVerdicts()},
		{name: "payload retried twice after two indeterminate attempts appears three times", h: validCluster,
			mutate: func(h *History) {
				// Op 7 becomes indeterminate too, and op 8 retries it at offset 7.
				h.Ops[6].Outcome, h.Ops[6].Offset, h.Ops[6].Evidence, h.Ops[6].Err = OutcomeIndeterminate, 0, nil, "node crashed"
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: -1, Payloads: []uint64{106}, RetryOf: 7, Invoke: 92 * sec,
					Complete: 92100 * ms, Outcome: OutcomeOK, Offset: 7, Evidence: &Evidence{Term: 1, HWM: 8, EntryTerm: 1, EntryIndex: 8}})
				insertObs(h, obs(92100*ms, 1, 1, RoleLeader, 1, 1, 8, 8))
				for i := range h.Final.Nodes {
					n := &h.Final.Nodes[i]
					n.Parts[0].Records = append(n.Parts[0].Records, Rec{Offset: 7, Payload: 106})
					n.Parts[0].HWM, n.Parts[0].LogEnd = 8, 8
					n.Raft = append(n.Raft, batch(8, 1, 7, 106))
				}
			},
			want: allVerdicts()},
		{name: "compacted raft index is not judged", h: validCluster,
			mutate: func(h *History) {
				for i := range h.Final.Nodes {
					n := &h.Final.Nodes[i]
					n.RaftFirst, n.Raft = 4, n.Raft[3:]
				}
			},
			want: allVerdicts()},
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
			if d := cmp.Diff(tt.want, verdicts(&rep)); d != "" {
				t.Errorf("verdicts (-want +got):\n%s\n%s", d, rep.String())
			}
			if !rep.OK() || len(rep.Violations) != 0 {
				t.Errorf("violations on a valid history:\n%s", rep.String())
			}
		})
	}
}

func TestCheckFires(t *testing.T) {
	tests := []struct {
		name   string
		h      func() *History
		mutate func(h *History)
		want   string   // the invariant the case is about
		also   []string // invariants the same fault necessarily breaks too
		detail string   // a substring of one of want's violations
	}{
		// S1
		{name: "acks=-1 offset holds another payload on one node", h: validCluster,
			mutate: func(h *History) { h.Final.Nodes[2].Parts[0].Records[1].Payload = 104 },
			want:   InvS1, also: []string{InvS2, InvS4, InvS6, InvS12}, detail: "offset 1: final log: n3 holds payload 104"},
		{name: "acks=-1 record read as another payload", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 3, Kind: KindFetch, Invoke: 5 * sec, Complete: 5 * sec, Outcome: OutcomeOK,
					Fetch: &FetchReply{Records: recs(0, 101, 555), HWM: 4, LogEnd: 4}})
			},
			want: InvS1, also: []string{InvS2, InvS4}, detail: "fetch op 8 on n3 at 5s read payload 555"},
		{name: "acks=-1 offset no node reached", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: -1, Payloads: []uint64{300}, Invoke: 95 * sec, Complete: 95100 * ms,
					Outcome: OutcomeOK, Offset: 7, Evidence: &Evidence{Term: 1, HWM: 8, EntryTerm: 1, EntryIndex: 8}})
			},
			want: InvS1, also: []string{InvS8}, detail: "offset 7: no node's final HWM reaches it"},
		// S2
		{name: "final logs disagree below both HWMs", h: validCluster,
			mutate: func(h *History) {
				h.Final.Nodes[1].Parts[0].Records[3].Payload = 888
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: 0, Payloads: []uint64{888}, Invoke: 3100 * ms, Complete: 3100 * ms, Outcome: OutcomeNone})
			},
			want: InvS2, detail: "final logs of n1 and n2 disagree on t/0 from offset 3"},
		{name: "fetches from two nodes disagree", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 3, Kind: KindFetch, From: 3, Invoke: 5 * sec, Complete: 5 * sec, Outcome: OutcomeOK,
					Fetch: &FetchReply{Records: recs(3, 777), HWM: 4, LogEnd: 4}})
				addOp(h, Op{Node: 1, Kind: KindFetch, From: 3, Invoke: 5 * sec, Complete: 5 * sec, Outcome: OutcomeOK,
					Fetch: &FetchReply{Records: recs(3, 104), HWM: 4, LogEnd: 4}})
			},
			want: InvS2, also: []string{InvS4}, detail: "fetch op 8 on n3 at 5s read payload 777, fetch op 9 on n1 at 5s read payload 104"},
		// S3
		{name: "HWM 5 -> 3 across a restart", h: validCluster,
			mutate: func(h *History) {
				for i := range h.Obs {
					if h.Obs[i].Node == 3 && h.Obs[i].Time > 55*sec {
						h.Obs[i].Incarnation = 2
					}
				}
				h.Final.Nodes[2].Incarnation = 2
				insertObs(h, Observation{Time: 54 * sec, Node: 3, Incarnation: 1}, obs(56*sec, 3, 2, RoleFollower, 1, 1, 3, 5))
			},
			want: InvS3, detail: "HWM went 5 -> 3 (across a restart)"},
		{name: "HWM above log end", h: validCluster,
			mutate: func(h *History) {
				for i := range h.Obs {
					if h.Obs[i].Node == 2 && h.Obs[i].Time == 3200*ms {
						h.Obs[i].Parts[0].LogEnd = 3
					}
				}
			},
			want: InvS3, detail: "HWM 4 > log end 3"},
		{name: "fetch reports a HWM below an earlier observation", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 2, Kind: KindFetch, From: 2, Invoke: 80 * sec, Complete: 80 * sec, Outcome: OutcomeOK,
					Fetch: &FetchReply{HWM: 2, LogEnd: 7}})
			},
			want: InvS3, detail: "HWM went 6 -> 2"},
		{name: "fetch refused as out of range reports a HWM below an earlier observation", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 2, Kind: KindFetch, From: 7, Invoke: 80 * sec, Complete: 80 * sec, Outcome: OutcomeFail,
					Err: "node: offset out of range: 7 not in [0, 2]", Fetch: &FetchReply{HWM: 2, LogEnd: 7}})
			},
			want: InvS3, detail: "HWM went 6 -> 2"},
		// S4
		{name: "fetch returns offset 7 with HWM 7", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 1, Kind: KindFetch, From: 7, Invoke: 95 * sec, Complete: 95 * sec, Outcome: OutcomeOK,
					Fetch: &FetchReply{Records: recs(7, 300), HWM: 7, LogEnd: 8}})
			},
			want: InvS4, detail: "returned offsets [7] at or past the HWM 7"},
		{name: "record read below the HWM differs in the final logs", h: validCluster,
			mutate: func(h *History) { h.Ops[3].Fetch.Records[2].Payload = 999 },
			want:   InvS4, detail: "t/0 offset 2 read as payload 999 by fetch op 4 on n2 at 4s, but final log"},
		{name: "record read below the HWM disappeared", h: func() *History { return acks1Loss(true) },
			mutate: func(h *History) {
				for i := range h.Final.Nodes {
					p := &h.Final.Nodes[i].Parts[0]
					p.HWM, p.LogEnd, p.Records = 0, 0, nil
				}
				h.Obs = h.Obs[:len(h.Obs)-1] // the HWM never moved
				h.Ops = h.Ops[:1]
				addOp(h, Op{Node: 1, Kind: KindFetch, Invoke: 2500 * ms, Complete: 2500 * ms, Outcome: OutcomeOK,
					Fetch: &FetchReply{Records: recs(0, 201), HWM: 1, LogEnd: 1}})
			},
			want: InvS4, also: []string{InvS3, InvS5}, detail: "disappeared"},
		// S5
		{name: "acks=1 loss without a leadership change", h: func() *History { return acks1Loss(false) },
			want: InvS5, detail: "lost offsets [0] with no leadership change"},
		{name: "acks=1 loss with a leadership change but read by a consumer", h: func() *History { return acks1Loss(true) },
			mutate: func(h *History) {
				addOp(h, Op{Node: 1, Kind: KindFetch, Invoke: 2500 * ms, Complete: 2500 * ms, Outcome: OutcomeOK,
					Fetch: &FetchReply{Records: recs(0, 201), HWM: 1, LogEnd: 1}})
			},
			want: InvS5, also: []string{InvS1, InvS3, InvS4}, detail: "lost uncleanly: payload 201 was read by fetch op 3"},
		{name: "standalone acks=1 lost", h: validStandalone,
			mutate: func(h *History) {
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: 1, Payloads: []uint64{7}, Invoke: 4 * sec, Complete: 4 * sec,
					Outcome: OutcomeOK, Offset: 3, Evidence: &Evidence{DurableEnd: 4}})
			},
			want: InvS5, detail: "standalone acks=1 op 5"},
		{name: "acks=1 durable end does not cover the record", h: validCluster,
			mutate: func(h *History) { h.Ops[1].Evidence.DurableEnd = 2 },
			want:   InvS5, also: []string{InvS7}, detail: "leader's durable end was 2: not durable"},
		// The durable end is read at the node's reply: the message names
		// that time, not only the client's receipt a latency later.
		{name: "acks=1 not durable names the node's reply time", h: validCluster,
			mutate: func(h *History) { e := h.Ops[1].Evidence; e.At, e.DurableEnd = 3040*ms, 2 },
			want:   InvS5, also: []string{InvS7},
			detail: "op 2 (n1, t/0 offsets [2, 2]) answered by n1 at 3.04s (the client got it at 3.05s) while the leader's durable end was 2: not durable"},
		{name: "acks=1 before its fsync names the node's reply time", h: validCluster,
			mutate: func(h *History) { e := h.Ops[1].Evidence; e.At, e.DurableEnd = 3040*ms, 2 },
			want:   InvS7, also: []string{InvS5},
			detail: "op 2 (n1, t/0 offsets [2, 2]) answered by n1 at 3.04s (the client got it at 3.05s) before its fsync: leader durable end 2"},
		// S6
		{name: "two successful produces at one offset", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: -1, Payloads: []uint64{101}, Invoke: 2 * sec, Complete: 2100 * ms,
					Outcome: OutcomeOK, Offset: 0, Evidence: &Evidence{Term: 1, HWM: 2, EntryTerm: 1, EntryIndex: 2}})
			},
			want: InvS6, detail: "t/0 offset 0 given to two successful produces: op 1"},
		{name: "payload twice without a retry", h: validCluster,
			mutate: func(h *History) { h.Ops[6].RetryOf = 0 },
			want:   InvS6, detail: "holds payload 106 2 times"},
		{name: "payload of a definitely failed produce present", h: validCluster,
			mutate: func(h *History) { h.Ops[5].Outcome = OutcomeFail },
			want:   InvS6, detail: "at most 1 allowed (attempts: op 6 fail, op 7 ok (retry of op 6))"},
		{name: "payload no op produced", h: validCluster,
			mutate: func(h *History) {
				for i := range h.Final.Nodes {
					h.Final.Nodes[i].Parts[0].Records[3].Payload = 999
				}
			},
			want: InvS6, detail: "no op produced it"},
		// S7
		{name: "acks=-1 reply whose HWM evidence is below its offset", h: validCluster,
			mutate: func(h *History) { h.Ops[0].Evidence.HWM = 1 },
			want:   InvS7, detail: "before commit and apply: leader HWM 1"},
		{name: "acks=1 reply without evidence", h: validCluster,
			mutate: func(h *History) { h.Ops[1].Evidence = nil },
			want:   InvS7, also: []string{InvS5}, detail: "no reply-time evidence"},
		{name: "standalone acks=-1 reply whose records are not on disk", h: validStandalone,
			mutate: func(h *History) {
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: -1, Payloads: []uint64{7}, Invoke: 4 * sec, Complete: 4 * sec,
					Outcome: OutcomeOK, Offset: 3, Evidence: &Evidence{DurableEnd: 3, HWM: 4, Truth: true, ReportedDurableEnd: 3}})
			},
			want: InvS7, also: []string{InvS1}, detail: "standalone acks=-1 op 5"},
		// S10
		{name: "node reports a durable end its disk does not hold", h: validCluster,
			mutate: func(h *History) {
				e := h.Ops[1].Evidence
				e.Truth, e.ReportedDurableEnd = true, e.DurableEnd+1
			},
			want: InvS10, detail: "the node reported durable end"},
		// S8
		{name: "two leaders in term 4", h: validCluster,
			mutate: func(h *History) {
				insertObs(h, obs(70*sec, 2, 1, RoleLeader, 4, 2, 6, 6), obs(71*sec, 3, 1, RoleLeader, 4, 3, 6, 6))
			},
			want: InvS8, detail: "term 4 has two leaders: n2"},
		{name: "waiter resolved by another entry", h: validCluster,
			mutate: func(h *History) { h.Ops[0].Evidence.EntryIndex = 3 },
			want:   InvS8, detail: "resolved by entry (term 1, index 3)"},
		{name: "metadata-only entries carry no payloads", h: validCluster,
			mutate: func(h *History) {
				for i := range h.Final.Nodes {
					h.Final.Nodes[i].Raft[1].Payloads = nil
				}
			},
			want: InvS8, detail: "n1's committed entry 2"},
		{name: "final raft logs differ", h: validCluster,
			mutate: func(h *History) { h.Final.Nodes[2].Raft[2].Term = 2 },
			want:   InvS8, detail: "differ at index 3"},
		{name: "acks=-1 success without its entry", h: validCluster,
			mutate: func(h *History) { h.Ops[0].Evidence.EntryIndex = 0 },
			want:   InvS8, detail: "without the (term, index)"},
		// L1
		{name: "probe failed", h: validCluster,
			mutate: func(h *History) { h.Live.ProbeOK = false },
			want:   InvL1, detail: "probe acks=-1 write did not succeed"},
		{name: "converged after the bound", h: validCluster,
			mutate: func(h *History) { h.Live.ConvergedAt = 75 * sec },
			want:   InvL1, detail: "after the deadline"},
		{name: "probe op is not acks=-1", h: validCluster,
			mutate: func(h *History) { h.Live.ProbeOp = 2 },
			want:   InvL1, detail: "probe op 2 has acks=1"},
		{name: "claimed converged HWMs differ in the final state", h: validCluster,
			mutate: func(h *History) {
				p := &h.Final.Nodes[2].Parts[0]
				p.HWM, p.Records = 6, p.Records[:6]
			},
			want: InvL1, also: []string{InvS3}, detail: "final t/0 HWM is 7 on n1 and 6 on n3"},
		// L2
		{name: "unanswered acks=-1 past the timeout", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: -1, Payloads: []uint64{400}, Invoke: 10 * sec, Outcome: OutcomePending})
			},
			want: InvL2, detail: "op 8 sent to n1 at 10s still unanswered when the run ended at 1m40s"},
		{name: "acks=-1 answered after the timeout", h: validCluster,
			mutate: func(h *History) { h.Ops[5].Complete = 93 * sec },
			want:   InvL2, detail: "answered \"indeterminate\" only at 1m33s"},
		{name: "node answers acks=1 past its timeout after the client gave up", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: 1, Payloads: []uint64{400}, Invoke: 10 * sec, Complete: 11 * sec,
					Outcome: OutcomeIndeterminate, Err: "client: request timed out", Served: &Served{At: 5 * sec, Answered: 40 * sec}})
			},
			want: InvL2, detail: "acks=1 op 8: n1 answered it 35s after taking it, by its own clock"},
		{name: "node still holds acks=-1 past its timeout when the run ends", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: -1, Payloads: []uint64{400}, Invoke: 10 * sec, Complete: 11 * sec,
					Outcome: OutcomeIndeterminate, Err: "client: request timed out", Served: &Served{At: 5 * sec, Until: 50 * sec}})
			},
			want: InvL2, detail: "n1 took it and still held it unanswered 45s later"},
		{name: "node answers with its timeout before the timeout", h: validCluster,
			mutate: func(h *History) {
				addOp(h, Op{Node: 1, Kind: KindProduce, Acks: -1, Payloads: []uint64{400}, Invoke: 10 * sec, Complete: 11 * sec,
					Outcome: OutcomeIndeterminate, Err: "node: request timed out", Served: &Served{At: 10 * sec, Answered: 11 * sec, TimedOut: true}})
			},
			want: InvL2, detail: "n1 answered it with its acks timeout 1s after taking it, by its own clock, before the timeout of 30s"},
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
			want := []string{tt.want}
			for _, inv := range CheckedInvariants {
				if slices.Contains(tt.also, inv) {
					want = append(want, inv)
				}
			}
			slices.SortFunc(want, func(a, b string) int {
				return slices.Index(CheckedInvariants, a) - slices.Index(CheckedInvariants, b)
			})
			if d := cmp.Diff(want, violated(&rep)); d != "" {
				t.Errorf("violated invariants (-want +got):\n%s\n%s", d, rep.String())
			}
			found := false
			for _, v := range rep.Violations {
				found = found || (v.Invariant == tt.want && strings.Contains(v.Detail, tt.detail))
			}
			if !found {
				t.Errorf("no %s violation mentions %q:\n%s", tt.want, tt.detail, rep.String())
			}
			if rep.OK() {
				t.Error("report OK despite violations")
			}
		})
	}
}

func TestCheckBeyondBudget(t *testing.T) {
	h := validCluster()
	h.Final.Nodes[2].Parts[0].Records[1].Payload = 104
	h.Run.BeyondBudget, h.Run.BeyondBudgetWhy = true, []string{"t=40s: latent corruption of n3's wal"}
	rep := Check(h)
	if len(rep.Violations) == 0 || rep.Verdict(InvS1) != VerdictViolated {
		t.Fatalf("violations must still be listed:\n%s", rep.String())
	}
	if !rep.OK() || rep.Bugs() != nil {
		t.Errorf("beyond-budget violations counted as bugs: OK %v, %d bugs", rep.OK(), len(rep.Bugs()))
	}
	if s := rep.String(); !strings.Contains(s, "BEYOND FAULT BUDGET") || !strings.Contains(s, "latent corruption") {
		t.Errorf("report does not say the run was beyond budget:\n%s", s)
	}
}

func TestCheckBoundsViolations(t *testing.T) {
	h := validCluster()
	for i := range 120 {
		addOp(h, Op{Node: 1, Kind: KindProduce, Acks: -1, Payloads: []uint64{uint64(1000 + i)}, Invoke: time.Duration(i) * ms, Outcome: OutcomePending})
	}
	rep := Check(h)
	if n := len(rep.Violations); n != maxViolationsPerInvariant+1 {
		t.Fatalf("%d violations, want %d", n, maxViolationsPerInvariant+1)
	}
	if last := rep.Violations[len(rep.Violations)-1]; !strings.Contains(last.Detail, "and 70 more L2 violations") {
		t.Errorf("last violation %q", last.Detail)
	}
}

func TestCheckLatency(t *testing.T) {
	rep := Check(validCluster())
	want := []LatencyStat{
		{Acks: 0, Count: 1, Median: 0, P99: 0},
		{Acks: 1, Count: 1, Median: 50 * ms, P99: 50 * ms},
		{Acks: -1, Count: 3, Median: 100 * ms, P99: 100 * ms},
	}
	if d := cmp.Diff(want, rep.Latency); d != "" {
		t.Errorf("latency (-want +got):\n%s", d)
	}
}

func TestCheckDeterministic(t *testing.T) {
	h := validCluster()
	insertObs(h, obs(70*sec, 2, 1, RoleLeader, 4, 2, 6, 6), obs(71*sec, 3, 1, RoleLeader, 4, 3, 6, 6))
	h.Ops[6].RetryOf = 0
	h.Final.Nodes[1].Parts[0].Records[3].Payload = 888
	a, b := Check(h), Check(h)
	if d := cmp.Diff(a, b); d != "" || a.String() != b.String() {
		t.Fatalf("two checks of one history differ:\n%s", d)
	}
	if len(a.Violations) < 3 {
		t.Fatalf("expected several violations:\n%s", a.String())
	}
}

func TestCheckNil(t *testing.T) {
	rep := Check(nil)
	if rep.Err == nil || rep.OK() || !strings.Contains(rep.String(), "not checked") {
		t.Fatalf("Check(nil) = %+v", rep)
	}
}

// bigHistory returns a valid cluster history with n acks=-1 produces of
// two records each, n fetches, an observation per node per produce, and the
// final state.
func bigHistory(n int) *History {
	h := &History{Run: RunInfo{Mode: ModeCluster, Nodes: []NodeID{1, 2, 3}, Partitions: []PartKey{tp0},
		AcksTimeout: 30 * sec, End: time.Duration(n+10) * sec}}
	var payloads []uint64
	var raft []RaftEntry
	for i := range n {
		at := time.Duration(i+1) * sec
		off := int64(2 * i)
		p := []uint64{uint64(2*i + 1), uint64(2*i + 2)}
		payloads = append(payloads, p...)
		raft = append(raft, batch(uint64(i+1), 1, off, p...))
		addOp(h, Op{Node: 1, Kind: KindProduce, Acks: -1, Payloads: p, Invoke: at, Complete: at + 100*ms, Outcome: OutcomeOK,
			Offset: off, Evidence: &Evidence{Term: 1, HWM: off + 2, EntryTerm: 1, EntryIndex: uint64(i + 1)}})
		for node := NodeID(1); node <= 3; node++ {
			role := RoleFollower
			if node == 1 {
				role = RoleLeader
			}
			h.Obs = append(h.Obs, obs(at+100*ms, node, 1, role, 1, 1, off+2, off+2))
		}
		addOp(h, Op{Node: NodeID(i%3 + 1), Kind: KindFetch, From: off, Invoke: at + 200*ms, Complete: at + 200*ms, Outcome: OutcomeOK,
			Fetch: &FetchReply{Records: recs(off, p...), HWM: off + 2, LogEnd: off + 2}})
	}
	h.Final = &FinalState{Time: h.Run.End}
	for node := NodeID(1); node <= 3; node++ {
		h.Final.Nodes = append(h.Final.Nodes, finalNode(node, 1, slices.Clone(raft), payloads...))
	}
	return h
}

func TestCheckBigHistoryQuiet(t *testing.T) {
	rep := Check(bigHistory(2000))
	if !rep.OK() || len(rep.Violations) != 0 {
		t.Fatalf("violations on a valid history:\n%s", rep.String())
	}
}

// BenchmarkCheck measures Check on a history of 10,000 produces, 10,000
// fetches, 30,000 observations and 3 x 20,000 final records.
func BenchmarkCheck(b *testing.B) {
	h := bigHistory(10000)
	b.ResetTimer()
	for b.Loop() {
		if rep := Check(h); !rep.OK() {
			b.Fatal(rep.String())
		}
	}
}

// TestSortHWMPoints: sortHWMPoints gives exactly what sorting the whole
// slice gives, for the shapes checkS3 builds (observations in order, with
// ties from a partition listed twice, fetches in any order, at most one
// final point) and for shapes it never builds.
func TestSortHWMPoints(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 3000; iter++ {
		var ps []hwmPoint
		tm := time.Duration(0)
		nobs := rng.IntN(30)
		for i := 0; i < nobs; i++ {
			tm += time.Duration(rng.IntN(3))
			ps = append(ps, hwmPoint{t: tm, rank: 0, seq: i, hwm: int64(rng.IntN(50))})
			if iter%5 == 0 && rng.IntN(8) == 0 {
				// A partition listed twice in one observation: a tie.
				ps = append(ps, hwmPoint{t: tm, rank: 0, seq: i, hwm: int64(rng.IntN(50))})
			}
		}
		nf := rng.IntN(30)
		for _, id := range rng.Perm(nf) {
			ps = append(ps, hwmPoint{t: time.Duration(rng.IntN(int(tm) + 3)), rank: 1, seq: 1000 + id, hwm: int64(rng.IntN(50))})
		}
		if rng.IntN(2) == 0 {
			ps = append(ps, hwmPoint{t: tm + time.Duration(rng.IntN(3)) - 1, rank: 2, hwm: int64(rng.IntN(50))})
		}
		if iter%7 == 0 {
			// Not a shape checkS3 builds: anything goes.
			rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
		}
		want := slices.Clone(ps)
		slices.SortFunc(want, cmpHWMPoint)
		got := slices.Clone(ps)
		sortHWMPoints(got, nil)
		if !slices.Equal(got, want) {
			t.Fatalf("iteration %d: %v\nsorted to %v\nwant      %v", iter, ps, got, want)
		}
	}
}

// TestL2NodeSideExcused: the node's side of L2 judges only what the node's
// own timer could have ended: not a request it held while paused, crashed
// or clock-stepped (Served.Interrupted), not one answered within the
// timeout and its slack, and not acks=0; nor a timeout answer given at the
// timeout, or early across a clock step.
func TestL2NodeSideExcused(t *testing.T) {
	const sec = time.Second
	tests := []struct {
		name string
		op   Op
	}{
		{"interrupted", Op{Acks: 1, Served: &Served{At: 5 * sec, Answered: 60 * sec, Interrupted: true}}},
		{"within the slack", Op{Acks: -1, Served: &Served{At: 5 * sec, Answered: 5*sec + 31*sec}}},
		{"held at the end, not yet past", Op{Acks: 1, Served: &Served{At: 5 * sec, Until: 30 * sec}}},
		{"acks=0", Op{Acks: 0, Served: &Served{At: 5 * sec, Answered: 60 * sec}}},
		{"timed out at the timeout", Op{Acks: -1, Served: &Served{At: 5 * sec, Answered: 35 * sec, TimedOut: true}}},
		{"early timeout across a clock step", Op{Acks: 1, Served: &Served{At: 5 * sec, Answered: 6 * sec, TimedOut: true, Interrupted: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := validCluster()
			op := tt.op
			op.Node, op.Kind, op.Payloads, op.Invoke, op.Complete = 1, KindProduce, []uint64{400}, 10*sec, 11*sec
			op.Outcome, op.Err = OutcomeIndeterminate, "client: request timed out"
			if op.Acks == 0 {
				op.Outcome, op.Err = OutcomeNone, ""
			}
			addOp(h, op)
			rep := Check(h)
			if rep.Err != nil {
				t.Fatal(rep.Err)
			}
			if slices.Contains(violated(&rep), InvL2) {
				t.Errorf("L2 violated:\n%s", rep.String())
			}
		})
	}
}

// TestFetchContract: S4 judges a fetch answer against its request.
func TestFetchContract(t *testing.T) {
	recs := func(from, n int64) []Rec {
		var out []Rec
		for i := int64(0); i < n; i++ {
			out = append(out, Rec{Offset: from + i, Payload: uint64(100 + from + i)})
		}
		return out
	}
	tests := []struct {
		name string
		op   Op
		bad  bool
	}{
		{"records from the offset", Op{From: 2, Outcome: OutcomeOK, Fetch: &FetchReply{HWM: 5, LogEnd: 6, Records: recs(2, 3)}}, false},
		{"at the HWM: empty", Op{From: 5, Outcome: OutcomeOK, Fetch: &FetchReply{HWM: 5, LogEnd: 6}}, false},
		{"past the HWM refused", Op{From: 6, Outcome: OutcomeFail, Err: "node: offset out of range: 6 not in [0, 5]", Fetch: &FetchReply{HWM: 5, LogEnd: 7}}, false},
		{"past the HWM answered", Op{From: 6, Outcome: OutcomeOK, Fetch: &FetchReply{HWM: 5, LogEnd: 7}}, true},
		{"below the HWM, nothing", Op{From: 2, Outcome: OutcomeOK, Fetch: &FetchReply{HWM: 5, LogEnd: 5}}, true},
		{"first record elsewhere", Op{From: 2, Outcome: OutcomeOK, Fetch: &FetchReply{HWM: 5, LogEnd: 5, Records: recs(3, 2)}}, true},
		{"a gap", Op{From: 1, Outcome: OutcomeOK, Fetch: &FetchReply{HWM: 5, LogEnd: 5, Records: []Rec{{1, 101}, {3, 103}}}}, true},
		{"in range refused", Op{From: 3, Outcome: OutcomeFail, Err: "node: offset out of range: 3 not in [0, 5]", Fetch: &FetchReply{HWM: 5, LogEnd: 5}}, true},
	}
	for _, tt := range tests {
		if got := fetchContract(&tt.op); (got != "") != tt.bad {
			t.Errorf("%s: fetchContract = %q, want a violation %v", tt.name, got, tt.bad)
		}
	}
}

// TestNodeDefiniteAnswer: a node's acks timeout answered as a definite
// failure is L2; a node's definite failure counts for S6 even when the
// client gave up first.
func TestNodeDefiniteAnswer(t *testing.T) {
	const sec = time.Second
	h := validCluster()
	op := Op{Node: 1, Kind: KindProduce, Acks: 1, Payloads: []uint64{400}, Invoke: 10 * sec, Complete: 11 * sec,
		Outcome: OutcomeIndeterminate, Err: "client: request timed out",
		Served: &Served{At: 10 * sec, Answered: 40 * sec, TimedOut: true, Definite: true}}
	addOp(h, op)
	rep := Check(h)
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if !slices.Contains(violated(&rep), InvL2) {
		t.Errorf("a definite timeout answer passed L2:\n%s", rep.String())
	}
	ix := &index{ops: []*Op{&op}}
	if n := allowedCopies(ix, []*Op{&op}); n != 0 {
		t.Errorf("a payload whose only attempt the node failed definitely may appear %d times, want 0", n)
	}
	op.Served.Definite = false
	if n := allowedCopies(ix, []*Op{&op}); n != 1 {
		t.Errorf("an indeterminate attempt allows %d copies, want 1", n)
	}
}
