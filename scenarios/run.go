package scenarios

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"

	"walraft/sim"
)

// RunConfig chooses what a run does besides its options.
type RunConfig struct {
	// Variant is "" for the correct system or a name from Variants().
	Variant string
	// Schedule is used when UseSchedule is true (replay, minimize, rapid);
	// otherwise the schedule is generated from the seed.
	Schedule    Schedule
	UseSchedule bool
	// RecordTrace keeps every trace event in Result.Trace.
	RecordTrace bool
	// TraceTail keeps the last N events in Result.Trace when RecordTrace is
	// off (the timeline around a violation).
	TraceTail int
	// NetTap, when set, sees every message the network sends, duplicates,
	// delivers or drops, with its bytes (reports draw message arrows from
	// it). It observes only: the trace hash is the same with or without.
	NetTap func(sim.MsgEvent)
	// OnTrace, when set, sees every trace event as it is added (a replay
	// keeps exactly the window around the violation this way, whatever the
	// run's length). It observes only.
	OnTrace func(sim.TraceEvent)
	// RecordDiskEvents records every node's disk events of the safety
	// phase in Result.DiskEvents: the dry run of a crash-point sweep.
	RecordDiskEvents bool
}

// AcksCounts counts the produce requests of one acks level.
type AcksCounts struct {
	Sent          int `json:"sent"`
	OK            int `json:"ok"`
	Failed        int `json:"failed"`
	Indeterminate int `json:"indeterminate"`
	// Lost counts acknowledged writes missing from the final committed
	// log (the checkers decide whether each loss is allowed).
	Lost int `json:"lost"`
}

// Result is everything a run produced.
type Result struct {
	Options      Options
	Schedule     Schedule
	Variant      string
	Violations   []Violation
	BeyondBudget string
	Report       Report
	TraceHash    uint64
	Trace        []sim.TraceEvent
	Acks         map[string]AcksCounts
	Probes       map[string]int
	SimTime      time.Duration
	WallTime     time.Duration
	Events       uint64
	Messages     int64 // records produced (acks=0/1/-1 requests' records sent)
	History      *History
	// DiskEvents are the kinds of each node's disk events in the safety
	// phase, in order (index node id-1; event k is DiskEvents[id-1][k-1]),
	// when RunConfig.RecordDiskEvents is set.
	DiskEvents [][]sim.DiskEvent
	// Avail is the run's availability under its faults (A1).
	Avail AvailSummary
	// Unfired are the faults of the schedule that never took effect: a
	// trigger that never fired in the safety phase, or a fault due after
	// it (faults apply in the safety phase only). A schedule whose faults
	// never fire holds for nothing; the CLI says so.
	Unfired []Fault
}

// OK reports whether every invariant held (a run beyond the fault budget
// is OK whatever it found: its violations are not bugs).
func (r *Result) OK() bool { return len(r.Violations) == 0 || r.BeyondBudget != "" }

// Invariants returns the names of the violated invariants, sorted and
// unique.
func (r *Result) Invariants() []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range r.Violations {
		if !seen[v.Invariant] {
			seen[v.Invariant] = true
			out = append(out, v.Invariant)
		}
	}
	sort.Strings(out)
	return out
}

// Run runs one simulation of o. Only one simulation may run per process at
// a time (etcd raft's election randomness is a process global: see
// sim.InstallCryptoRand).
func Run(o Options, rc RunConfig) (res *Result, err error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("options: %w", err)
	}
	v, err := LookupVariant(rc.Variant)
	if err != nil {
		return nil, err
	}
	o.Variant = v.Name
	sched := rc.Schedule
	if !rc.UseSchedule {
		sched = GenerateSchedule(o, sim.NewStreams(o.Seed).Stream("faults"))
	}
	if err := sched.Validate(o.Nodes); err != nil {
		return nil, err
	}
	h, err := newHarness(o, rc, v, sched)
	if err != nil {
		return nil, err
	}
	defer h.close()
	start := time.Now()
	func() {
		// A panic in the system under test is a broken invariant: report
		// it as a violation of its own, with the replayable case, rather
		// than killing a campaign.
		defer func() {
			if r := recover(); r != nil {
				if storm, ok := r.(*sim.EventStorm); ok {
					h.harnessViolation(InvLivelock, storm.Error())
					return
				}
				h.harnessViolation("PANIC", fmt.Sprintf("%v\n%s", r, stableStack()))
			}
		}()
		h.run()
	}()
	res = h.result()
	res.WallTime = time.Since(start)
	return res, nil
}

// result checks the history and assembles the run's result.
func (h *harness) result() *Result {
	if !h.finished {
		// The run stopped early (a panic in the system under test): record
		// what can be recorded; the checkers judge the partial history.
		func() {
			defer func() { _ = recover() }()
			h.rec.finish()
		}()
	}
	hist := h.rec.r.History()
	rep := Check(hist)
	h.oracle.finish()
	h.oracle.patchReport(&rep)
	res := &Result{
		Options:   h.o,
		Schedule:  h.sched,
		Variant:   h.variant.Name,
		Report:    rep,
		TraceHash: h.w.Trace().Hash(),
		Probes:    h.probes,
		SimTime:   h.s.Now(),
		Events:    h.s.Steps(),
		History:   hist,
		Acks:      map[string]AcksCounts{},

		DiskEvents: h.diskEvents,
		Avail:      SummarizeAvail(hist),
		Unfired:    h.unfired,
	}
	if rep.BeyondBudget {
		res.BeyondBudget = strings.Join(rep.BeyondBudgetWhy, "; ")
	}
	if rep.Err != nil && len(h.extra) == 0 {
		res.Violations = append(res.Violations, Violation{Invariant: "HISTORY", Detail: rep.Err.Error(), Time: h.s.Now()})
	}
	// A check the harness makes when it happens (a node back with a
	// shorter log, a final read past the HWM, a node that cannot recover)
	// names the cause of what the history checkers then find; a panic of
	// the system under test comes last, after any check that named its
	// cause first.
	var panics []Violation
	for _, v := range h.extra {
		if v.Invariant == "PANIC" {
			panics = append(panics, v)
		} else {
			res.Violations = append(res.Violations, v)
		}
	}
	res.Violations = append(res.Violations, rep.Violations...)
	res.Violations = append(res.Violations, panics...)
	switch {
	case h.rc.RecordTrace:
		res.Trace = h.w.Trace().Events()
	case h.rc.TraceTail > 0:
		res.Trace = h.w.Trace().Last()
	}
	lost := lostOps(hist)
	for i := range hist.Ops {
		o := &hist.Ops[i]
		if o.Kind != KindProduce || o.ID == h.rec.probeOp {
			continue
		}
		key := acksKey(o.Acks)
		c := res.Acks[key]
		c.Sent++
		res.Messages += int64(len(o.Payloads))
		switch o.Outcome {
		case OutcomeOK, OutcomeNone:
			c.OK++
		case OutcomeFail:
			c.Failed++
		case OutcomeIndeterminate, OutcomePending:
			c.Indeterminate++
		}
		if lost[o.ID] {
			c.Lost++
		}
		res.Acks[key] = c
	}
	return res
}

func acksKey(a int8) string {
	switch a {
	case 0:
		return "0"
	case 1:
		return "1"
	}
	return "all"
}

// lostOps returns the successful produces (acks 1 and -1) whose records are
// missing from the final log of the node with the highest HWM. Whether a
// loss is allowed is the checkers' business; this is the count a report
// shows.
func lostOps(hist *History) map[OpID]bool {
	lost := map[OpID]bool{}
	if hist.Final == nil {
		return lost
	}
	best := map[PartKey]*FinalPart{}
	for i := range hist.Final.Nodes {
		n := &hist.Final.Nodes[i]
		for j := range n.Parts {
			p := &n.Parts[j]
			if b := best[p.Key()]; b == nil || p.HWM > b.HWM {
				best[p.Key()] = p
			}
		}
	}
	for i := range hist.Ops {
		o := &hist.Ops[i]
		if o.Kind != KindProduce || o.Outcome != OutcomeOK || o.Acks == 0 {
			continue
		}
		p := best[o.Key()]
		if p == nil {
			lost[o.ID] = true
			continue
		}
		for k, pid := range o.Payloads {
			if got, ok := p.at(o.Offset + int64(k)); !ok || got != pid {
				lost[o.ID] = true
				break
			}
		}
	}
	return lost
}

// stableStack renders the current goroutine's stack as function and
// file:line only: runtime/debug.Stack prints argument values and pointers,
// which differ between runs and would make a replayed violation look
// different.
func stableStack() string {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var b strings.Builder
	for {
		f, more := frames.Next()
		fmt.Fprintf(&b, "%s\n\t%s:%d\n", f.Function, f.File, f.Line)
		if !more {
			break
		}
	}
	return b.String()
}
