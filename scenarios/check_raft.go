package scenarios

import (
	"cmp"
	"slices"

	gocmp "github.com/google/go-cmp/cmp"
)

// entryClaim is what an acks=-1 success says about the Raft entry that
// resolved its waiter, in a form go-cmp can diff against the final log.
type entryClaim struct {
	Term      uint64
	Topic     string
	Partition int32
	Records   []Rec // the op's offsets and the payloads the entry holds there
}

// checkS8 (cluster mode only): at most one leader per term, from the
// observations; the final committed Raft logs agree with each other index
// by index; and every acks=-1 success was resolved by its own entry: the
// final committed entry at the (term, index) its evidence names has that
// term and carries the op's payloads at the op's offsets.
//
// An index every final node has compacted cannot be judged. If no final
// node reports any Raft entry (the harness did not capture them), the
// entry checks are skipped.
func checkS8(ix *index, c *collector) {
	if !ix.cluster {
		return
	}
	type lead struct {
		node NodeID
		obs  int
	}
	leaders := map[uint64][]lead{}
	var terms []uint64
	for i := range ix.h.Obs {
		o := &ix.h.Obs[i]
		if !o.Up || o.Role != RoleLeader {
			continue
		}
		c.judged()
		ls := leaders[o.Term]
		if len(ls) == 0 {
			terms = append(terms, o.Term)
		}
		if !slices.ContainsFunc(ls, func(l lead) bool { return l.node == o.Node }) {
			leaders[o.Term] = append(ls, lead{o.Node, i})
		}
	}
	slices.Sort(terms)
	for _, t := range terms {
		ls := leaders[t]
		if len(ls) < 2 {
			continue
		}
		a, b := &ix.h.Obs[ls[0].obs], &ix.h.Obs[ls[1].obs]
		c.fail(b.Time, nil, "term %d has two leaders: n%d (observed leader at %v, incarnation %d) and n%d (observed leader at %v, incarnation %d)",
			t, a.Node, a.Time, a.Incarnation, b.Node, b.Time, b.Incarnation)
	}

	final := ix.h.Final
	haveRaft := false
	for _, n := range ix.finalNodes {
		haveRaft = haveRaft || len(n.Raft) > 0
	}
	if final == nil || !haveRaft {
		return
	}
	// Log matching over the final committed logs: compare every node with
	// the lowest-numbered node holding each index, reporting the first
	// divergence per node pair.
	type holder struct {
		node NodeID
		e    *RaftEntry
	}
	first := map[uint64]holder{}
	type pair struct{ a, b NodeID }
	reported := map[pair]bool{}
	for _, n := range ix.finalNodes {
		for j := range n.Raft {
			e := &n.Raft[j]
			c.judged()
			h, ok := first[e.Index]
			if !ok {
				first[e.Index] = holder{n.Node, e}
				continue
			}
			if entriesEqual(h.e, e) || reported[pair{h.node, n.Node}] {
				continue
			}
			reported[pair{h.node, n.Node}] = true
			c.fail(final.Time, nil, "final committed Raft logs of n%d and n%d differ at index %d (-n%d +n%d):\n%s",
				h.node, n.Node, e.Index, h.node, n.Node, gocmp.Diff(h.e, e))
		}
	}
	for _, o := range ix.ops {
		if o.Kind != KindProduce || o.Acks != -1 || o.Outcome != OutcomeOK {
			continue
		}
		c.judged()
		ev := o.Evidence
		if ev == nil || ev.EntryTerm == 0 || ev.EntryIndex == 0 {
			c.fail(o.Complete, []OpID{o.ID}, "acks=-1 op %d (n%d, %v offsets [%d, %d]) acked at %v without the (term, index) of its Raft entry",
				o.ID, o.Node, o.Key(), o.Offset, o.Last(), o.Complete)
			continue
		}
		want := entryClaim{Term: ev.EntryTerm, Topic: o.Topic, Partition: o.Partition}
		for i, p := range o.Payloads {
			want.Records = append(want.Records, Rec{Offset: o.Offset + int64(i), Payload: p})
		}
		covered, beyond := false, true
		for _, n := range ix.finalNodes {
			if n.raftEnd() > ev.EntryIndex {
				beyond = false
			}
			e, ok := n.raftAt(ev.EntryIndex)
			if !ok {
				continue
			}
			covered = true
			got := entryClaim{Term: e.Term, Topic: e.Topic, Partition: e.Partition}
			carried := carriedPayloads(n, e, o.Offset)
			for _, r := range want.Records {
				p, ok := carried[r.Offset]
				if !ok {
					got.Records = append(got.Records, Rec{Offset: r.Offset}) // payload 0: not carried
					continue
				}
				got.Records = append(got.Records, Rec{Offset: r.Offset, Payload: p})
			}
			if !claimsEqual(&want, &got) {
				c.fail(o.Complete, []OpID{o.ID}, "acks=-1 op %d (n%d, acked at %v) was resolved by entry (term %d, index %d), but n%d's committed entry %d is a %q entry, term %d (-claimed +n%d's log):\n%s",
					o.ID, o.Node, o.Complete, ev.EntryTerm, ev.EntryIndex, n.Node, ev.EntryIndex, e.Kind, e.Term, n.Node, gocmp.Diff(want, got))
				break
			}
		}
		if !covered && beyond {
			ends := make([]uint64, 0, len(ix.finalNodes))
			for _, n := range ix.finalNodes {
				ends = append(ends, n.raftEnd())
			}
			c.fail(o.Complete, []OpID{o.ID}, "acks=-1 op %d (n%d, acked at %v) claims entry (term %d, index %d), past every node's committed Raft log (ends %v)",
				o.ID, o.Node, o.Complete, ev.EntryTerm, ev.EntryIndex, slices.SortedFunc(slices.Values(ends), cmp.Compare[uint64]))
		}
	}
}

// carriedPayloads maps offset to payload for the records the resolving
// entry e carries. A batch entry carries all of an op's records. On the
// legacy path each record is its own canonical entry and the op's waiter is
// resolved by the entry of its last record, so the op's earlier records are
// in the canonical entries just before it (same term and partition, offsets
// down to from).
func carriedPayloads(n *FinalNode, e *RaftEntry, from int64) map[int64]uint64 {
	out := map[int64]uint64{}
	if e.Kind != EntryBatch && e.Kind != EntryCanonical {
		return out
	}
	for j, p := range e.Payloads {
		out[e.Base+int64(j)] = p
	}
	if e.Kind != EntryCanonical {
		return out
	}
	for idx := e.Index - 1; idx > 0; idx-- {
		prev, ok := n.raftAt(idx)
		if !ok || prev.Kind != EntryCanonical || prev.Term != e.Term || prev.Topic != e.Topic ||
			prev.Partition != e.Partition || prev.Base < from || prev.Base >= e.Base || len(prev.Payloads) != 1 {
			break
		}
		out[prev.Base] = prev.Payloads[0]
	}
	return out
}

// entriesEqual and claimsEqual are the checks' fast equality; go-cmp is
// used only to render the difference once one is found.
func entriesEqual(a, b *RaftEntry) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Kind == b.Kind && a.Topic == b.Topic &&
		a.Partition == b.Partition && a.Base == b.Base && slices.Equal(a.Payloads, b.Payloads)
}

func claimsEqual(a, b *entryClaim) bool {
	return a.Term == b.Term && a.Topic == b.Topic && a.Partition == b.Partition && slices.Equal(a.Records, b.Records)
}
