package scenarios

// Aimed faults: a fault may name a role instead of a node id, resolved from
// the simulator's and the nodes' state at the moment the fault fires. The
// schedule keeps the target as written (Fault.Target, JSON "target"); the
// trace records whom it hit (a "fault.target" event per node hit).

import (
	"fmt"
	"slices"

	"walraft/core/env"
	"walraft/core/node"
	"walraft/sim"
)

// Target names whom a fault hits, resolved when it fires.
type Target string

// The targets a fault may name. A target that resolves to nobody (no
// leader, no follower up, nobody voted yet) makes the fault a no-op, traced
// as a "fault.target" event with A=0.
const (
	// TargetLeader is the node that leads now: up, Raft role leader, the
	// highest term among leaders (a deposed leader that has not heard yet
	// may still think it leads); a standalone node is its own leader.
	TargetLeader Target = "leader"
	// TargetFollower is a seeded choice among the running nodes that are
	// not the leader.
	TargetFollower Target = "follower"
	// TargetMostCaughtUp is the follower whose data log is longest (the sum
	// of its partitions' log ends; ties: more Raft entries applied, then
	// the lower id).
	TargetMostCaughtUp Target = "most-caught-up-follower"
	// TargetLeastCaughtUp is the follower whose data log is shortest (ties:
	// fewer entries applied, then the lower id).
	TargetLeastCaughtUp Target = "least-caught-up-follower"
	// TargetLastVoter is the node that most recently granted a (real, not
	// pre-) vote, if it is running.
	TargetLastVoter Target = "last-voter"
	// TargetPreviousLeader is the node that most recently became leader
	// before the current leader did, other than the current leader (the
	// deposed leader of a failover, for a schedule that crashes it, cuts
	// it off or hands leadership back to it), if it is running.
	TargetPreviousLeader Target = "previous-leader"
	// TargetLastHit is the node the most recent aimed one-node fault hit
	// (in firing order), if it is running: a schedule's second fault at
	// "the same follower" as its first, which a role target may resolve
	// differently a moment later.
	TargetLastHit Target = "last-hit"
	// TargetEventNode is the node whose event fired the fault's trigger
	// (only with a trigger).
	TargetEventNode Target = "event-node"
	// TargetMinority is a set of (n-1)/2 running nodes that holds the
	// leader if there is one, the rest drawn by seed: the side a leader is
	// deposed on. For partition and isolate it is cut off from the rest;
	// for crash, torn-crash and pause every member is hit.
	TargetMinority Target = "minority"
	// TargetMajority is the complement of TargetMinority among all nodes
	// (the side that keeps a quorum).
	TargetMajority Target = "majority"
)

// targets lists every target, for validation and generators.
var targets = []Target{TargetLeader, TargetFollower, TargetMostCaughtUp, TargetLeastCaughtUp, TargetLastVoter,
	TargetPreviousLeader, TargetLastHit, TargetEventNode, TargetMinority, TargetMajority}

// leaderTerm is a node that became leader, and the term it leads.
type leaderTerm struct{ node, term uint64 }

// isSet reports whether t names a set of nodes rather than one node.
func (t Target) isSet() bool { return t == TargetMinority || t == TargetMajority }

// oneNodeKinds are the kinds aimed at one node (Fault.Node).
var oneNodeKinds = []FaultKind{FaultCrash, FaultTornCrash, FaultKill, FaultPause, FaultIsolate, FaultStall, FaultStallLog, FaultSyncEIO,
	FaultWriteEIO, FaultSkew, FaultCorrupt, FaultOneWay, FaultTransferLeader,
	FaultNoSpace, FaultReadEIO, FaultHang, FaultClockStep, FaultLink}

// setKinds are the kinds a set target (minority, majority) may aim.
var setKinds = []FaultKind{FaultCrash, FaultTornCrash, FaultKill, FaultPause, FaultIsolate, FaultPartition}

// validateTarget checks f's target against its kind: a known target, on a
// kind that hits nodes, with no fixed node beside it.
func (f Fault) validateTarget() error {
	if f.Target == "" {
		return nil
	}
	if !slices.Contains(targets, f.Target) {
		return fmt.Errorf("fault %s: unknown target %q", f, f.Target)
	}
	if f.Target == TargetEventNode && f.Trigger == nil {
		return fmt.Errorf("fault %s: target %q needs a trigger", f, f.Target)
	}
	if f.Target.isSet() {
		if !slices.Contains(setKinds, f.Kind) {
			return fmt.Errorf("fault %s: target %q aims only %v", f, f.Target, setKinds)
		}
		if f.Node != 0 || len(f.Groups) > 0 {
			return fmt.Errorf("fault %s: a target replaces node and groups", f)
		}
		return nil
	}
	if !slices.Contains(oneNodeKinds, f.Kind) {
		return fmt.Errorf("fault %s: kind %s is not aimed at a node", f, f.Kind)
	}
	if f.Node != 0 {
		return fmt.Errorf("fault %s: a target replaces node %d", f, f.Node)
	}
	return nil
}

// aim resolves f's target now (eventNode: the node whose event fired f's
// trigger, 0 for a timed fault) and returns the concrete faults to apply:
// f itself when it names no target, one fault per node hit for a set target
// on a per-node kind, a partition for a set target on partition or
// isolate, and none when the target names nobody. Each node hit is traced
// as a "fault.target" event (A = the node, Text = kind and target).
func (h *harness) aim(f Fault, eventNode uint64) []Fault {
	if f.Target == "" {
		return []Fault{f}
	}
	ids := h.resolve(f.Target, eventNode)
	for _, id := range ids {
		h.w.Emit(env.NodeID(id), env.Event{Kind: "fault.target", A: int64(id), Text: string(f.Kind) + " " + string(f.Target)})
	}
	if len(ids) == 0 {
		h.w.Emit(0, env.Event{Kind: "fault.target", A: 0, Text: string(f.Kind) + " " + string(f.Target)})
		h.probe("target-unresolved")
		return nil
	}
	h.probe("target-" + string(f.Target))
	g := f
	g.Target = ""
	if !f.Target.isSet() {
		g.Node = ids[0]
		h.lastHit = ids[0]
		if (g.Kind == FaultOneWay || g.Kind == FaultLink) && (g.Peer == 0 || g.Peer == g.Node) {
			var others []uint64
			for _, id := range h.ids {
				if id != g.Node {
					others = append(others, id)
				}
			}
			g.Peer = others[h.targetRand().IntN(len(others))]
		}
		return []Fault{g}
	}
	if g.Kind == FaultPartition || g.Kind == FaultIsolate {
		var rest []uint64
		for _, id := range h.ids {
			if !slices.Contains(ids, id) {
				rest = append(rest, id)
			}
		}
		g.Kind = FaultPartition
		g.Groups = [][]uint64{ids, rest}
		return []Fault{g}
	}
	out := make([]Fault, 0, len(ids))
	for _, id := range ids {
		c := g
		c.Node = id
		out = append(out, c)
	}
	return out
}

// targetRand is the stream seeded choices of targets draw from (its own
// name, so aiming never shifts the workload or the faults).
func (h *harness) targetRand() *sim.Rand {
	if h.trng == nil {
		h.trng = h.w.Streams().Stream("targets")
	}
	return h.trng
}

// resolve returns the node ids t names now, sorted; none when it names
// nobody.
func (h *harness) resolve(t Target, eventNode uint64) []uint64 {
	leader := h.currentLeader()
	var followers []uint64 // running, not the leader
	for _, id := range h.ids {
		if h.node(id) != nil && id != leader {
			followers = append(followers, id)
		}
	}
	one := func(id uint64) []uint64 {
		if id == 0 {
			return nil
		}
		return []uint64{id}
	}
	switch t {
	case TargetLeader:
		return one(leader)
	case TargetFollower:
		if len(followers) == 0 {
			return nil
		}
		return one(followers[h.targetRand().IntN(len(followers))])
	case TargetMostCaughtUp, TargetLeastCaughtUp:
		best := uint64(0)
		var bestEnd int64
		var bestApplied uint64
		for _, id := range followers {
			end, applied := h.caughtUp(id)
			better := best == 0
			if !better && t == TargetMostCaughtUp {
				better = end > bestEnd || (end == bestEnd && applied > bestApplied)
			} else if !better {
				better = end < bestEnd || (end == bestEnd && applied < bestApplied)
			}
			if better {
				best, bestEnd, bestApplied = id, end, applied
			}
		}
		return one(best)
	case TargetLastVoter:
		if h.lastVoter == 0 || h.node(h.lastVoter) == nil {
			return nil
		}
		return one(h.lastVoter)
	case TargetLastHit:
		if h.lastHit == 0 || h.node(h.lastHit) == nil {
			return nil
		}
		return one(h.lastHit)
	case TargetPreviousLeader:
		for i := len(h.leaders) - 1; i >= 0; i-- {
			if id := h.leaders[i].node; id != leader {
				if h.node(id) == nil {
					return nil
				}
				return one(id)
			}
		}
		return nil
	case TargetEventNode:
		if eventNode == 0 || h.w.Process(eventNode).State() == sim.StateDown {
			return nil
		}
		return one(eventNode)
	case TargetMinority, TargetMajority:
		minority := h.minority(leader)
		if t == TargetMinority {
			return minority
		}
		var out []uint64
		for _, id := range h.ids {
			if !slices.Contains(minority, id) {
				out = append(out, id)
			}
		}
		return out
	}
	panic(fmt.Sprintf("scenarios: resolve: unknown target %q", t))
}

// minority draws a set of (n-1)/2 running nodes holding the leader (if
// any), sorted.
func (h *harness) minority(leader uint64) []uint64 {
	size := (len(h.ids) - 1) / 2
	if size == 0 {
		return nil
	}
	var set, pool []uint64
	if leader != 0 {
		set = append(set, leader)
	}
	for _, id := range h.ids {
		if id != leader && h.node(id) != nil {
			pool = append(pool, id)
		}
	}
	for len(set) < size && len(pool) > 0 {
		i := h.targetRand().IntN(len(pool))
		set = append(set, pool[i])
		pool = slices.Delete(pool, i, i+1)
	}
	slices.Sort(set)
	return set
}

// currentLeader returns the running node that leads in the highest term
// (standalone: the node itself), or 0.
func (h *harness) currentLeader() uint64 {
	best, bestTerm := uint64(0), uint64(0)
	for _, id := range h.ids {
		n := h.node(id)
		if n == nil || n.Failed() != nil {
			continue
		}
		st := n.Status()
		if st.Role == node.RoleStandalone {
			return id
		}
		if st.Role == node.RoleLeader && (best == 0 || st.Term > bestTerm) {
			best, bestTerm = id, st.Term
		}
	}
	return best
}

// caughtUp measures how far node id's data log reaches: the sum of its
// partitions' log ends, and its applied Raft index.
func (h *harness) caughtUp(id uint64) (int64, uint64) {
	n := h.node(id)
	var end int64
	for _, p := range n.Partitions() {
		end += p.LogEnd
	}
	return end, n.Status().Applied
}

// transferLeader asks the current leader to hand leadership to f.Node, on
// the leader's own event loop (a paused leader handles it when resumed).
func (h *harness) transferLeader(f Fault) {
	leader := h.currentLeader()
	if leader == 0 || leader == f.Node {
		h.probe("transfer-leader-noop")
		return
	}
	to := f.Node
	_ = h.w.Post(leader, 0, func() {
		if n := h.node(leader); n != nil && n.TransferLeadership(to) {
			h.probe("transfer-leader")
		}
	})
}
