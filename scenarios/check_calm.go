package scenarios

import (
	"fmt"
	"time"
)

// This file holds the checks of issue 11's second half: atomic requests
// (S12) and liveness that cannot be gamed (L3, L4).

// checkS12: a produce request's records are one Kafka record batch, all or
// nothing. In every final log (below the node's HWM) the records of one
// request are either all present, at consecutive offsets in request order,
// or none is. Every produce of two or more records is judged, whatever its
// outcome: a request that failed or timed out may be missing, never partly
// present.
//
// What walraft promises, per path (RunInfo.Path):
//   - batch (the default): a request is one WAL append, written as
//     consecutive WAL records the last of which closes the append; WAL
//     recovery drops an append whose closing record did not survive, and
//     one Raft entry carries whole appends. So a request is all or nothing
//     on every node, after any crash.
//   - standalone: the same WAL rule; the log is the WAL.
//   - legacy: each record is its own Raft entry, so a leader change can
//     commit a prefix of a request: no promise, S12 is not judged.
func checkS12(ix *index, c *collector) {
	if ix.h.Run.Path == "legacy" || ix.h.Final == nil {
		return
	}
	// where[node][part][payload] lists the offsets holding the payload in
	// the node's final log, built once.
	type loc struct {
		node NodeID
		pk   PartKey
	}
	where := map[loc]map[uint64][]int64{}
	for _, n := range ix.finalNodes {
		for j := range n.Parts {
			p := &n.Parts[j]
			m := make(map[uint64][]int64, len(p.Records))
			for _, r := range p.Records {
				if r.Offset < p.HWM {
					m[r.Payload] = append(m[r.Payload], r.Offset)
				}
			}
			where[loc{n.Node, p.Key()}] = m
		}
	}
	for _, o := range ix.ops {
		if o.Kind != KindProduce {
			continue
		}
		c.judged()
		if len(o.Payloads) < 2 {
			continue
		}
		pk := o.Key()
		for _, n := range ix.finalNodes {
			m := where[loc{n.Node, pk}]
			p := ix.finalPart[n.Node][pk]
			if m == nil || p == nil {
				continue
			}
			var bad []string
			for i, pl := range o.Payloads {
				for _, x := range m[pl] {
					base := x - int64(i)
					whole := true
					for j, want := range o.Payloads {
						if got, ok := p.at(base + int64(j)); !ok || got != want {
							whole = false
							break
						}
					}
					if !whole {
						bad = append(bad, fmt.Sprintf("record %d (payload %d) at offset %d", i, pl, x))
					}
				}
			}
			if len(bad) > 0 {
				if len(bad) > maxProblemsListed {
					bad = append(bad[:maxProblemsListed], fmt.Sprintf("and %d more", len(bad)-maxProblemsListed))
				}
				c.fail(ix.h.Final.Time, []OpID{o.ID}, "produce op %d (acks=%d, %q, %d records, payloads %v, sent to n%d at %v) is partly present in n%d's final %v log (HWM %d): %v",
					o.ID, o.Acks, o.Outcome, len(o.Payloads), o.Payloads, o.Node, o.Invoke, n.Node, pk, p.HWM, bad)
				break
			}
		}
	}
}

// calmFrom returns where the fault-free stretch L3 judges begins: 0 for a
// fault-free run, the liveness phase's calm workload start otherwise, and
// false when the run has no such stretch.
func calmFrom(h *History) (time.Duration, bool) {
	if h.Run.FaultFree {
		return 0, true
	}
	if l := h.Live; l != nil && l.CalmFrom > 0 {
		return l.CalmFrom, true
	}
	return 0, false
}

// checkL3: in a fault-free stretch (a fault-free run from its start; in any
// run, the liveness phase from the start of its own calm workload, see
// LivenessReport.CalmFrom) every produce ends by itself: no timeout, no
// indeterminate answer, nothing left pending. A node's own AcksTimeout, or
// a client's, answering a request is how a stuck system hides (a lost
// wakeup strands a request until its timer fires, and L2 accepts that).
func checkL3(ix *index, c *collector) {
	from, ok := calmFrom(ix.h)
	if !ok {
		return
	}
	c.judged()
	for _, o := range ix.ops {
		if o.Kind != KindProduce || o.Invoke < from {
			continue
		}
		switch o.Outcome {
		case OutcomeIndeterminate:
			c.fail(o.Complete, []OpID{o.ID}, "acks=%d op %d sent to n%d at %v in a fault-free stretch (from %v) ended indeterminate at %v: %s",
				o.Acks, o.ID, o.Node, o.Invoke, from, o.Complete, o.Err)
		case OutcomePending:
			c.fail(ix.h.Run.End, []OpID{o.ID}, "acks=%d op %d sent to n%d at %v in a fault-free stretch (from %v) was never answered (run ended at %v)",
				o.Acks, o.ID, o.Node, o.Invoke, from, ix.h.Run.End)
		}
	}
}

// l4MinSamples is how many answered requests an acks level needs before
// its median is compared with another level's (fewer is noise).
const l4MinSamples = 20

// checkL4: in a fault-free run, the median latencies of answered produces
// order acks=0 < acks=1 < acks=-1 (each pair compared when both levels have
// l4MinSamples answers; acks=1 against acks=-1 only in a cluster, since a
// standalone node answers both after the same fsync), and no successful acks=1 or acks=-1 produce takes
// longer than RunInfo.LatencyBound. S7 implies the order for each request;
// this judges the system as a whole: an acks=1 path that waits for Raft, or
// a batcher that waits for the next request to cut a batch, shows here.
func checkL4(ix *index, c *collector) {
	run := &ix.h.Run
	if !run.FaultFree || run.LatencyBound <= 0 {
		return
	}
	c.judged()
	for _, o := range ix.ops {
		if o.Kind != KindProduce || o.Acks == 0 || o.Outcome != OutcomeOK {
			continue
		}
		if d := o.Complete - o.Invoke; d > run.LatencyBound {
			c.fail(o.Complete, []OpID{o.ID}, "acks=%d op %d sent to n%d at %v took %v, over the fault-free bound %v",
				o.Acks, o.ID, o.Node, o.Invoke, d, run.LatencyBound)
		}
	}
	med := map[int8]LatencyStat{}
	for _, l := range latencies(ix.h) {
		if l.Count >= l4MinSamples {
			med[l.Acks] = l
		}
	}
	for _, pair := range [][2]int8{{0, 1}, {1, -1}, {0, -1}} {
		if pair == [2]int8{1, -1} && !ix.cluster {
			// Standalone, acks=1 and acks=-1 mean the same (answered
			// after the WAL fsync): their medians differ by noise only.
			continue
		}
		a, okA := med[pair[0]]
		b, okB := med[pair[1]]
		if okA && okB && a.Median >= b.Median {
			c.fail(run.End, nil, "median latency of acks=%d (%v over %d requests) is not below that of acks=%d (%v over %d requests)",
				a.Acks, a.Median, a.Count, b.Acks, b.Median, b.Count)
		}
	}
}

// latencyBound is L4's bound on one successful acks=1 or acks=-1 produce in
// a fault-free run, from the options:
//
//	2·ClientLatency                 the request and its reply
//	+ 50·Disk.SyncMax               the leader's WAL fsync and the Raft log
//	                                fsyncs of leader and followers, each of
//	                                which may queue behind a few others
//	+ 20·(NetLatency + NetJitter)   ten node-to-node round trips (append,
//	                                response, a re-send)
//
// The correct system stays well inside it (calm runs: the slowest acks=-1
// reply is a few fsyncs and round trips); a request that waits for
// something other than its own work (the next request, a timer) does not.
func latencyBound(o Options) time.Duration {
	return 2*o.ClientLatency + 50*o.Disk.SyncMax + 20*(o.NetLatency+o.NetJitter)
}

// faultFree reports whether a run of o with schedule s injects no fault at
// all: no scheduled fault, and a disk that draws no stall, no EIO and no
// torn persistence.
func faultFree(o Options, s Schedule) bool {
	d := o.Disk
	return len(s) == 0 && d.StallProb == 0 && d.WriteEIOProb == 0 && d.SyncEIOProb == 0 && d.TornKeepProb == 0
}
