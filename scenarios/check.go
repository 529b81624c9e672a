package scenarios

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The names of the invariants of DESIGN.md section 6 (Violation.Invariant
// and InvariantVerdict.Invariant hold them; they are plain strings so the
// harness can add names of its own, such as a panic in the system under
// test).
const (
	InvS1  = "S1"  // no lost acks=-1 write
	InvS2  = "S2"  // prefix agreement
	InvS3  = "S3"  // HWM monotonic, HWM <= log end (and <= what a majority holds durably)
	InvS4  = "S4"  // reads below HWM, reads never change
	InvS5  = "S5"  // acks=1 durability, clean loss only
	InvS6  = "S6"  // offsets unique, payloads at most once
	InvS7  = "S7"  // acks ordering evidence
	InvS8  = "S8"  // one leader per term, waiter's own entry
	InvS9  = "S9"  // durable before promised (the oracle's Raft message monitor)
	InvS10 = "S10" // the node's durability report agrees with its disk
	InvS11 = "S11" // no silent shortening: recovery restores what is durable
	// InvS12: a produce request's records are all present at consecutive
	// offsets or none is (batch path and standalone; see checkS12).
	InvS12 = "S12"
	InvL1  = "L1" // convergence after healing
	InvL2  = "L2" // acks=1 and acks=-1 answered within the timeout
	// InvLivelock: the run's scheduler tripped its storm guard (more than
	// StormWork events and KiB sent within StormWindow of virtual time:
	// messages or timers that keep scheduling each other, or ever larger
	// messages). The harness stops the run
	// there, so a livelock ends as a replayable failure instead of a run
	// that spins and grows without bound.
	InvLivelock = "LIVELOCK"
	// InvL3: no timeout or indeterminate answer in a fault-free stretch.
	InvL3 = "L3"
	// InvL4: fault-free latencies order acks=0 < 1 < -1 and stay bounded.
	InvL4 = "L4"
	InvA1 = "A1" // a healthy majority serves (avail.go)
	// InvA2: a node with a hung disk does not campaign, and a leader
	// stepping aside from one hands leadership to another member
	// (oracle.go's onCampaign and onStepAside, judged while the run goes).
	InvA2 = "A2"
	// InvA3: a leader that loses leadership answers every request it holds
	// at once (oracle.go's onLeaderLost, judged while the run goes).
	InvA3 = "A3"
)

// CheckedInvariants lists the invariants Check judges, in report order.
// S9 and S11 (and S3 against the disks) are judged by the harness's oracle
// while the run goes, from the simulator's durable images, and reach the
// report as harness violations; S10 is judged from the reply evidence.
var CheckedInvariants = []string{InvS1, InvS2, InvS3, InvS4, InvS5, InvS6, InvS7, InvS8, InvS9, InvS10, InvS11, InvS12,
	InvL1, InvL2, InvL3, InvL4, InvA1, InvA2, InvA3}

// Verdict is the judgement of one invariant.
type Verdict string

// Verdicts.
const (
	VerdictOK       Verdict = "ok"
	VerdictViolated Verdict = "violated"
	// VerdictNA: the history holds nothing the invariant speaks about (for
	// example no acks=1 success for S5, standalone mode for S8).
	VerdictNA Verdict = "not-applicable"
)

// Violation is one broken invariant instance.
type Violation struct {
	Invariant string
	// Detail is human-readable: op ids, offsets, nodes and times, and for
	// compared states a go-cmp diff. It belongs in reports only, never in a
	// trace (go-cmp output is not stable across builds).
	Detail string
	// Time is the virtual time of the event that exposed the violation.
	Time time.Duration
	// Ops are the op ids involved (may be empty).
	Ops []OpID
}

// String renders the violation on one line (the detail may add more).
func (v Violation) String() string {
	return fmt.Sprintf("%s at %v: %s", v.Invariant, v.Time, v.Detail)
}

// InvariantVerdict pairs an invariant with its verdict.
type InvariantVerdict struct {
	Invariant string
	Verdict   Verdict
}

// LatencyStat summarises reply latency (completion - invoke) for one acks
// level over successful produces (acks=0: every answered produce).
type LatencyStat struct {
	Acks   int8
	Count  int
	Median time.Duration
	P99    time.Duration
}

// Report is the result of Check.
type Report struct {
	// Err is set when the history is malformed; nothing was judged.
	Err error
	// BeyondBudget copies the run's label: violations are listed but not
	// counted as bugs (see Bugs).
	BeyondBudget    bool
	BeyondBudgetWhy []string
	// Verdicts holds one verdict per invariant, in CheckedInvariants order.
	Verdicts []InvariantVerdict
	// Violations are sorted by invariant (CheckedInvariants order), then time.
	Violations []Violation
	// Latency holds per-acks-level latency (acks 0, 1, -1; levels with no
	// samples are omitted). S7's consequence is that medians order
	// acks=0 < acks=1 < acks=-1; this is reported, not judged.
	Latency []LatencyStat
}

// Verdict returns the verdict for inv (VerdictNA for an unknown name).
func (r *Report) Verdict(inv string) Verdict {
	for _, v := range r.Verdicts {
		if v.Invariant == inv {
			return v.Verdict
		}
	}
	return VerdictNA
}

// Bugs returns the violations that count as bugs: all of them, unless the
// run went beyond the fault budget.
func (r *Report) Bugs() []Violation {
	if r.BeyondBudget {
		return nil
	}
	return r.Violations
}

// OK reports whether the history was well formed and shows no bug.
func (r *Report) OK() bool { return r.Err == nil && len(r.Bugs()) == 0 }

// String renders the report for a human.
func (r *Report) String() string {
	var b strings.Builder
	if r.Err != nil {
		fmt.Fprintf(&b, "history not checked: %v\n", r.Err)
		return b.String()
	}
	for i, v := range r.Verdicts {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%s", v.Invariant, v.Verdict)
	}
	b.WriteString("\n")
	if r.BeyondBudget {
		fmt.Fprintf(&b, "BEYOND FAULT BUDGET (violations not counted as bugs): %s\n", strings.Join(r.BeyondBudgetWhy, "; "))
	}
	for _, l := range r.Latency {
		fmt.Fprintf(&b, "latency acks=%d: n=%d median=%v p99=%v\n", l.Acks, l.Count, l.Median, l.P99)
	}
	for _, v := range r.Violations {
		b.WriteString(v.String())
		b.WriteString("\n")
	}
	return b.String()
}

// maxViolationsPerInvariant bounds a report: a systematic bug would
// otherwise list every op. The rest are counted in one summary violation.
const maxViolationsPerInvariant = 50

// Check judges a history against every invariant. It never panics on a
// malformed history: Report.Err says what is wrong with it.
func Check(h *History) Report {
	if h == nil {
		return Report{Err: malformed("nil history")}
	}
	rep := Report{BeyondBudget: h.Run.BeyondBudget, BeyondBudgetWhy: slices.Clone(h.Run.BeyondBudgetWhy)}
	if err := h.Validate(); err != nil {
		rep.Err = err
		return rep
	}
	ix := newIndex(h)
	c := newCollector()
	checks := []struct {
		inv string
		fn  func(*index, *collector)
	}{
		{InvS1, checkS1}, {InvS2, checkS2}, {InvS3, checkS3}, {InvS4, checkS4}, {InvS5, checkS5},
		{InvS6, checkS6}, {InvS7, checkS7}, {InvS8, checkS8}, {InvS10, checkS10}, {InvS12, checkS12}, {InvL1, checkL1}, {InvL2, checkL2},
		{InvL3, checkL3}, {InvL4, checkL4}, {InvA1, checkA1},
	}
	for _, ch := range checks {
		c.cur = ch.inv
		ch.fn(ix, c)
	}
	for _, inv := range CheckedInvariants {
		vs := c.byInv[inv]
		slices.SortStableFunc(vs, func(a, b Violation) int { return cmp.Compare(a.Time, b.Time) })
		if n := c.dropped[inv]; n > 0 {
			vs = append(vs, Violation{Invariant: inv, Time: h.Run.End,
				Detail: fmt.Sprintf("... and %d more %s violations not listed", n, inv)})
		}
		rep.Violations = append(rep.Violations, vs...)
		v := VerdictNA
		switch {
		case len(vs) > 0:
			v = VerdictViolated
		case c.applicable[inv]:
			v = VerdictOK
		}
		rep.Verdicts = append(rep.Verdicts, InvariantVerdict{Invariant: inv, Verdict: v})
	}
	rep.Latency = latencies(h)
	return rep
}

// collector gathers violations per invariant with a cap.
type collector struct {
	cur        string
	byInv      map[string][]Violation
	dropped    map[string]int
	applicable map[string]bool
}

func newCollector() *collector {
	return &collector{byInv: map[string][]Violation{}, dropped: map[string]int{}, applicable: map[string]bool{}}
}

// judged marks the current invariant as applicable to the history.
func (c *collector) judged() { c.applicable[c.cur] = true }

// fail records a violation of the current invariant.
func (c *collector) fail(t time.Duration, ops []OpID, format string, args ...any) {
	c.applicable[c.cur] = true
	if len(c.byInv[c.cur]) >= maxViolationsPerInvariant {
		c.dropped[c.cur]++
		return
	}
	c.byInv[c.cur] = append(c.byInv[c.cur], Violation{Invariant: c.cur, Detail: fmt.Sprintf(format, args...), Time: t, Ops: ops})
}

// read is one record returned by a fetch below the HWM the node reported.
type read struct {
	op      *Op
	off     int64
	payload uint64
}

type offKey struct {
	pk  PartKey
	off int64
}

func cmpOffKey(a, b offKey) int {
	if c := cmpPartKey(a.pk, b.pk); c != 0 {
		return c
	}
	return cmp.Compare(a.off, b.off)
}

// index is the history rearranged for the checkers. Every map is either
// looked up or iterated through a sorted key slice, so reports are
// deterministic.
type index struct {
	h       *History
	cluster bool
	ops     []*Op // by id-1
	// fetches are successful fetches sorted by (completion, id).
	fetches []*Op
	// reads maps an offset to the reads of it below the reported HWM, in
	// fetch order; readKeys lists its keys sorted.
	reads    map[offKey][]read
	readKeys []offKey
	// final views, nil slices when there is no final state.
	finalNodes []*FinalNode
	finalPart  map[NodeID]map[PartKey]*FinalPart
	// attempts maps a payload id to the produces that carried it, in id
	// order.
	attempts map[uint64][]*Op
	// obsByNode lists each node's observation indexes, in order.
	obsByNode map[NodeID][]int
	// termSteps are the instants the highest term observed on any up node
	// grew.
	termSteps []termStep
}

type termStep struct {
	t    time.Duration
	term uint64
}

func newIndex(h *History) *index {
	// Size the big maps up front: growing them rehashes every entry
	// several times over in a run of thousands of ops.
	npay, nread := 0, 0
	for i := range h.Ops {
		npay += len(h.Ops[i].Payloads)
		if f := h.Ops[i].Fetch; f != nil {
			nread += len(f.Records)
		}
	}
	ix := &index{
		h:         h,
		cluster:   h.Run.Mode == ModeCluster,
		ops:       make([]*Op, 0, len(h.Ops)),
		reads:     make(map[offKey][]read, nread),
		finalPart: map[NodeID]map[PartKey]*FinalPart{},
		attempts:  make(map[uint64][]*Op, npay),
		obsByNode: map[NodeID][]int{},
	}
	for i := range h.Obs {
		o := &h.Obs[i]
		ix.obsByNode[o.Node] = append(ix.obsByNode[o.Node], i)
		if o.Up && (len(ix.termSteps) == 0 || o.Term > ix.termSteps[len(ix.termSteps)-1].term) {
			ix.termSteps = append(ix.termSteps, termStep{o.Time, o.Term})
		}
	}
	for i := range h.Ops {
		o := &h.Ops[i]
		ix.ops = append(ix.ops, o)
		if o.Kind == KindFetch && o.Fetch != nil {
			ix.fetches = append(ix.fetches, o)
		}
		for _, p := range o.Payloads {
			ix.attempts[p] = append(ix.attempts[p], o)
		}
	}
	slices.SortFunc(ix.fetches, cmpTimeID)
	for _, o := range ix.fetches {
		for _, rec := range o.Fetch.Records {
			if rec.Offset >= o.Fetch.HWM {
				continue // judged by S4 alone
			}
			k := offKey{o.Key(), rec.Offset}
			if _, ok := ix.reads[k]; !ok {
				ix.readKeys = append(ix.readKeys, k)
			}
			r := read{op: o, off: rec.Offset, payload: rec.Payload}
			ix.reads[k] = append(ix.reads[k], r)
		}
	}
	slices.SortFunc(ix.readKeys, cmpOffKey)
	if h.Final != nil {
		for i := range h.Final.Nodes {
			n := &h.Final.Nodes[i]
			ix.finalNodes = append(ix.finalNodes, n)
			m := map[PartKey]*FinalPart{}
			for j := range n.Parts {
				m[n.Parts[j].Key()] = &n.Parts[j]
			}
			ix.finalPart[n.Node] = m
		}
		slices.SortFunc(ix.finalNodes, func(a, b *FinalNode) int { return cmp.Compare(a.Node, b.Node) })
	}
	return ix
}

// op returns the op with id (nil for 0 or unknown).
func (ix *index) op(id OpID) *Op {
	if id == 0 || id > OpID(len(ix.ops)) {
		return nil
	}
	return ix.ops[id-1]
}

// finalView is what the final state says about one offset.
type finalView struct {
	// hosts counts final nodes hosting the partition; reached counts those
	// whose HWM is past the offset.
	hosts, reached int
	// held lists (node, payload) for every node holding the offset below
	// its HWM, in node order.
	held []heldRec
}

type heldRec struct {
	node    NodeID
	payload uint64
}

// at returns the final state's view of one offset.
func (ix *index) at(pk PartKey, off int64) finalView {
	var v finalView
	for _, n := range ix.finalNodes {
		p := ix.finalPart[n.Node][pk]
		if p == nil {
			continue
		}
		v.hosts++
		if p.HWM <= off {
			continue
		}
		v.reached++
		if pl, ok := p.at(off); ok {
			v.held = append(v.held, heldRec{n.Node, pl})
		}
	}
	return v
}

// others returns the held records whose payload differs from want.
func (v finalView) others(want uint64) []heldRec {
	var out []heldRec
	for _, h := range v.held {
		if h.payload != want {
			out = append(out, h)
		}
	}
	return out
}

func describeHeld(hs []heldRec) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("n%d holds payload %d", h.node, h.payload)
	}
	return strings.Join(parts, ", ")
}

// latencies computes per-acks latency over answered produces.
func latencies(h *History) []LatencyStat {
	var out []LatencyStat
	for _, acks := range []int8{0, 1, -1} {
		var ls []time.Duration
		for i := range h.Ops {
			o := &h.Ops[i]
			if o.Kind != KindProduce || o.Acks != acks {
				continue
			}
			if (acks == 0 && o.Outcome == OutcomeNone) || (acks != 0 && o.Outcome == OutcomeOK) {
				ls = append(ls, o.Complete-o.Invoke)
			}
		}
		if len(ls) == 0 {
			continue
		}
		slices.Sort(ls)
		p99 := ls[min(len(ls)-1, (len(ls)*99)/100)]
		out = append(out, LatencyStat{Acks: acks, Count: len(ls), Median: ls[(len(ls)-1)/2], P99: p99})
	}
	return out
}
