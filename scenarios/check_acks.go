package scenarios

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// frontierPoint: by time t, some report had shown the partition's HWM at
// hwm (the running maximum over every node).
type frontierPoint struct {
	t   time.Duration
	hwm int64
}

// frontierSample is one HWM report of a partition.
type frontierSample struct {
	pk PartKey
	frontierPoint
}

// commitFrontier returns, per partition, the running maximum of every HWM
// any up node reported (observations and fetch replies), at the instants it
// grew. The first instant it passes an offset is when the history first
// shows that offset committed.
func (ix *index) commitFrontier() map[PartKey][]frontierPoint {
	var all []frontierSample
	for i := range ix.h.Obs {
		o := &ix.h.Obs[i]
		if !o.Up {
			continue
		}
		for _, p := range o.Parts {
			all = append(all, frontierSample{p.Key(), frontierPoint{o.Time, p.HWM}})
		}
	}
	for _, o := range ix.fetches {
		all = append(all, frontierSample{o.Key(), frontierPoint{o.servedAt(), o.Fetch.HWM}})
	}
	slices.SortStableFunc(all, func(a, b frontierSample) int { return cmp.Compare(a.t, b.t) })
	out := map[PartKey][]frontierPoint{}
	for _, a := range all {
		f := out[a.pk]
		if len(f) == 0 || a.hwm > f[len(f)-1].hwm {
			out[a.pk] = append(f, a.frontierPoint)
		}
	}
	return out
}

// committedAt returns the first time the frontier passed off, or false.
func committedAt(f []frontierPoint, off int64) (time.Duration, bool) {
	i := sort.Search(len(f), func(i int) bool { return f[i].hwm > off })
	if i == len(f) {
		return 0, false
	}
	return f[i].t, true
}

// ackTerm returns the term the replying node was in when it answered o:
// the evidence's term, else the term of the node's latest up observation at
// or before the reply, else 0 (unknown: any later term counts as a change).
func (ix *index) ackTerm(o *Op) uint64 {
	if o.Evidence != nil && o.Evidence.Term != 0 {
		return o.Evidence.Term
	}
	obs := ix.obsByNode[o.Node]
	i := sort.Search(len(obs), func(i int) bool { return ix.h.Obs[obs[i]].Time > o.Complete })
	for i--; i >= 0; i-- {
		if ob := &ix.h.Obs[obs[i]]; ob.Up {
			return ob.Term
		}
	}
	return 0
}

// termAbove returns the first time any up node was observed in a term
// above term.
func (ix *index) termAbove(term uint64) (time.Duration, bool) {
	s := ix.termSteps
	i := sort.Search(len(s), func(i int) bool { return s[i].term > term })
	if i == len(s) {
		return 0, false
	}
	return s[i].t, true
}

// missing reports whether the final state shows a record absent at off: a
// node that reached off holds another payload there, or nodes host the
// partition and none reached off. bad lists the other payloads held.
func (ix *index) missing(pk PartKey, off int64, p uint64) (bad []heldRec, v finalView, gone bool) {
	v = ix.at(pk, off)
	bad = v.others(p)
	return bad, v, len(bad) > 0 || (v.hosts > 0 && v.reached == 0)
}

// checkS5: an acks=1 success was durable on the leader at reply time (the
// durable-end evidence covers its records). In standalone mode it survives
// in the final log. In a cluster it may be missing from the final committed
// logs only if the history shows a leadership change no later than the
// moment its offset was first shown committed (by any HWM report passing
// it; the end of the run if never), and only cleanly: no consumer ever read
// it, and every final log that reached its offset holds the same
// replacement. A leadership change is any up node observed in a term above
// the one the acking node replied in (Evidence.Term, else its latest
// observation); a second leader in the same term is S8's business.
func checkS5(ix *index, c *collector) {
	final := ix.h.Final
	var frontier map[PartKey][]frontierPoint
	for _, o := range ix.ops {
		if o.Kind != KindProduce || o.Acks != 1 || o.Outcome != OutcomeOK {
			continue
		}
		c.judged()
		if e := o.Evidence; e == nil {
			c.fail(o.Complete, []OpID{o.ID}, "acks=1 op %d (n%d, %v offsets [%d, %d]) acked at %v with no durable-end evidence",
				o.ID, o.Node, o.Key(), o.Offset, o.Last(), o.Complete)
		} else if e.DurableEnd <= o.Last() {
			c.fail(o.Complete, []OpID{o.ID}, "acks=1 op %d (n%d, %v offsets [%d, %d]) %s while the leader's durable end was %d: not durable",
				o.ID, o.Node, o.Key(), o.Offset, o.Last(), answered(o), e.DurableEnd)
		}
		if final == nil {
			continue
		}
		pk := o.Key()
		var lost []int64
		var unclean problems
		for i, p := range o.Payloads {
			off := o.Offset + int64(i)
			bad, v, gone := ix.missing(pk, off, p)
			if !gone {
				continue
			}
			lost = append(lost, off)
			if len(bad) > 0 && len(bad) < len(v.held) {
				unclean.add(final.Time, "offset %d reused inconsistently: %s", off, describeHeld(v.held))
			} else if len(bad) > 1 {
				for _, b := range bad[1:] {
					if b.payload != bad[0].payload {
						unclean.add(final.Time, "offset %d reused inconsistently: %s", off, describeHeld(bad))
						break
					}
				}
			}
			// Only a read of this record at its acked offset shows the loss
			// to a consumer. The same payload read at another offset is
			// another attempt's record (a retry after an indeterminate
			// answer), which says nothing of this copy.
			for _, r := range ix.reads[offKey{pk, off}] {
				if r.payload == p {
					unclean.add(r.op.Complete, "payload %d was read by fetch op %d on n%d at %v at offset %d", p, r.op.ID, r.op.Node, r.op.Complete, r.off)
					break
				}
			}
		}
		if len(lost) == 0 {
			continue
		}
		if !ix.cluster {
			c.fail(final.Time, []OpID{o.ID}, "standalone acks=1 op %d (%v offsets [%d, %d], payloads %v, acked at %v) lost offsets %v from the final log",
				o.ID, pk, o.Offset, o.Last(), o.Payloads, o.Complete, lost)
			continue
		}
		if frontier == nil {
			frontier = ix.commitFrontier()
		}
		term := ix.ackTerm(o)
		by, committed := committedAt(frontier[pk], lost[0])
		if !committed {
			by = ix.h.Run.End
		}
		if t, ok := ix.termAbove(term); !ok || t > by {
			c.fail(by, []OpID{o.ID}, "acks=1 op %d (n%d term %d, %v offsets [%d, %d], acked at %v) lost offsets %v with no leadership change before offset %d was committed (at %v)",
				o.ID, o.Node, term, pk, o.Offset, o.Last(), o.Complete, lost, lost[0], by)
		}
		if unclean.n > 0 {
			c.fail(unclean.at, []OpID{o.ID}, "acks=1 op %d (n%d, %v offsets [%d, %d], acked at %v) lost uncleanly: %s",
				o.ID, o.Node, pk, o.Offset, o.Last(), o.Complete, unclean.String())
		}
	}
}

// checkS6: no two successful produces share (partition, offset), and no
// payload appears in a node's final log more often than its attempts allow.
//
// An offset shared with a cluster acks=1 success that is missing from the
// final logs is not a violation here: that is the clean loss S5 allows
// (its offset is reused), and S5 judges it; without a final state such
// collisions are not judged. A payload may appear once, plus once per retry
// of an indeterminate attempt, and never more often than it had attempts
// that did not fail definitely: so a payload whose every attempt failed
// must not appear at all. A payload no op ever produced must not appear.
func checkS6(ix *index, c *collector) {
	type claim struct {
		op      *Op
		payload uint64
	}
	claims := map[offKey][]claim{}
	var keys []offKey
	for _, o := range ix.ops {
		if o.Kind != KindProduce || o.Outcome != OutcomeOK {
			continue
		}
		c.judged()
		for i, p := range o.Payloads {
			k := offKey{o.Key(), o.Offset + int64(i)}
			if len(claims[k]) == 1 {
				keys = append(keys, k)
			}
			claims[k] = append(claims[k], claim{o, p})
		}
	}
	slices.SortFunc(keys, cmpOffKey)
	type pair struct{ a, b OpID }
	reported := map[pair]bool{}
	final := ix.h.Final
	for _, k := range keys {
		var live []claim
		skip := false
		for _, cl := range claims[k] {
			if ix.cluster && cl.op.Acks == 1 {
				if final == nil {
					skip = true
					break
				}
				if _, _, gone := ix.missing(k.pk, k.off, cl.payload); gone {
					continue // a lost acks=1 record: S5's business
				}
			}
			live = append(live, cl)
		}
		if skip || len(live) < 2 {
			continue
		}
		a, b := live[0].op, live[1].op
		if reported[pair{a.ID, b.ID}] {
			continue
		}
		reported[pair{a.ID, b.ID}] = true
		c.fail(max(a.Complete, b.Complete), []OpID{a.ID, b.ID},
			"%v offset %d given to two successful produces: op %d (n%d acks=%d payload %d, acked at %v) and op %d (n%d acks=%d payload %d, acked at %v)%s",
			k.pk, k.off, a.ID, a.Node, a.Acks, live[0].payload, a.Complete, b.ID, b.Node, b.Acks, live[1].payload, b.Complete,
			moreClaims(len(live)))
	}
	if final == nil {
		return
	}
	for _, n := range ix.finalNodes {
		c.judged()
		nrecs := 0
		for j := range n.Parts {
			nrecs += len(n.Parts[j].Records)
		}
		count := make(map[uint64]int, nrecs)
		ps := make([]uint64, 0, nrecs)
		for j := range n.Parts {
			for _, rec := range n.Parts[j].Records {
				if count[rec.Payload] == 0 {
					ps = append(ps, rec.Payload)
				}
				count[rec.Payload]++
			}
		}
		slices.Sort(ps)
		// where lists, per payload, its first records; only a violation
		// needs it, so it is built at the first one.
		var where map[uint64][]Rec
		for _, p := range ps {
			atts := ix.attempts[p]
			allowed := allowedCopies(ix, atts)
			if count[p] <= allowed {
				continue
			}
			if where == nil {
				where = map[uint64][]Rec{}
				for j := range n.Parts {
					for _, rec := range n.Parts[j].Records {
						if len(where[rec.Payload]) < maxProblemsListed {
							where[rec.Payload] = append(where[rec.Payload], rec)
						}
					}
				}
			}
			ids := make([]OpID, len(atts))
			var desc strings.Builder
			for i, a := range atts {
				ids[i] = a.ID
				if i > 0 {
					desc.WriteString(", ")
				}
				fmt.Fprintf(&desc, "op %d %s", a.ID, a.Outcome)
				if a.RetryOf != 0 {
					fmt.Fprintf(&desc, " (retry of op %d)", a.RetryOf)
				}
			}
			if len(atts) == 0 {
				desc.WriteString("no op produced it")
			}
			c.fail(final.Time, ids, "n%d's final log holds payload %d %d times at %v, at most %d allowed (attempts: %s)",
				n.Node, p, count[p], where[p], allowed, desc.String())
		}
	}
}

// allowedCopies is how many times a payload may appear in one node's log
// given its attempts (see checkS6).
func allowedCopies(ix *index, atts []*Op) int {
	notFailed, retries := 0, 0
	for _, a := range atts {
		// The node's own definite failure counts, even when the client
		// gave up first and recorded the op as indeterminate.
		if a.Outcome != OutcomeFail && (a.Served == nil || !a.Served.Definite) {
			notFailed++
		}
		if t := ix.op(a.RetryOf); t != nil && t.Outcome == OutcomeIndeterminate {
			retries++
		}
	}
	return min(notFailed, 1+retries)
}

func moreClaims(n int) string {
	if n <= 2 {
		return ""
	}
	return fmt.Sprintf(" and %d more", n-2)
}

// checkS7: a reply never precedes what its acks level promises, judged from
// the evidence captured at reply time: acks=1 needs the leader's durable
// end past the batch's last offset (its own fsync completed), read by the
// harness's oracle from the leader's durable WAL image when Evidence.Truth
// is set, not from the node's report; in standalone mode acks=-1 needs the
// same; in a cluster acks=-1 needs the leader's HWM past it (its own entry
// committed and applied). A success without evidence cannot be judged and
// is reported.
func checkS7(ix *index, c *collector) {
	for _, o := range ix.ops {
		if o.Kind != KindProduce || o.Outcome != OutcomeOK || (o.Acks != 1 && o.Acks != -1) {
			continue
		}
		c.judged()
		e := o.Evidence
		switch {
		case e == nil:
			c.fail(o.Complete, []OpID{o.ID}, "acks=%d op %d (n%d, %v offsets [%d, %d]) acked at %v with no reply-time evidence",
				o.Acks, o.ID, o.Node, o.Key(), o.Offset, o.Last(), o.Complete)
		case o.Acks == 1 && e.DurableEnd <= o.Last():
			c.fail(o.Complete, []OpID{o.ID}, "acks=1 op %d (n%d, %v offsets [%d, %d]) %s before its fsync: leader durable end %d",
				o.ID, o.Node, o.Key(), o.Offset, o.Last(), answered(o), e.DurableEnd)
		case o.Acks == -1 && !ix.cluster && e.Truth && e.DurableEnd <= o.Last():
			c.fail(o.Complete, []OpID{o.ID}, "standalone acks=-1 op %d (%v offsets [%d, %d]) %s before its fsync: durable end %d on disk",
				o.ID, o.Key(), o.Offset, o.Last(), answered(o), e.DurableEnd)
		case o.Acks == -1 && e.HWM <= o.Last():
			c.fail(o.Complete, []OpID{o.ID}, "acks=-1 op %d (n%d, %v offsets [%d, %d]) %s before commit and apply: leader HWM %d",
				o.ID, o.Node, o.Key(), o.Offset, o.Last(), answered(o), e.HWM)
		}
	}
}

// answered says when a produce was answered: at the node's reply, the
// instant its reply-time evidence was read (the checks above judge that
// instant), and when the client got the answer, a client latency later
// (the violation's time). A history without the reply time gives only the
// latter.
func answered(o *Op) string {
	if e := o.Evidence; e != nil && e.At > 0 {
		return fmt.Sprintf("answered by n%d at %v (the client got it at %v)", o.Node, e.At, o.Complete)
	}
	return fmt.Sprintf("answered at %v", o.Complete)
}

// checkS10: what a node reports about its own durability agrees with its
// disk. At every reply whose evidence holds ground truth (Truth: acks=1,
// and acks=-1 in standalone mode), the durable end the node reported must
// not exceed how far the replied records really are in its durable WAL
// image. A report that lags the disk is fine (a completion not yet
// processed); one ahead of it is a sync bookkeeping bug even when no loss
// follows.
func checkS10(ix *index, c *collector) {
	for _, o := range ix.ops {
		e := o.Evidence
		if o.Kind != KindProduce || o.Outcome != OutcomeOK || e == nil || !e.Truth {
			continue
		}
		c.judged()
		if e.ReportedDurableEnd > e.DurableEnd {
			c.fail(o.Complete, []OpID{o.ID}, "acks=%d op %d (n%d, %v offsets [%d, %d]) %s: the node reported durable end %d, its durable WAL image holds them only up to %d",
				o.Acks, o.ID, o.Node, o.Key(), o.Offset, o.Last(), answered(o), e.ReportedDurableEnd, e.DurableEnd)
		}
	}
}
