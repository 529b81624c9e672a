package report

import (
	"fmt"
	"slices"

	"walraft/scenarios"
)

// divergence is the first record where two nodes' final logs disagree.
type divergence struct {
	part     scenarios.PartKey
	off      int64
	a, b     scenarios.NodeID
	pa, pb   uint64 // the payloads each holds there
	writeOps []scenarios.OpID
}

// firstDivergence finds, over every partition, the lowest offset below both
// HWMs where two nodes' final logs hold different payloads, and the produce
// ops that sent either payload (the writes behind the divergent records).
// ok is false when the final logs agree (or there is no final state).
func firstDivergence(h *scenarios.History) (d divergence, ok bool) {
	if h == nil || h.Final == nil {
		return d, false
	}
	type held struct {
		node scenarios.NodeID
		recs map[int64]uint64
	}
	byPart := map[scenarios.PartKey][]held{}
	var keys []scenarios.PartKey
	for _, n := range h.Final.Nodes {
		for _, p := range n.Parts {
			m := make(map[int64]uint64, len(p.Records))
			for _, r := range p.Records {
				m[r.Offset] = r.Payload
			}
			k := p.Key()
			if _, seen := byPart[k]; !seen {
				keys = append(keys, k)
			}
			byPart[k] = append(byPart[k], held{n.Node, m})
		}
	}
	slices.SortFunc(keys, func(x, y scenarios.PartKey) int {
		if x.Topic != y.Topic {
			if x.Topic < y.Topic {
				return -1
			}
			return 1
		}
		return int(x.Partition - y.Partition)
	})
	for _, k := range keys {
		hs := byPart[k]
		for i := range hs {
			for j := i + 1; j < len(hs); j++ {
				for off, pa := range hs[i].recs {
					pb, both := hs[j].recs[off]
					if !both || pa == pb {
						continue
					}
					if !ok || off < d.off || (off == d.off && k == d.part && (hs[i].node < d.a || (hs[i].node == d.a && hs[j].node < d.b))) {
						d = divergence{part: k, off: off, a: hs[i].node, b: hs[j].node, pa: pa, pb: pb}
						ok = true
					}
				}
			}
		}
		if ok {
			break // partitions in order: the first one with a divergence
		}
	}
	if !ok {
		return d, false
	}
	// The writes behind the two records: a payload is re-sent after a
	// failure, so prefer the attempts that succeeded, then those that may
	// have written (indeterminate, pending), then any.
	var okOps, maybeOps, anyOps []scenarios.OpID
	for i := range h.Ops {
		o := &h.Ops[i]
		if o.Kind != scenarios.KindProduce || o.Key() != d.part || !(slices.Contains(o.Payloads, d.pa) || slices.Contains(o.Payloads, d.pb)) {
			continue
		}
		switch o.Outcome {
		case scenarios.OutcomeOK:
			okOps = append(okOps, o.ID)
		case scenarios.OutcomeIndeterminate, scenarios.OutcomePending, scenarios.OutcomeNone:
			maybeOps = append(maybeOps, o.ID)
		default:
			anyOps = append(anyOps, o.ID)
		}
	}
	switch {
	case len(okOps) > 0:
		d.writeOps = okOps
	case len(maybeOps) > 0:
		d.writeOps = maybeOps
	default:
		d.writeOps = anyOps
	}
	return d, true
}

func (d divergence) String() string {
	return fmt.Sprintf("first divergent record: %s/%d offset %d: n%d holds payload %d, n%d holds payload %d",
		d.part.Topic, d.part.Partition, d.off, d.a, d.pa, d.b, d.pb)
}
