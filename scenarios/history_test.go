package scenarios

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const (
	ms  = time.Millisecond
	sec = time.Second
)

var tp0 = PartKey{Topic: "t", Partition: 0}

// parts returns the observed state of t/0.
func parts(hwm, logEnd int64) []PartState {
	return []PartState{{Topic: "t", Partition: 0, HWM: hwm, LogEnd: logEnd}}
}

// obs returns an up observation.
func obs(t time.Duration, node NodeID, inc uint64, role Role, term uint64, leader NodeID, hwm, logEnd int64) Observation {
	return Observation{Time: t, Node: node, Incarnation: inc, Up: true, Role: role, Term: term, Leader: leader, Parts: parts(hwm, logEnd)}
}

// recs returns contiguous records from offset first.
func recs(first int64, payloads ...uint64) []Rec {
	out := make([]Rec, len(payloads))
	for i, p := range payloads {
		out[i] = Rec{Offset: first + int64(i), Payload: p}
	}
	return out
}

func batch(index, term uint64, base int64, payloads ...uint64) RaftEntry {
	return RaftEntry{Index: index, Term: term, Kind: EntryBatch, Topic: "t", Partition: 0, Base: base, Payloads: payloads}
}

// finalNode returns a final node holding payloads from offset 0 on t/0.
func finalNode(node NodeID, inc uint64, raft []RaftEntry, payloads ...uint64) FinalNode {
	n := int64(len(payloads))
	return FinalNode{Node: node, Incarnation: inc, Up: true,
		Parts:     []FinalPart{{Topic: "t", Partition: 0, HWM: n, LogEnd: n, Records: recs(0, payloads...)}},
		RaftFirst: 1, Raft: raft}
}

// insertObs adds observations keeping the record in time order (an
// observation at an instant already recorded goes after the others).
func insertObs(h *History, os ...Observation) {
	for _, o := range os {
		i := len(h.Obs)
		for i > 0 && h.Obs[i-1].Time > o.Time {
			i--
		}
		h.Obs = slices.Insert(h.Obs, i, o)
	}
}

// addOp appends an op with the next id and returns a pointer to it.
func addOp(h *History, o Op) *Op {
	o.ID = OpID(len(h.Ops) + 1)
	if o.Topic == "" {
		o.Topic = "t"
	}
	h.Ops = append(h.Ops, o)
	return &h.Ops[len(h.Ops)-1]
}

// validCluster returns a fresh, valid three-node history exercising every
// invariant: acks=-1, acks=1 and acks=0 produces, a fetch, an indeterminate
// acks=-1 produce that did commit and its retry (so one payload appears
// twice, allowed), a liveness phase with a probe, and the final state.
//
// Offsets of t/0 at the end: 0:101 1:102 (op 1, acks=-1), 2:103 (op 2,
// acks=1), 3:104 (op 3, acks=0), 4:105 (op 5, the probe), 5:106 (op 6,
// indeterminate), 6:106 (op 7, retry of op 6). Raft: 1 empty, 2..7 one
// batch each.
func validCluster() *History {
	h := &History{Run: RunInfo{Mode: ModeCluster, Seed: 7, Nodes: []NodeID{1, 2, 3}, Partitions: []PartKey{tp0},
		AcksTimeout: 30 * sec, End: 100 * sec}}
	for n := NodeID(1); n <= 3; n++ {
		h.Obs = append(h.Obs, obs(0, n, 1, RoleFollower, 1, 0, 0, 0))
	}
	h.Obs = append(h.Obs,
		obs(1*sec, 1, 1, RoleLeader, 1, 1, 0, 0),
		obs(1*sec, 2, 1, RoleFollower, 1, 1, 0, 0),
		obs(1*sec, 3, 1, RoleFollower, 1, 1, 0, 0))
	for _, s := range []struct {
		t           time.Duration
		hwm, logEnd int64
	}{{2100 * ms, 2, 2}, {3200 * ms, 4, 4}, {52100 * ms, 5, 5}, {61 * sec, 6, 6}, {91100 * ms, 7, 7}} {
		h.Obs = append(h.Obs, obs(s.t, 1, 1, RoleLeader, 1, 1, s.hwm, s.logEnd))
		for n := NodeID(2); n <= 3; n++ {
			h.Obs = append(h.Obs, obs(s.t, n, 1, RoleFollower, 1, 1, s.hwm, s.logEnd))
		}
	}
	h.Ops = []Op{
		{ID: 1, Client: 1, Node: 1, Kind: KindProduce, Topic: "t", Acks: -1, Payloads: []uint64{101, 102},
			Invoke: 2 * sec, Complete: 2100 * ms, Outcome: OutcomeOK, Offset: 0,
			Evidence: &Evidence{Term: 1, HWM: 2, EntryTerm: 1, EntryIndex: 2}},
		{ID: 2, Client: 1, Node: 1, Kind: KindProduce, Topic: "t", Acks: 1, Payloads: []uint64{103},
			Invoke: 3 * sec, Complete: 3050 * ms, Outcome: OutcomeOK, Offset: 2, Evidence: &Evidence{Term: 1, DurableEnd: 3}},
		{ID: 3, Client: 2, Node: 1, Kind: KindProduce, Topic: "t", Acks: 0, Payloads: []uint64{104},
			Invoke: 3100 * ms, Complete: 3100 * ms, Outcome: OutcomeNone},
		{ID: 4, Client: 3, Node: 2, Kind: KindFetch, Topic: "t", From: 0, Invoke: 4 * sec, Complete: 4 * sec, Outcome: OutcomeOK,
			Fetch: &FetchReply{Records: recs(0, 101, 102, 103), HWM: 4, LogEnd: 4}},
		{ID: 5, Client: 9, Node: 1, Kind: KindProduce, Topic: "t", Acks: -1, Payloads: []uint64{105},
			Invoke: 52 * sec, Complete: 52100 * ms, Outcome: OutcomeOK, Offset: 4,
			Evidence: &Evidence{Term: 1, HWM: 5, EntryTerm: 1, EntryIndex: 5}},
		{ID: 6, Client: 1, Node: 1, Kind: KindProduce, Topic: "t", Acks: -1, Payloads: []uint64{106},
			Invoke: 60 * sec, Complete: 90 * sec, Outcome: OutcomeIndeterminate, Err: "timeout"},
		{ID: 7, Client: 1, Node: 1, Kind: KindProduce, Topic: "t", Acks: -1, Payloads: []uint64{106}, RetryOf: 6,
			Invoke: 91 * sec, Complete: 91100 * ms, Outcome: OutcomeOK, Offset: 6,
			Evidence: &Evidence{Term: 1, HWM: 7, EntryTerm: 1, EntryIndex: 7}},
	}
	raft := func() []RaftEntry {
		return []RaftEntry{{Index: 1, Term: 1, Kind: EntryEmpty}, batch(2, 1, 0, 101, 102), batch(3, 1, 2, 103),
			batch(4, 1, 3, 104), batch(5, 1, 4, 105), batch(6, 1, 5, 106), batch(7, 1, 6, 106)}
	}
	h.Final = &FinalState{Time: 100 * sec}
	for n := NodeID(1); n <= 3; n++ {
		h.Final.Nodes = append(h.Final.Nodes, finalNode(n, 1, raft(), 101, 102, 103, 104, 105, 106, 106))
	}
	h.Live = &LivenessReport{HealedAt: 50 * sec, Bound: 20 * sec, ConvergedAt: 52100 * ms, OneLeader: true, Leader: 1,
		HWMsAtCommitEnd: true, WaitersResolved: true, ProbeOp: 5, ProbeOK: true}
	return h
}

// validStandalone returns a fresh, valid one-node history: acks=1 and
// acks=-1 (which behaves as acks=1), an acks=0, a fetch.
func validStandalone() *History {
	h := &History{Run: RunInfo{Mode: ModeStandalone, Nodes: []NodeID{1}, Partitions: []PartKey{tp0},
		AcksTimeout: 30 * sec, End: 20 * sec}}
	h.Obs = []Observation{obs(0, 1, 1, RoleLeader, 0, 1, 0, 0), obs(1010*ms, 1, 1, RoleLeader, 0, 1, 1, 1),
		obs(2010*ms, 1, 1, RoleLeader, 0, 1, 3, 3)}
	h.Ops = []Op{
		{ID: 1, Node: 1, Kind: KindProduce, Topic: "t", Acks: 1, Payloads: []uint64{1}, Invoke: 1 * sec, Complete: 1010 * ms,
			Outcome: OutcomeOK, Offset: 0, Evidence: &Evidence{DurableEnd: 1}},
		{ID: 2, Node: 1, Kind: KindProduce, Topic: "t", Acks: -1, Payloads: []uint64{2}, Invoke: 2 * sec, Complete: 2010 * ms,
			Outcome: OutcomeOK, Offset: 1, Evidence: &Evidence{DurableEnd: 3, HWM: 3}},
		{ID: 3, Node: 1, Kind: KindProduce, Topic: "t", Acks: 0, Payloads: []uint64{3}, Invoke: 2 * sec, Complete: 2 * sec,
			Outcome: OutcomeNone},
		{ID: 4, Node: 1, Kind: KindFetch, Topic: "t", Invoke: 3 * sec, Complete: 3 * sec, Outcome: OutcomeOK,
			Fetch: &FetchReply{Records: recs(0, 1, 2, 3), HWM: 3, LogEnd: 3}},
	}
	h.Final = &FinalState{Time: 20 * sec, Nodes: []FinalNode{finalNode(1, 1, nil, 1, 2, 3)}}
	h.Final.Nodes[0].RaftFirst = 0
	h.Live = &LivenessReport{HealedAt: 10 * sec, Bound: 5 * sec, ConvergedAt: 10 * sec, OneLeader: true, Leader: 1,
		HWMsAtCommitEnd: true, WaitersResolved: true, ProbeOK: true}
	return h
}

// acks1Loss returns a cluster history in which the acks=1 op 1 (payload
// 201 at offset 0, acked by n1 in term 1) is lost: op 2's payload 202 is
// committed at offset 0 instead. With change, n2 became leader in term 2
// first and committed it (the loss DESIGN.md allows); without, n1 itself
// committed 202 over its own acked record in term 1 (a bug: no leadership
// change explains the loss).
func acks1Loss(change bool) *History {
	h := &History{Run: RunInfo{Mode: ModeCluster, Nodes: []NodeID{1, 2, 3}, Partitions: []PartKey{tp0},
		AcksTimeout: 30 * sec, End: 10 * sec}}
	for n := NodeID(1); n <= 3; n++ {
		h.Obs = append(h.Obs, obs(0, n, 1, RoleFollower, 1, 0, 0, 0))
	}
	h.Obs = append(h.Obs, obs(1*sec, 1, 1, RoleLeader, 1, 1, 0, 0), obs(2010*ms, 1, 1, RoleLeader, 1, 1, 0, 1))
	leader, term := NodeID(1), uint64(1)
	if change {
		leader, term = 2, 2
		h.Obs = append(h.Obs, obs(3*sec, 2, 1, RoleLeader, 2, 2, 0, 0), obs(3500*ms, 1, 1, RoleFollower, 2, 2, 0, 0))
	}
	h.Obs = append(h.Obs, obs(4100*ms, leader, 1, RoleLeader, term, leader, 1, 1))
	h.Ops = []Op{
		{ID: 1, Node: 1, Kind: KindProduce, Topic: "t", Acks: 1, Payloads: []uint64{201}, Invoke: 2 * sec, Complete: 2010 * ms,
			Outcome: OutcomeOK, Offset: 0, Evidence: &Evidence{Term: 1, DurableEnd: 1}},
		{ID: 2, Node: leader, Kind: KindProduce, Topic: "t", Acks: -1, Payloads: []uint64{202}, Invoke: 4 * sec, Complete: 4100 * ms,
			Outcome: OutcomeOK, Offset: 0, Evidence: &Evidence{Term: term, HWM: 1, EntryTerm: term, EntryIndex: 2}},
	}
	h.Final = &FinalState{Time: 10 * sec}
	for n := NodeID(1); n <= 3; n++ {
		h.Final.Nodes = append(h.Final.Nodes, finalNode(n, 1, []RaftEntry{{Index: 1, Term: term, Kind: EntryEmpty}, batch(2, term, 0, 202)}, 202))
	}
	return h
}

func TestValidHistoriesValidate(t *testing.T) {
	for name, h := range map[string]*History{"cluster": validCluster(), "standalone": validStandalone(),
		"acks1-loss": acks1Loss(true), "acks1-loss-no-change": acks1Loss(false)} {
		if err := h.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(h *History)
		want   string
	}{
		{"mode", func(h *History) { h.Run.Mode = "raft" }, "mode"},
		{"no nodes", func(h *History) { h.Run.Nodes = nil }, "no nodes"},
		{"repeated node", func(h *History) { h.Run.Nodes = []NodeID{1, 1, 2} }, "repeated"},
		{"standalone with 3 nodes", func(h *History) { h.Run.Mode = ModeStandalone }, "standalone"},
		{"no timeout", func(h *History) { h.Run.AcksTimeout = 0 }, "acks timeout"},
		{"op id gap", func(h *History) { h.Ops[2].ID = 9 }, "has id 9"},
		{"op unknown node", func(h *History) { h.Ops[0].Node = 4 }, "not in the run"},
		{"op unknown partition", func(h *History) { h.Ops[0].Partition = 3 }, "not in the run"},
		{"acks 2", func(h *History) { h.Ops[0].Acks = 2 }, "acks 2"},
		{"acks=0 ok", func(h *History) { h.Ops[2].Outcome = OutcomeOK }, "with acks 0"},
		{"acks=1 none", func(h *History) { h.Ops[1].Outcome = OutcomeNone; h.Ops[1].Evidence = nil }, "with acks 1"},
		{"complete before invoke", func(h *History) { h.Ops[0].Complete = 1 * sec }, "before invoke"},
		{"complete after end", func(h *History) { h.Ops[0].Complete = 200 * sec }, "after end"},
		{"pending with completion", func(h *History) { h.Ops[0].Outcome = OutcomePending }, "pending with completion"},
		{"outcome", func(h *History) { h.Ops[0].Outcome = "maybe" }, "outcome"},
		{"produce without payloads", func(h *History) { h.Ops[0].Payloads = nil }, "payloads"},
		{"offset on failure", func(h *History) { h.Ops[5].Offset = 3 }, "offset 3"},
		{"retry of later op", func(h *History) { h.Ops[5].RetryOf = 7 }, "retry of 7"},
		{"retry of fetch", func(h *History) { h.Ops[6].RetryOf = 4 }, "retry of 4"},
		{"fetch without reply", func(h *History) { h.Ops[3].Fetch = nil }, "fetch outcome"},
		// A refused fetch may report the HWM and log end, never records.
		{"failed fetch with records", func(h *History) {
			h.Ops[3].Outcome, h.Ops[3].Err = OutcomeFail, "node: offset out of range"
			h.Ops[3].Fetch.Records = recs(0, 1)
		}, "fetch outcome"},
		{"fetch offsets not ascending", func(h *History) { h.Ops[3].Fetch.Records = recs(0, 1, 2); h.Ops[3].Fetch.Records[1].Offset = 0 },
			"not ascending"},
		{"huge offset", func(h *History) { h.Ops[0].Offset = maxOffset + 1 }, "offset"},
		{"evidence after the client got the answer", func(h *History) { h.Ops[1].Evidence.At = 3060 * ms }, "evidence at"},
		{"evidence before the op", func(h *History) { h.Ops[1].Evidence.At = 2 * sec }, "evidence at"},
		{"obs out of order", func(h *History) { h.Obs[5].Time = 0 }, "previous"},
		{"obs unknown partition", func(h *History) { h.Obs[0].Parts[0].Topic = "x" }, "partition"},
		{"final node repeated", func(h *History) { h.Final.Nodes[1].Node = 1 }, "repeated"},
		{"final records past hwm", func(h *History) { h.Final.Nodes[0].Parts[0].HWM = 1 }, "go past hwm"},
		{"final records gap", func(h *History) { h.Final.Nodes[0].Parts[0].Records[3].Offset = 9 }, "not contiguous"},
		{"raft not contiguous", func(h *History) { h.Final.Nodes[0].Raft[2].Index = 9 }, "not contiguous"},
		{"probe not an op", func(h *History) { h.Live.ProbeOp = 40 }, "probe op"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := validCluster()
			tt.mutate(h)
			err := h.Validate()
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrMalformed mentioning %q", err, tt.want)
			}
			if r := Check(h); !errors.Is(r.Err, ErrMalformed) || len(r.Verdicts) != 0 {
				t.Fatalf("Check: Err %v, %d verdicts; want ErrMalformed and none", r.Err, len(r.Verdicts))
			}
		})
	}
}

// cmpHistory compares histories; JSON cannot tell a nil slice from an empty
// one, and neither can the checkers.
var cmpHistory = cmpopts.EquateEmpty()

func TestJSONLRoundTrip(t *testing.T) {
	for name, h := range map[string]*History{"cluster": validCluster(), "standalone": validStandalone(),
		"acks1-loss": acks1Loss(true), "no final": {Run: validCluster().Run}} {
		t.Run(name, func(t *testing.T) {
			h.Run.BeyondBudget, h.Run.BeyondBudgetWhy = true, []string{"t=3s: latent corruption of n2"}
			var buf bytes.Buffer
			if err := h.WriteJSONL(&buf); err != nil {
				t.Fatal(err)
			}
			lines := strings.Count(buf.String(), "\n")
			want := 1 + len(h.Ops) + len(h.Obs)
			if h.Final != nil {
				want += 1 + len(h.Final.Nodes)
			}
			if h.Live != nil {
				want++
			}
			if lines != want {
				t.Errorf("%d lines, want %d", lines, want)
			}
			got, err := ReadJSONL(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(h, got, cmpHistory); d != "" {
				t.Fatalf("round trip changed the history (-want +got):\n%s", d)
			}
		})
	}
}

func TestReadJSONLRejects(t *testing.T) {
	var good bytes.Buffer
	if err := validCluster().WriteJSONL(&good); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(good.String(), "\n")
	run, op := lines[0], lines[1]
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "no run record"},
		{"op first", op + run, "first record is not the run"},
		{"two runs", run + run, "second run record"},
		{"not json", run + "{op:\n", "line 2"},
		{"unknown field", run + `{"op":{"id":1,"colour":"red"}}` + "\n", "unknown field"},
		{"two kinds", strings.TrimSuffix(run, "}\n") + `,"live":{}}` + "\n", "2 record kinds"},
		{"no kind", run + "{}\n", "0 record kinds"},
		{"two values", run + `{"live":{}} {"live":{}}` + "\n", "more than one value"},
		{"final_node first", run + `{"final_node":{"node":1}}` + "\n", "final_node before final"},
		{"invalid history", run + strings.Replace(op, `"acks":-1`, `"acks":5`, 1), "acks 5"},
		{"line too long", run + `{"live":{"detail":"` + strings.Repeat("x", MaxJSONLLine) + `"}}` + "\n", "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadJSONL(strings.NewReader(tt.in))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadJSONL = %v, want ErrMalformed mentioning %q", err, tt.want)
			}
		})
	}
}

func TestRecorder(t *testing.T) {
	r := NewRecorder(RunInfo{Mode: ModeStandalone, Nodes: []NodeID{1}, Partitions: []PartKey{tp0}, AcksTimeout: 30 * sec})
	if !r.Observe(obs(0, 1, 1, RoleLeader, 0, 1, 0, 0)) {
		t.Fatal("first observation not recorded")
	}
	if r.Observe(obs(5*ms, 1, 1, RoleLeader, 0, 1, 0, 0)) {
		t.Fatal("unchanged observation recorded")
	}
	id := r.Invoke(Op{Node: 1, Kind: KindProduce, Topic: "t", Acks: 1, Payloads: []uint64{1}, Invoke: 1 * sec, Outcome: OutcomeOK, Complete: 9})
	if id != 1 || r.History().Ops[0].Outcome != OutcomePending || r.History().Ops[0].Complete != 0 {
		t.Fatalf("Invoke: id %d, op %+v", id, r.History().Ops[0])
	}
	fid := r.Invoke(Op{Node: 1, Kind: KindFetch, Topic: "t", Invoke: 1 * sec})
	if !r.Observe(obs(1010*ms, 1, 1, RoleLeader, 0, 1, 1, 1)) {
		t.Fatal("changed observation not recorded")
	}
	r.Complete(id, 1010*ms, Reply{Outcome: OutcomeOK, Offset: 0, Evidence: &Evidence{DurableEnd: 1}})
	r.Complete(fid, 1020*ms, Reply{Outcome: OutcomeOK, Fetch: &FetchReply{Records: recs(0, 1), HWM: 1, LogEnd: 1}})
	r.MarkBeyondBudget("because")
	r.SetFinal(FinalState{Time: 2 * sec, Nodes: []FinalNode{finalNode(1, 1, nil, 1)}})
	r.SetLiveness(LivenessReport{HealedAt: 1 * sec, Bound: sec, OneLeader: true, HWMsAtCommitEnd: true, WaitersResolved: true, ProbeOK: true})
	r.End(2 * sec)
	h := r.History()
	h.Final.Nodes[0].RaftFirst = 0
	if len(h.Obs) != 2 || !h.Run.BeyondBudget || h.Run.End != 2*sec {
		t.Fatalf("history %+v", h)
	}
	rep := Check(h)
	if rep.Err != nil || len(rep.Violations) != 0 {
		t.Fatalf("recorded history: %v", rep.String())
	}
	for _, bad := range []struct {
		name string
		fn   func()
	}{
		{"unknown op", func() { r.Complete(9, 0, Reply{Outcome: OutcomeOK}) }},
		{"completed twice", func() { r.Complete(id, 0, Reply{Outcome: OutcomeOK}) }},
		{"pending completion", func() { r.Complete(r.Invoke(Op{}), 0, Reply{Outcome: OutcomePending}) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", bad.name)
				}
			}()
			bad.fn()
		}()
	}
}

func TestPayload(t *testing.T) {
	for _, tt := range []struct {
		id       uint64
		size     int
		wantSize int
	}{{0, 0, 8}, {1, 8, 8}, {0xdeadbeef12345678, 100, 100}} {
		b := NewPayload(tt.id, tt.size)
		got, err := PayloadIDOf(b)
		if err != nil || got != tt.id || len(b) != tt.wantSize {
			t.Errorf("NewPayload(%d, %d): %d bytes, id %d, %v", tt.id, tt.size, len(b), got, err)
		}
	}
	if a, b := NewPayload(1, 32), NewPayload(2, 32); bytes.Equal(a[8:], b[8:]) {
		t.Error("filler does not depend on the id")
	}
	if _, err := PayloadIDOf([]byte{1, 2, 3}); !errors.Is(err, ErrShortRecord) {
		t.Errorf("short record: %v", err)
	}
}

// TestPayloadFiller pins the filler byte by byte to its definition (byte i
// is byte(id>>(8*(i%8))) ^ byte(i)): payload bytes reach the disk images and
// so the trace hash, so the word-at-a-time fill must not change one.
func TestPayloadFiller(t *testing.T) {
	for _, id := range []uint64{0, 1, 0xff, 0xdeadbeef12345678, ^uint64(0)} {
		for size := 0; size < 600; size += 7 {
			b := NewPayload(id, size)
			for i := PayloadIDSize; i < len(b); i++ {
				if want := byte(id>>(8*(i%8))) ^ byte(i); b[i] != want {
					t.Fatalf("NewPayload(%#x, %d) byte %d = %#x, want %#x", id, size, i, b[i], want)
				}
			}
		}
	}
}

// FuzzReadJSONL feeds arbitrary bytes to ReadJSONL: it must return an error
// or a valid history, never panic; a history it accepts must survive Check
// without panicking and round-trip unchanged. The seeds are whole histories
// (kilobytes), so run it with a short -fuzzminimizetime (e.g. 2s): the
// default spends up to a minute shrinking each new input.
func FuzzReadJSONL(f *testing.F) {
	for _, h := range []*History{validCluster(), validStandalone(), acks1Loss(true), acks1Loss(false)} {
		var buf bytes.Buffer
		if err := h.WriteJSONL(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte(`{"run":{"mode":"cluster","nodes":[1],"partitions":[{"topic":"t","partition":0}],"acks_timeout_ns":1,"end_ns":0}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ReadJSONL(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		rep := Check(h)
		if rep.Err != nil {
			t.Fatalf("ReadJSONL accepted a history Check rejects: %v", rep.Err)
		}
		_ = rep.String()
		var buf bytes.Buffer
		if err := h.WriteJSONL(&buf); err != nil {
			t.Fatal(err)
		}
		h2, err := ReadJSONL(&buf)
		if err != nil {
			t.Fatalf("re-reading a written history: %v", err)
		}
		if d := cmp.Diff(h, h2, cmpHistory); d != "" {
			t.Fatalf("round trip changed the history:\n%s", d)
		}
	})
}
