package scenarios

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

// maxProblemsListed bounds the problems listed inside one violation.
const maxProblemsListed = 4

// problems accumulates the findings that make up one violation, keeping
// the earliest exposing time.
type problems struct {
	list []string
	n    int
	at   time.Duration
}

func (p *problems) add(t time.Duration, format string, args ...any) {
	if p.n == 0 || t < p.at {
		p.at = t
	}
	p.n++
	if len(p.list) < maxProblemsListed {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	}
}

func (p *problems) String() string {
	s := strings.Join(p.list, "; ")
	if p.n > len(p.list) {
		s += fmt.Sprintf("; and %d more", p.n-len(p.list))
	}
	return s
}

// checkS1: every acks=-1 success is, at its offsets, in every node's final
// committed log that reached those offsets, at least one node reached them,
// and every fetch that read those offsets below the reported HWM saw them.
func checkS1(ix *index, c *collector) {
	final := ix.h.Final
	for _, o := range ix.ops {
		if o.Kind != KindProduce || o.Acks != -1 || o.Outcome != OutcomeOK {
			continue
		}
		c.judged()
		pk := o.Key()
		var pr problems
		for i, p := range o.Payloads {
			off := o.Offset + int64(i)
			if final != nil {
				v := ix.at(pk, off)
				if bad := v.others(p); len(bad) > 0 {
					pr.add(final.Time, "offset %d: final log: %s", off, describeHeld(bad))
				} else if v.hosts > 0 && v.reached == 0 {
					pr.add(final.Time, "offset %d: no node's final HWM reaches it", off)
				}
			}
			for _, r := range ix.reads[offKey{pk, off}] {
				if r.payload != p {
					pr.add(r.op.Complete, "offset %d: fetch op %d on n%d at %v read payload %d below HWM %d",
						off, r.op.ID, r.op.Node, r.op.Complete, r.payload, r.op.Fetch.HWM)
				}
			}
		}
		if pr.n > 0 {
			c.fail(pr.at, []OpID{o.ID}, "acks=-1 op %d (n%d, %v offsets [%d, %d], payloads %v, acked at %v) lost: %s",
				o.ID, o.Node, pk, o.Offset, o.Last(), o.Payloads, o.Complete, pr.String())
		}
	}
}

// checkS2: two nodes never hold different records at one offset below both
// HWMs: pairwise over the final state, and across nodes over what fetches
// returned below the reported HWM (each node's first read of an offset).
func checkS2(ix *index, c *collector) {
	if f := ix.h.Final; f != nil {
		parts := slices.Clone(ix.h.Run.Partitions)
		slices.SortFunc(parts, cmpPartKey)
		for _, pk := range parts {
			for i, a := range ix.finalNodes {
				pa := ix.finalPart[a.Node][pk]
				if pa == nil {
					continue
				}
				for _, b := range ix.finalNodes[i+1:] {
					pb := ix.finalPart[b.Node][pk]
					if pb == nil {
						continue
					}
					c.judged()
					if d, ok := firstDiff(pa, pb); ok {
						hi := min(pa.HWM, pb.HWM, d+8)
						c.fail(f.Time, nil, "final logs of n%d and n%d disagree on %v from offset %d (HWMs %d, %d); records [%d, %d) (-n%d +n%d):\n%s",
							a.Node, b.Node, pk, d, pa.HWM, pb.HWM, d, hi, a.Node, b.Node,
							gocmp.Diff(recRange(pa, d, hi), recRange(pb, d, hi)))
					}
				}
			}
		}
	}
	// Cross-node reads: compare each node's first read of an offset.
	for _, k := range ix.readKeys {
		firstBy := map[NodeID]read{}
		var nodes []NodeID
		for _, r := range ix.reads[k] {
			if _, ok := firstBy[r.op.Node]; !ok {
				firstBy[r.op.Node] = r
				nodes = append(nodes, r.op.Node)
			}
		}
		if len(nodes) < 2 {
			continue
		}
		c.judged()
		r0 := firstBy[nodes[0]]
		for _, n := range nodes[1:] {
			if r := firstBy[n]; r.payload != r0.payload {
				c.fail(r.op.Complete, []OpID{r0.op.ID, r.op.ID},
					"%v offset %d below HWM: fetch op %d on n%d at %v read payload %d, fetch op %d on n%d at %v read payload %d",
					k.pk, k.off, r0.op.ID, r0.op.Node, r0.op.Complete, r0.payload, r.op.ID, r.op.Node, r.op.Complete, r.payload)
				break
			}
		}
	}
}

// firstDiff returns the first offset below both HWMs, held by both, where
// the two logs differ.
func firstDiff(a, b *FinalPart) (int64, bool) {
	if len(a.Records) == 0 || len(b.Records) == 0 {
		return 0, false
	}
	lo := max(a.Records[0].Offset, b.Records[0].Offset)
	hi := min(a.HWM, b.HWM)
	for off := lo; off < hi; off++ {
		pa, _ := a.at(off)
		pb, _ := b.at(off)
		if pa != pb {
			return off, true
		}
	}
	return 0, false
}

// recRange returns the records of p in [lo, hi) that it holds.
func recRange(p *FinalPart, lo, hi int64) []Rec {
	var out []Rec
	for off := lo; off < hi; off++ {
		if pl, ok := p.at(off); ok {
			out = append(out, Rec{Offset: off, Payload: pl})
		}
	}
	return out
}

// checkS4: a fetch never returns a record at or past the HWM the node
// reported with it; what was read below the HWM never changes in a later
// read (from any node) and is still there, unchanged, in every final log
// that reached it.
func checkS4(ix *index, c *collector) {
	for _, o := range ix.fetches {
		c.judged()
		var past []int64
		for _, rec := range o.Fetch.Records {
			if rec.Offset >= o.Fetch.HWM {
				past = append(past, rec.Offset)
			}
		}
		if len(past) > 0 {
			c.fail(o.Complete, []OpID{o.ID}, "fetch op %d on n%d at %v (%v from %d) returned offsets %v at or past the HWM %d it reported",
				o.ID, o.Node, o.Complete, o.Key(), o.From, past, o.Fetch.HWM)
		}
		if msg := fetchContract(o); msg != "" {
			c.fail(o.Complete, []OpID{o.ID}, "fetch op %d on n%d at %v (%v from %d, HWM %d, log end %d): %s",
				o.ID, o.Node, o.Complete, o.Key(), o.From, o.Fetch.HWM, o.Fetch.LogEnd, msg)
		}
	}
	final := ix.h.Final
	for _, k := range ix.readKeys {
		rs := ix.reads[k]
		r0 := rs[0]
		for _, r := range rs[1:] {
			if r.payload != r0.payload {
				c.fail(r.op.Complete, []OpID{r0.op.ID, r.op.ID},
					"%v offset %d changed: fetch op %d on n%d at %v read payload %d, later fetch op %d on n%d at %v read payload %d",
					k.pk, k.off, r0.op.ID, r0.op.Node, r0.op.Complete, r0.payload, r.op.ID, r.op.Node, r.op.Complete, r.payload)
				break
			}
		}
		if final == nil {
			continue
		}
		v := ix.at(k.pk, k.off)
		if bad := v.others(r0.payload); len(bad) > 0 {
			c.fail(final.Time, []OpID{r0.op.ID}, "%v offset %d read as payload %d by fetch op %d on n%d at %v, but final log: %s",
				k.pk, k.off, r0.payload, r0.op.ID, r0.op.Node, r0.op.Complete, describeHeld(bad))
		} else if v.hosts > 0 && v.reached == 0 {
			c.fail(final.Time, []OpID{r0.op.ID}, "%v offset %d read as payload %d by fetch op %d on n%d at %v disappeared: no node's final HWM reaches it",
				k.pk, k.off, r0.payload, r0.op.ID, r0.op.Node, r0.op.Complete)
		}
	}
}

// cmpTimeID orders ops by completion time, then id.
func cmpTimeID(a, b *Op) int {
	if c := cmp.Compare(a.Complete, b.Complete); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// fetchContract reports a fetch answer that does not fit its request
// (S4; node.Fetch's contract, as Kafka's fetch): a success needs the start
// offset at or below the HWM it reports, and one from below the HWM returns
// records from exactly that offset on, without gaps; a refusal as out of
// range needs the offset past that HWM (or below the log's start, which is
// 0 here: nothing trims a log from the front). A red-team bug answered a
// fetch past the HWM but inside the log as an empty success, and no check
// looked at the answer's class.
func fetchContract(o *Op) string {
	f := o.Fetch
	switch {
	case o.Outcome == OutcomeOK && o.From > f.HWM:
		return "a success for an offset past the HWM it reported (want out of range)"
	case o.Outcome == OutcomeOK && o.From < f.HWM && len(f.Records) == 0:
		return "no records for an offset below the HWM it reported"
	case o.Outcome == OutcomeFail && strings.Contains(o.Err, "offset out of range") && o.From >= 0 && o.From <= f.HWM:
		return "refused as out of range, but the offset is within [0, HWM]"
	}
	for i, r := range f.Records {
		if want := o.From + int64(i); r.Offset != want {
			return fmt.Sprintf("record %d at offset %d, want %d (records from the offset asked, without gaps)", i, r.Offset, want)
		}
	}
	return ""
}
