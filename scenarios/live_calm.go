package scenarios

import (
	"fmt"
	"time"

	"walraft/core/node"
)

// The liveness phase's calm workload. Once everything healed and the
// cluster converged (one leader, HWMs at the committed end, no request in
// flight, nothing stranded on the leader), the harness runs the workload
// again for calmLoadFor, on a cluster with no fault at all, stops it, and
// waits for every one of its requests to end by itself. Only then does it
// send L1's probe. A system that moves only when poked (a lost wakeup in a
// batcher, say) strands the last requests of that workload: they end by a
// timer (L3), and the leader keeps records it accepted and never committed
// (L1: Stranded), with nothing left that could wake it.

// calmState is where the liveness phase's calm workload is.
type calmState int

const (
	// calmWaiting: converging after healing; the calm workload has not
	// started.
	calmWaiting calmState = iota
	// calmLoad: the calm workload runs.
	calmLoad
	// calmDrain: the workload stopped; its requests are ending.
	calmDrain
	// calmDone: every request ended by itself and the cluster settled
	// again: the probe may go.
	calmDone
)

// calmLoadFor is how long the calm workload runs (simulated time): enough
// for every producer to complete many requests at any drawn think time.
const calmLoadFor = 500 * time.Millisecond

// calmReady advances the calm workload on a settled cluster and reports
// whether the probe may be sent.
func (h *harness) calmReady() bool {
	switch h.calm {
	case calmWaiting:
		// A sync issued before healing (stalled, or drawn to fail) may
		// still complete with an injected error: the stretch is fault-free
		// only once every one of them is done.
		// Nor may a node carry a log failure from then into it (a
		// supervisor restarts it first).
		for _, id := range h.liveIDs() {
			if h.w.Disk(id).PendingSyncs() > 0 || h.restarts[id] {
				return false
			}
			if n := h.node(id); n == nil || n.Healthy() != nil {
				return false
			}
		}
		h.startCalm()
		return false
	case calmLoad:
		return false
	case calmDrain:
		h.calm = calmDone
	}
	return true
}

// startCalm replaces every producer by a fresh one with the same client id
// and runs them for calmLoadFor.
func (h *harness) startCalm() {
	h.calm = calmLoad
	h.rec.calmFrom = h.s.Now()
	h.probe("liveness-calm-load")
	h.stopped = false
	for i, old := range h.producers {
		old.retired = true
		p := &producer{h: h, id: old.id}
		h.producers[i] = p
		h.s.After(h.rng.Duration(0, h.o.ThinkMax), p.next)
	}
	h.s.After(calmLoadFor, func() {
		h.stopped = true
		h.calm = calmDrain
	})
}

// drained reports whether leader n holds nothing it accepted and did not
// commit or make durable, and says what it holds otherwise. With no
// request in flight and the cluster settled, anything it holds is stranded:
// nothing will make it move but a new request.
func drained(leader uint64, n *node.Node) (bool, string) {
	for _, p := range n.Partitions() {
		if p.LogEnd != p.Committed || p.DurableEnd != p.LogEnd {
			return false, fmt.Sprintf("leader n%d %s/%d holds records it accepted and never committed: log end %d, durable end %d, committed end %d",
				leader, p.Topic, p.Partition, p.LogEnd, p.DurableEnd, p.Committed)
		}
	}
	return true, ""
}

// idle reports whether every node of ids holds nothing in flight once
// every client request was answered and the leader's log is committed:
// no produce request left in a partition queue and no proposer batch
// (node.Status Queued and Pending). A request answered but never removed
// from the queue leaks capacity until the node refuses every write
// (MaxQueuedUnits), and no client sees it before that.
func idle(ids []uint64, node func(uint64) *node.Node) (bool, string) {
	for _, id := range ids {
		if st := node(id).Status(); st.Queued != 0 || st.Pending != 0 {
			return false, fmt.Sprintf("n%d holds %d queued produce requests and %d proposer batches after every request was answered",
				id, st.Queued, st.Pending)
		}
	}
	return true, ""
}

// inFaultFree reports whether the run is in a fault-free stretch now: a
// fault-free run, or the liveness phase's calm workload and its drain.
func (h *harness) inFaultFree() bool {
	return h.rec.r.History().Run.FaultFree || h.calm == calmLoad || h.calm == calmDrain
}

// failedInCalm reports a node that stopped itself (fail-stop after a
// storage error) in a fault-free stretch: no storage error is injected
// there, so whatever stopped it is a bug, and its error names it (L3; the
// requests it held then end indeterminate).
func (h *harness) failedInCalm(id uint64, err error) {
	if h.inFaultFree() {
		h.harnessViolation(InvL3, fmt.Sprintf("n%d stopped itself at %v in a fault-free stretch: %v", id, h.s.Now(), err))
	}
}
