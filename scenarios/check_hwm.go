package scenarios

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// hwmPoint is one report of a (node, partition)'s HWM: an observation, a
// fetch reply or the final state.
type hwmPoint struct {
	t           time.Duration
	rank        int // 0 observation, 1 fetch, 2 final: orders points at one instant
	seq         int // observation index or op id
	hwm, logEnd int64
	inc         uint64 // incarnation (0 for fetches: not known)
}

// describe names the report a point came from (only for violations: most
// points never need it).
func (p *hwmPoint) describe() string {
	switch p.rank {
	case 0:
		return fmt.Sprintf("observation %d at %v (incarnation %d)", p.seq, p.t, p.inc)
	case 1:
		return fmt.Sprintf("fetch op %d at %v", p.seq, p.t)
	}
	return fmt.Sprintf("final state at %v (incarnation %d)", p.t, p.inc)
}

type nodePart struct {
	node NodeID
	pk   PartKey
}

// checkS3: a node's HWM for a partition never decreases, across restarts
// included, and never exceeds its log end. It uses every report of it:
// observations (in record order), fetch replies and the final state.
// Observations are totally ordered by the record; a fetch reply is only
// compared with reports from strictly earlier instants, because at one
// instant the harness cannot tell whether the fetch ran before or after the
// event that moved the HWM.
func checkS3(ix *index, c *collector) {
	h := ix.h
	points := map[nodePart][]hwmPoint{}
	var keys []nodePart
	add := func(n NodeID, pk PartKey, p hwmPoint) {
		k := nodePart{n, pk}
		if _, ok := points[k]; !ok {
			keys = append(keys, k)
		}
		points[k] = append(points[k], p)
	}
	for i := range h.Obs {
		o := &h.Obs[i]
		if !o.Up {
			continue
		}
		for _, p := range o.Parts {
			add(o.Node, p.Key(), hwmPoint{t: o.Time, rank: 0, seq: i, hwm: p.HWM, logEnd: p.LogEnd, inc: o.Incarnation})
		}
	}
	for _, o := range ix.fetches {
		add(o.Node, o.Key(), hwmPoint{t: o.servedAt(), rank: 1, seq: int(o.ID), hwm: o.Fetch.HWM, logEnd: o.Fetch.LogEnd})
	}
	if f := h.Final; f != nil {
		for _, n := range ix.finalNodes {
			for j := range n.Parts {
				p := &n.Parts[j]
				if end := finalRecordsEnd(p); end < p.HWM {
					c.fail(f.Time, nil, "n%d %v: final HWM %d but the node serves records only up to offset %d",
						n.Node, p.Key(), p.HWM, end)
				}
				add(n.Node, p.Key(), hwmPoint{t: f.Time, rank: 2, hwm: p.HWM, logEnd: p.LogEnd, inc: n.Incarnation})
			}
		}
	}
	slices.SortFunc(keys, func(a, b nodePart) int {
		if c := cmp.Compare(a.node, b.node); c != 0 {
			return c
		}
		return cmpPartKey(a.pk, b.pk)
	})
	var scratch []hwmPoint
	for _, k := range keys {
		ps := points[k]
		c.judged()
		scratch = sortHWMPoints(ps, scratch)
		var overEnd, back problems
		var overOps, backOps []OpID
		var maxBefore, maxObs *hwmPoint // max over earlier instants; max over this instant's observations so far
		for i := 0; i < len(ps); {
			j := i
			groupMax := maxBefore
			maxObs = nil
			for ; j < len(ps) && ps[j].t == ps[i].t; j++ {
				p := &ps[j]
				if p.hwm > p.logEnd {
					overEnd.add(p.t, "%s: HWM %d > log end %d", p.describe(), p.hwm, p.logEnd)
					if p.rank == 1 {
						overOps = append(overOps, OpID(p.seq))
					}
				}
				bound := maxBefore
				if p.rank == 0 && maxObs != nil && (bound == nil || maxObs.hwm > bound.hwm) {
					bound = maxObs
				}
				if bound != nil && p.hwm < bound.hwm {
					restart := ""
					if bound.inc != 0 && p.inc != 0 && bound.inc != p.inc {
						restart = " (across a restart)"
					}
					back.add(p.t, "HWM went %d -> %d%s: %s reported %d, then %s reported %d",
						bound.hwm, p.hwm, restart, bound.describe(), bound.hwm, p.describe(), p.hwm)
					if p.rank == 1 {
						backOps = append(backOps, OpID(p.seq))
					}
				}
				if p.rank == 0 && (maxObs == nil || p.hwm > maxObs.hwm) {
					maxObs = p
				}
				if groupMax == nil || p.hwm > groupMax.hwm {
					groupMax = p
				}
			}
			maxBefore = groupMax
			i = j
		}
		if back.n > 0 {
			c.fail(back.at, backOps, "n%d %v: %s", k.node, k.pk, back.String())
		}
		if overEnd.n > 0 {
			c.fail(overEnd.at, overOps, "n%d %v: %s", k.node, k.pk, overEnd.String())
		}
	}
}

// finalRecordsEnd returns one past the last record a final part holds (0
// when it holds none).
func finalRecordsEnd(p *FinalPart) int64 {
	if len(p.Records) == 0 {
		return 0
	}
	return p.Records[len(p.Records)-1].Offset + 1
}

// cmpHWMPoint orders points by (time, rank, seq).
func cmpHWMPoint(a, b hwmPoint) int {
	if c := cmp.Compare(a.t, b.t); c != 0 {
		return c
	}
	if c := cmp.Compare(a.rank, b.rank); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// sortHWMPoints sorts one (node, partition)'s points, as checkS3 added
// them (observations in record order, then fetches, then the final state),
// by cmpHWMPoint. The observations are already in order (a valid history
// records them in time order, and seq is their index) and there is at most
// one final point, so only the fetches are sorted, and merged in. When no
// two points compare equal the order is unique, so this is exactly what
// sorting the whole slice gives; when some do (an observation that lists
// a partition twice), it sorts the whole slice as it stands, so the order
// among equal points is the same too. scratch is a reusable buffer; the
// (possibly grown) buffer is returned.
func sortHWMPoints(ps, scratch []hwmPoint) []hwmPoint {
	a := 0
	for a < len(ps) && ps[a].rank == 0 {
		a++
	}
	b := a
	for b < len(ps) && ps[b].rank == 1 {
		b++
	}
	strict := b >= len(ps)-1
	for i := b; i < len(ps); i++ {
		strict = strict && ps[i].rank == 2
	}
	for i := 1; strict && i < a; i++ {
		strict = cmpHWMPoint(ps[i-1], ps[i]) < 0
	}
	// Two fetch points never tie: each op is one fetch, with one key.
	fetches := ps[a:b]
	if !strict {
		slices.SortFunc(ps, cmpHWMPoint)
		return scratch
	}
	slices.SortFunc(fetches, cmpHWMPoint)
	if a == 0 || b == a || cmpHWMPoint(ps[a-1], ps[a]) < 0 {
		// Observations before fetches already: only the final point can
		// be out of place.
	} else {
		scratch = append(scratch[:0], ps[:a]...)
		obs := scratch
		i, j, o := 0, a, 0
		for i < len(obs) && j < b {
			if cmpHWMPoint(ps[j], obs[i]) < 0 {
				ps[o] = ps[j]
				j++
			} else {
				ps[o] = obs[i]
				i++
			}
			o++
		}
		for i < len(obs) {
			ps[o] = obs[i]
			i++
			o++
		}
		// Whatever is left of the fetches is already in place.
	}
	// The final point: its own slot unless something is later.
	for i := len(ps) - 1; b < len(ps) && i > 0 && cmpHWMPoint(ps[i], ps[i-1]) < 0; i-- {
		ps[i], ps[i-1] = ps[i-1], ps[i]
	}
	return scratch
}
