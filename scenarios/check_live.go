package scenarios

import (
	"slices"
	"time"
)

// checkL1: the liveness phase converged within its bound: one leader, every
// HWM at the committed end, no waiter pending, and the probe acks=-1 write
// succeeded. The harness's claims are cross-checked where the history can:
// the probe op must be an acks=-1 produce that succeeded by the deadline,
// and, when HWMs are claimed converged, the final state's HWMs must agree
// across nodes.
func checkL1(ix *index, c *collector) {
	l := ix.h.Live
	if l == nil {
		return
	}
	c.judged()
	deadline := l.HealedAt + l.Bound
	var pr problems
	if !l.OneLeader {
		pr.add(deadline, "no single leader")
	}
	if !l.HWMsAtCommitEnd {
		pr.add(deadline, "HWMs not all at the committed end")
	}
	if !l.WaitersResolved {
		pr.add(deadline, "acks=-1 waiters still pending")
	}
	if l.Stranded != "" {
		pr.add(deadline, "with no request in flight, %s", l.Stranded)
	}
	if !l.ProbeOK {
		pr.add(deadline, "the probe acks=-1 write did not succeed")
	}
	if l.Rotation != "" {
		pr.add(deadline, "%s", l.Rotation)
	}
	if l.ConvergedAt > deadline {
		pr.add(deadline, "converged at %v, after the deadline", l.ConvergedAt)
	}
	var ops []OpID
	if p := ix.op(l.ProbeOp); p != nil {
		ops = append(ops, p.ID)
		if p.Acks != -1 {
			pr.add(deadline, "probe op %d has acks=%d, not -1", p.ID, p.Acks)
		}
		if l.ProbeOK && (p.Outcome != OutcomeOK || p.Complete > deadline) {
			pr.add(deadline, "reported probe success, but probe op %d is %q at %v", p.ID, p.Outcome, p.Complete)
		}
	}
	if f := ix.h.Final; f != nil && l.HWMsAtCommitEnd {
		parts := slices.Clone(ix.h.Run.Partitions)
		slices.SortFunc(parts, cmpPartKey)
		for _, pk := range parts {
			var first *FinalPart
			var firstNode NodeID
			for _, n := range ix.finalNodes {
				p := ix.finalPart[n.Node][pk]
				if p == nil {
					continue
				}
				if first == nil {
					first, firstNode = p, n.Node
				} else if p.HWM != first.HWM {
					pr.add(deadline, "reported converged HWMs, but final %v HWM is %d on n%d and %d on n%d", pk, first.HWM, firstNode, p.HWM, n.Node)
				}
			}
		}
	}
	if pr.n > 0 {
		detail := ""
		if l.Detail != "" {
			detail = " (harness: " + l.Detail + ")"
		}
		c.fail(deadline, ops, "not converged within %v of healing at %v: %s%s", l.Bound, l.HealedAt, pr.String(), detail)
	}
}

// earlyTimeoutSlack is how much sooner than AcksTimeout, on its own clock,
// a node may answer with its timeout: its timer runs on that clock (an
// uninterrupted one, or L2 does not judge), so only rounding is allowed.
const earlyTimeoutSlack = time.Millisecond

// checkL2: every acks=1 and acks=-1 produce is answered within AcksTimeout
// plus the slack (RunInfo.TimeoutSlack, default DefaultTimeoutSlack),
// unless the run ended before that much time had passed. DESIGN.md 3.3
// says every waiter ends, at the latest by its timeout, and node.Config's
// AcksTimeout covers acks=1 too: an acks=1 request held by a WAL fsync on
// a hung disk must end indeterminate at the timeout, not when the disk
// returns (Kafka's request timeout bounds every produce that expects an
// answer). acks=0 expects none. A produce sent to a node that crashed must
// be completed by the harness (indeterminate) when the client sees the
// connection drop; otherwise it counts as unanswered. Both the client's
// view (Invoke to Complete, global time) and the node's (Op.Served, its
// own clock; a request the node held while paused or crashing is not
// judged) are judged: clients give up after a second or six, before most
// node timeouts, so without the node's side a waiter that never times out
// would go unseen. The node's side is also judged the other way: a node
// that answers with its acks timeout (Served.TimedOut) before AcksTimeout
// passed on its clock gave up early.
func checkL2(ix *index, c *collector) {
	run := &ix.h.Run
	limit := run.AcksTimeout + run.slack()
	// On the node's own clock the timer has no clock-rate skew to absorb
	// and no reply to deliver: 5% of the timeout and 100 ms are room for
	// the event loop only.
	nodeLimit := run.AcksTimeout + run.AcksTimeout/20 + 100*time.Millisecond
	for _, o := range ix.ops {
		if o.Kind != KindProduce || o.Acks == 0 {
			continue
		}
		c.judged()
		switch {
		case o.Outcome == OutcomePending && run.End-o.Invoke > limit:
			c.fail(o.Invoke+limit, []OpID{o.ID}, "acks=%d op %d sent to n%d at %v still unanswered when the run ended at %v (timeout %v + slack %v)",
				o.Acks, o.ID, o.Node, o.Invoke, run.End, run.AcksTimeout, run.slack())
		case o.Outcome != OutcomePending && o.Complete-o.Invoke > limit:
			c.fail(o.Complete, []OpID{o.ID}, "acks=%d op %d sent to n%d at %v answered %q only at %v, after %v (timeout %v + slack %v)",
				o.Acks, o.ID, o.Node, o.Invoke, o.Outcome, o.Complete, o.Complete-o.Invoke, run.AcksTimeout, run.slack())
		}
		// The node's side, on its own clock: a client that gave up
		// earlier does not excuse a node whose timeout never fired.
		sv := o.Served
		if sv == nil || sv.Interrupted {
			continue
		}
		switch {
		case sv.Answered > 0 && sv.Answered-sv.At > nodeLimit:
			c.fail(o.Invoke+nodeLimit, []OpID{o.ID}, "acks=%d op %d: n%d answered it %v after taking it, by its own clock (timeout %v + slack %v)",
				o.Acks, o.ID, o.Node, sv.Answered-sv.At, run.AcksTimeout, nodeLimit-run.AcksTimeout)
		case sv.Answered == 0 && sv.Until-sv.At > nodeLimit:
			c.fail(o.Invoke+nodeLimit, []OpID{o.ID}, "acks=%d op %d: n%d took it and still held it unanswered %v later, when the run ended (timeout %v + slack %v)",
				o.Acks, o.ID, o.Node, sv.Until-sv.At, run.AcksTimeout, nodeLimit-run.AcksTimeout)
		case sv.TimedOut && sv.Definite:
			// A node that gives up waiting does not know what became of
			// the write: its fsync may still complete and the records be
			// proposed, committed and read (DESIGN.md 3.3).
			c.fail(o.Invoke+(sv.Answered-sv.At), []OpID{o.ID}, "acks=%d op %d: n%d answered its acks timeout as a definite failure (a timeout is indeterminate)",
				o.Acks, o.ID, o.Node)
		case sv.TimedOut && sv.Answered-sv.At < run.AcksTimeout-earlyTimeoutSlack:
			// Kafka's produce timeout is how long the broker waits for
			// the acknowledgements it was asked for; a node that gives
			// up sooner turns writes that would have succeeded into
			// indeterminate ones (and their retries into duplicates).
			c.fail(o.Invoke+(sv.Answered-sv.At), []OpID{o.ID}, "acks=%d op %d: n%d answered it with its acks timeout %v after taking it, by its own clock, before the timeout of %v",
				o.Acks, o.ID, o.Node, sv.Answered-sv.At, run.AcksTimeout)
		}
	}
}
