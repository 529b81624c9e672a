package report

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"walraft/scenarios"
)

// Select narrows what a report or a replay centres on. The zero value
// picks the earliest evidence of the first violation.
type Select struct {
	// At centres on this simulated time (0: not set).
	At time.Duration
	// Op centres on this client op (0: not set).
	Op scenarios.OpID
	// Node keeps evidence on this node only (0: any node).
	Node uint64
	// Invariant picks the violations of this invariant ("": the first
	// violated invariant, in the order the run reported them).
	Invariant string
	// Minimized says the schedule is minimize's output, so every fault
	// in it is needed by the violation (Minimized(c) tells from the case).
	Minimized bool
}

// MinimizedNotePrefix starts the note of a case that walraft minimize
// wrote; a case file records no other sign of it.
const MinimizedNotePrefix = "minimized from "

// Minimized reports whether c is minimize's output.
func Minimized(c *scenarios.Case) bool { return strings.HasPrefix(c.Note, MinimizedNotePrefix) }

// Focus is the stretch of a run that shows a violation: the evidence it
// names and the time range between the earliest and latest of it.
type Focus struct {
	// From and To bound the highlighted range (From <= Center <= To).
	From, To time.Duration
	// Center is the earliest evidence: where a timeline opens.
	Center time.Duration
	// Label says what is at Center, on one line.
	Label string
	// Invariant is the violation in focus ("" when the run holds every
	// invariant and no -at/-op was given).
	Invariant string
	// ViolationAt is when the checker detected the violation.
	ViolationAt time.Duration
	// Ops are the client ops the focused violations name (at most
	// maxFocusOps, earliest first).
	Ops []scenarios.OpID
	// Faults are indexes into the schedule of the faults in focus. When a
	// violation is in focus, only faults that fired before it was
	// detected can be evidence: of those, every one of a minimized
	// schedule (it keeps only the faults the violation needs) or of a
	// schedule of at most keepAllFaults faults, else the last one before
	// Center and the first after it. A triggered fault counts from its
	// At (when it is armed; it fires then or later). With no violation,
	// the faults nearest Center.
	Faults []int
	// KeptByMinimize: the schedule is minimized (Select.Minimized), so
	// Faults were kept because the violation needs them.
	KeptByMinimize bool
	// Evidence lists, one line each, what the focus is made of.
	Evidence []string
}

// maxFocusOps bounds the ops a focus names (a lost-write violation can name
// hundreds; the earliest few are the evidence).
const maxFocusOps = 8

// keepAllFaults: schedules this short are all evidence.
const keepAllFaults = 3

// ErrNoSuchFocus is returned when a Select names an invariant, an op or a
// node the run does not have.
var ErrNoSuchFocus = errors.New("nothing to focus on")

// FindFocus picks the focus of a run: res is the run, sched its fault
// schedule, and recorded the case's violations (used when this run did not
// violate anything, e.g. after a fix). It fails only when sel names
// something that is not there.
func FindFocus(res *scenarios.Result, recorded []scenarios.CaseViolation, sel Select) (Focus, error) {
	var f Focus
	if sel.At > res.SimTime {
		return f, fmt.Errorf("%w: -at %v is past the run's end at %v", ErrNoSuchFocus, sel.At, res.SimTime)
	}
	vs := res.Violations
	if len(vs) == 0 {
		for _, v := range recorded {
			vs = append(vs, scenarios.Violation{Invariant: v.Invariant, Detail: v.Detail, Time: v.Time})
		}
	}
	inv := sel.Invariant
	if inv == "" && len(vs) > 0 {
		inv = vs[0].Invariant
	}
	var picked []scenarios.Violation
	for _, v := range vs {
		if v.Invariant == inv {
			picked = append(picked, v)
		}
	}
	if sel.Invariant != "" && len(picked) == 0 {
		var names []string
		for _, v := range vs {
			if !slices.Contains(names, v.Invariant) {
				names = append(names, v.Invariant)
			}
		}
		return f, fmt.Errorf("%w: no %s violation in this run (violated: %s)", ErrNoSuchFocus, sel.Invariant, orNone(names))
	}
	f.Invariant = inv
	hist := res.History
	opByID := map[scenarios.OpID]*scenarios.Op{}
	if hist != nil {
		for i := range hist.Ops {
			opByID[hist.Ops[i].ID] = &hist.Ops[i]
		}
	}
	// The ops the violations name, with their earliest evidence time: the
	// ack of a write (its completion), else its invocation.
	type ev struct {
		at time.Duration
		id scenarios.OpID
	}
	var evs []ev
	seen := map[scenarios.OpID]bool{}
	for _, v := range picked {
		if f.ViolationAt == 0 || v.Time < f.ViolationAt {
			f.ViolationAt = v.Time
		}
		for _, id := range v.Ops {
			o := opByID[id]
			if o == nil || seen[id] || (sel.Node != 0 && uint64(o.Node) != sel.Node) {
				continue
			}
			seen[id] = true
			evs = append(evs, ev{opTime(o), id})
		}
	}
	// A violation that names no op (prefix agreement, say) still has
	// evidence: the first record where two nodes' final logs disagree, and
	// the writes of the two records there.
	var div *divergence
	if len(evs) == 0 && len(picked) > 0 && sel.Op == 0 {
		if d, ok := firstDivergence(hist); ok {
			div = &d
			for _, id := range d.writeOps {
				if o := opByID[id]; o != nil && !seen[id] && (sel.Node == 0 || uint64(o.Node) == sel.Node) {
					seen[id] = true
					evs = append(evs, ev{opTime(o), id})
				}
			}
		}
	}
	if sel.Op != 0 {
		o := opByID[sel.Op]
		if o == nil {
			return f, fmt.Errorf("%w: op %d is not in this run (ops 1..%d)", ErrNoSuchFocus, sel.Op, len(opByID))
		}
		evs = []ev{{opTime(o), sel.Op}}
	}
	slices.SortFunc(evs, func(a, b ev) int {
		if a.at != b.at {
			return cmpDur(a.at, b.at)
		}
		return int(a.id) - int(b.id)
	})
	if len(evs) > maxFocusOps {
		evs = evs[:maxFocusOps]
	}
	if div != nil {
		f.Evidence = append(f.Evidence, div.String())
	}
	for _, e := range evs {
		f.Ops = append(f.Ops, e.id)
		o := opByID[e.id]
		f.Evidence = append(f.Evidence, fmt.Sprintf("op %d: %s", o.ID, describeOp(o)))
	}
	switch {
	case sel.At > 0:
		f.Center = sel.At
		f.Label = fmt.Sprintf("-at %v", sel.At)
	case len(evs) > 0:
		f.Center = evs[0].at
		o := opByID[evs[0].id]
		f.Label = fmt.Sprintf("%s evidence: op %d %s", inv, o.ID, describeOp(o))
	case len(picked) > 0:
		f.Center = f.ViolationAt
		f.Label = fmt.Sprintf("%s violated: %s", inv, firstLine(picked[0].Detail))
	default:
		f.Center = res.SimTime / 2
		f.Label = "no violation: the middle of the run"
	}
	f.From, f.To = f.Center, f.Center
	for _, e := range evs {
		f.From, f.To = min(f.From, e.at), max(f.To, e.at)
		if o := opByID[e.id]; o.Invoke < f.From {
			f.From = o.Invoke
		}
	}
	// The faults in focus: a fault after the violation was detected
	// cannot have caused it.
	sched := res.Schedule
	fired := func(x scenarios.Fault) bool { return len(picked) == 0 || x.At <= f.ViolationAt }
	f.KeptByMinimize = sel.Minimized && len(picked) > 0
	switch {
	case len(sched) == 0:
	case sel.Minimized || len(sched) <= keepAllFaults:
		for i, x := range sched {
			if fired(x) {
				f.Faults = append(f.Faults, i)
			}
		}
	default:
		before, after := -1, -1
		for i, x := range sched {
			if (sel.Node != 0 && x.Node != 0 && x.Node != sel.Node) || !fired(x) {
				continue
			}
			if x.At <= f.Center {
				before = i
			} else if after < 0 {
				after = i
			}
		}
		for _, i := range []int{before, after} {
			if i >= 0 {
				f.Faults = append(f.Faults, i)
			}
		}
	}
	for _, i := range f.Faults {
		x := sched[i]
		f.From, f.To = min(f.From, x.At), max(f.To, x.At+x.Dur)
		f.Evidence = append(f.Evidence, "fault "+strings.TrimSpace(x.String()))
	}
	if len(picked) > 0 && len(evs) == 0 && len(f.Faults) == 0 {
		f.From, f.To = min(f.From, f.ViolationAt), max(f.To, f.ViolationAt)
	}
	if len(picked) > 0 {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s detected at %.6fs: %s", inv, f.ViolationAt.Seconds(), firstLine(picked[0].Detail)))
	}
	return f, nil
}

// opTime is an op's evidence time: the node's answer when the history
// has it (reply-time evidence is read then, so an ack before an fsync
// shows before the fsync), else the client's receipt of the answer, else
// its invocation.
func opTime(o *scenarios.Op) time.Duration {
	if e := o.Evidence; e != nil && e.At > 0 {
		return e.At
	}
	if o.Complete > 0 {
		return o.Complete
	}
	return o.Invoke
}

// describeOp renders an op on one line: kind, acks, node, outcome, offsets.
func describeOp(o *scenarios.Op) string {
	var b strings.Builder
	if o.Kind == scenarios.KindProduce {
		fmt.Fprintf(&b, "produce acks=%d", o.Acks)
	} else {
		fmt.Fprintf(&b, "fetch from %d", o.From)
	}
	fmt.Fprintf(&b, " to n%d %s/%d, %s", o.Node, o.Topic, o.Partition, o.Outcome)
	if o.Outcome == scenarios.OutcomeOK && o.Kind == scenarios.KindProduce {
		fmt.Fprintf(&b, " offsets [%d, %d]", o.Offset, o.Offset+int64(len(o.Payloads))-1)
	}
	fmt.Fprintf(&b, ", invoked %.6fs", o.Invoke.Seconds())
	if e := o.Evidence; e != nil && e.At > 0 {
		fmt.Fprintf(&b, ", answered by n%d %.6fs (client got it %.6fs)", o.Node, e.At.Seconds(), o.Complete.Seconds())
	} else if o.Complete > 0 {
		fmt.Fprintf(&b, ", answered %.6fs", o.Complete.Seconds())
	}
	return b.String()
}

func cmpDur(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ",")
}
