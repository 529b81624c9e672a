package scenarios

import (
	"fmt"
	"slices"
	"time"

	"walraft/core/node"
	"walraft/sim"
)

// This file is availability under gray failure (DESIGN.md section 6, A1: a
// healthy majority serves). The harness samples the simulator's ground
// truth (process states, network cuts and lossy links, disk stalls and I/O
// errors, clock rates) at every fault and every observation tick, and
// records the windows in which a healthy majority existed; checkA1 then
// judges the client history against them. Nothing here reads what a node
// says about itself.
//
// Where A1 is judged: in every scenario, whenever a run has a healthy
// window and acks=-1 load (standalone included: there the majority is the
// one node). Scenarios whose faults leave no healthy majority (crash-all,
// drop storms) simply have fewer or no windows; gray is built to have many.

// Availability constants.
const (
	// availClockSlack is how much slower than global time a node's clock
	// may run while the node still counts as healthy: FaultSkew draws
	// rates from 0.8, so a node's timeouts take up to 1/0.8 = 1.25 times
	// their nominal length in global time. A node whose clock is slower is
	// not healthy (its election timer is not "normal").
	availClockSlack   = 1.25
	availMinClockRate = 0.8
	// availNormalSyncFactor: a sync counts as completing within a normal
	// latency while it takes at most this many times the disk's drawn
	// maximum sync latency (and at least availNormalSyncMin).
	availNormalSyncFactor = 4
	availNormalSyncMin    = 5 * time.Millisecond
	// availServeQuantum is how long one successful acks=-1 reply counts as
	// "serving" for the unavailable share: time within a healthy window
	// more than availServeQuantum after the last success (or after the
	// window opened) is unserved.
	availServeQuantum = 100 * time.Millisecond
	// notLeaderBackoffMax caps a producer's back-off between attempts when
	// no node will take its writes (see producer.send).
	notLeaderBackoffMax = 80 * time.Millisecond
)

// AvailTruth is the ground truth A1 is judged against: when a healthy
// majority existed, and the bound T.
type AvailTruth struct {
	// Bound is T (see A1Bound): the longest stretch without a successful
	// acks=-1 reply that a healthy majority may take.
	Bound time.Duration `json:"bound_ns"`
	// Until is the end of the safety phase; A1 is judged in [0, Until).
	Until time.Duration `json:"until_ns"`
	// Offered is true when the workload offered acks=-1 writes throughout
	// the safety phase (closed-loop producers with a non-zero acks=-1
	// weight). A1 is not applicable otherwise.
	Offered bool `json:"offered"`
	// Windows are the maximal intervals [From, To) in which some majority
	// of nodes was healthy (see healthyMajority), in time order, disjoint.
	Windows []HealthyWindow `json:"windows,omitempty"`
}

// HealthyWindow is one interval in which a healthy majority existed.
type HealthyWindow struct {
	From time.Duration `json:"from_ns"`
	To   time.Duration `json:"to_ns"`
	// Nodes is a healthy majority at From (for reports).
	Nodes []NodeID `json:"nodes"`
}

// A1Bound returns T for a run's options and the nodes' configuration (with
// defaults filled in). It is the sum of what the design allows each step of
// a failover to take, in global time:
//
//	slack*(StepDownAfter + Tick)     a leader whose fsync hangs notices it on
//	                                 a tick and steps aside
//	slack*4*E                        an election: a randomized timeout of up
//	                                 to 2E (E = ElectionTicks*Tick), and one
//	                                 split vote costing up to 2E more
//	4*(NetLatency+NetJitter)*2       pre-vote, vote, the new leader's first
//	                                 entry and its commit: four round trips
//	4*SyncMaxNormal                  the vote's and the first entry's fsyncs
//	RequestTimeout                   a client stuck on a silent node (a
//	                                 paused leader) gives up
//	ThinkMax + backoff + 4*ClientLatency
//	                                 the client finds the new leader: a
//	                                 NotLeader hint, one back-off, a retry
//
// slack is availClockSlack (node clocks may run 1.25 times slow). With the
// harness's settings (10 ms ticks, E = 100 ms, a 500 ms fsync bound, a 1 s
// client timeout) T is about 2.3 s: a leader whose disk hangs for 3.5 s and
// that never steps aside leaves the cluster without a successful acks=-1
// write for longer than T, and a cluster that fails over as designed does
// not.
func A1Bound(o Options, nc node.Config) time.Duration {
	slack := func(d time.Duration) time.Duration { return time.Duration(float64(d) * availClockSlack) }
	e := time.Duration(nc.ElectionTicks) * nc.TickInterval
	rtt := 2 * (o.NetLatency + o.NetJitter)
	t := slack(nc.DiskStallTimeout+nc.TickInterval) + slack(4*e)
	t += 4*rtt + 4*normalSync(o.Disk)
	t += o.RequestTimeout
	t += o.ThinkMax + notLeaderBackoffMax + 4*o.ClientLatency
	return t
}

// normalSync is the longest sync latency that still counts as normal.
func normalSync(d sim.DiskConfig) time.Duration {
	return max(availNormalSyncMin, availNormalSyncFactor*d.SyncMax)
}

// availTracker samples the ground truth and builds the healthy windows.
type availTracker struct {
	h     *harness
	truth AvailTruth
	open  bool // a window is open (truth.Windows' last one, To unset)
	// errs is each disk's I/O error count at the last sample; sickInc is
	// the incarnation a node had when its disk last failed: it stays sick
	// until it restarts.
	errs    map[uint64]int64
	sickInc map[uint64]uint64
	// maxLinkDelay is the longest one-way delay a link may have and still
	// count as linked: a quarter of the election timeout.
	maxLinkDelay time.Duration
}

func newAvailTracker(h *harness) *availTracker {
	a := &availTracker{h: h, errs: map[uint64]int64{}, sickInc: map[uint64]uint64{}}
	nc := h.nodeConfig(1).Defaults()
	a.truth.Bound = A1Bound(h.o, nc)
	a.maxLinkDelay = time.Duration(nc.ElectionTicks) * nc.TickInterval / 4
	a.truth.Until = h.o.SafetyDuration
	a.truth.Offered = h.o.Producers > 0 && h.o.AcksWeights[2] > 0
	return a
}

// healthy reports whether node id is healthy now by ground truth: its
// process is up (not down, not paused), its disk has no I/O error since
// the process started and completes syncs within a normal latency, and
// its clock runs at a normal rate (and is not holding still after a
// backward step).
func (a *availTracker) healthy(id uint64) bool {
	h := a.h
	p := h.w.Process(id)
	d := h.w.Disk(id)
	if n := d.IOErrors(); n != a.errs[id] {
		a.errs[id] = n
		a.sickInc[id] = p.Incarnation()
	}
	if p.State() != sim.StateUp || h.nodes[id-1] == nil {
		return false
	}
	if inc, ok := a.sickInc[id]; ok && inc == p.Incarnation() {
		return false
	}
	if d.FailureArmed() {
		return false
	}
	if d.SlowUntil(normalSync(h.o.Disk)) > h.s.Now() {
		return false
	}
	// A clock holding still after a backward step fires no timer: the node
	// is as stuck as a paused one.
	return !p.Clock().Held() && float64(p.Clock().RatePPM()) >= availMinClockRate*float64(sim.RateOne)
}

// linked reports whether a and b can talk both ways without loss, and
// fast enough for Raft: a link whose one-way delay (latency, jitter and
// reordering) exceeds a quarter of the election timeout leaves no round
// trip inside a randomized election timeout (Raft's timing requirement,
// broadcast time far below the election timeout), so no leader can be
// elected or keep CheckQuorum across it.
func (a *availTracker) linked(x, y uint64) bool {
	n := a.h.w.Net()
	fast := func(c sim.LinkConfig) bool {
		return c.DropProb == 0 && c.Latency+c.Jitter+c.ReorderDelay <= a.maxLinkDelay
	}
	return n.Connected(x, y) && n.Connected(y, x) && fast(n.LinkConfig(x, y)) && fast(n.LinkConfig(y, x))
}

// majority returns a largest set of healthy, pairwise linked nodes if it is
// a majority (smallest ids first among equals), else nil.
func (a *availTracker) majority() []NodeID {
	var up []uint64
	for _, id := range a.h.ids {
		if a.healthy(id) {
			up = append(up, id)
		}
	}
	need := len(a.h.ids)/2 + 1
	if len(up) < need {
		return nil
	}
	// At most 9 nodes: try every subset of the healthy ones, largest first.
	var best []NodeID
	for mask := 1; mask < 1<<len(up); mask++ {
		var set []NodeID
		for i, id := range up {
			if mask&(1<<i) != 0 {
				set = append(set, id)
			}
		}
		if len(set) < need || len(set) < len(best) {
			continue
		}
		ok := true
		for i := 0; i < len(set) && ok; i++ {
			for j := i + 1; j < len(set) && ok; j++ {
				ok = a.linked(set[i], set[j])
			}
		}
		if ok && (len(set) > len(best) || slices.Compare(set, best) < 0) {
			best = set
		}
	}
	return best
}

// sample reads the truth now and opens or closes a window. It is called at
// every fault, crash and restart the harness makes, and every observation
// tick; after the safety phase it closes the open window.
func (a *availTracker) sample() {
	now := a.h.s.Now()
	if now > a.truth.Until {
		a.close(a.truth.Until)
		return
	}
	m := a.majority()
	switch {
	case m != nil && !a.open:
		a.truth.Windows = append(a.truth.Windows, HealthyWindow{From: now, Nodes: m})
		a.open = true
	case m == nil && a.open:
		a.close(now)
	}
}

func (a *availTracker) close(at time.Duration) {
	if !a.open {
		return
	}
	w := &a.truth.Windows[len(a.truth.Windows)-1]
	w.To = at
	a.open = false
	if w.To <= w.From {
		a.truth.Windows = a.truth.Windows[:len(a.truth.Windows)-1]
	}
}

// finish closes the last window at the end of the safety phase and returns
// the truth (or at the end of a run cut short).
func (a *availTracker) finish() *AvailTruth {
	a.close(min(a.h.s.Now(), a.truth.Until))
	// A run cut short (a panic in the system under test) judges A1 up to
	// where it stopped.
	a.truth.Until = min(a.h.s.Now(), a.truth.Until)
	t := a.truth
	return &t
}

// AvailSummary is a run's availability under its faults.
type AvailSummary struct {
	// Judged is false when A1 did not apply (no healthy window, or no
	// acks=-1 load).
	Judged bool
	// Bound is T.
	Bound time.Duration
	// Longest is the longest stretch inside a healthy window without a
	// successful acks=-1 reply (measured from the window's start, between
	// successes, and to the window's end); LongestAt is where it began.
	Longest   time.Duration
	LongestAt time.Duration
	// Healthy is the total length of the healthy windows.
	Healthy time.Duration
	// Unserved is the time inside healthy windows more than
	// availServeQuantum after the last successful acks=-1 reply (or the
	// window's start); UnservedShare is Unserved over the safety phase.
	Unserved      time.Duration
	UnservedShare float64
	// Held is false when a stretch longer than Bound passed inside a
	// healthy window (A1 violated).
	Held bool
}

// availGap is one stretch without a successful acks=-1 reply inside a
// healthy window.
type availGap struct {
	from, to time.Duration
	window   *HealthyWindow
}

// availGaps lists every gap inside the healthy windows, in time order.
func availGaps(h *History) []availGap {
	t := h.Avail
	if t == nil {
		return nil
	}
	probe := OpID(0)
	if h.Live != nil {
		probe = h.Live.ProbeOp
	}
	var oks []time.Duration
	for i := range h.Ops {
		o := &h.Ops[i]
		if o.Kind == KindProduce && o.Acks == -1 && o.Outcome == OutcomeOK && o.ID != probe && o.Complete < t.Until {
			oks = append(oks, o.Complete)
		}
	}
	slices.Sort(oks)
	var gaps []availGap
	for wi := range t.Windows {
		w := &t.Windows[wi]
		to := min(w.To, t.Until)
		last := w.From
		i, _ := slices.BinarySearch(oks, w.From)
		for ; i < len(oks) && oks[i] < to; i++ {
			if oks[i] > last {
				gaps = append(gaps, availGap{last, oks[i], w})
			}
			last = oks[i]
		}
		if to > last {
			gaps = append(gaps, availGap{last, to, w})
		}
	}
	return gaps
}

// SummarizeAvail computes a history's availability summary.
func SummarizeAvail(h *History) AvailSummary {
	s := AvailSummary{Held: true}
	t := h.Avail
	if t == nil || !t.Offered || len(t.Windows) == 0 {
		return s
	}
	s.Judged, s.Bound = true, t.Bound
	for _, w := range t.Windows {
		s.Healthy += min(w.To, t.Until) - w.From
	}
	for _, g := range availGaps(h) {
		d := g.to - g.from
		if d > s.Longest {
			s.Longest, s.LongestAt = d, g.from
		}
		if d > availServeQuantum {
			s.Unserved += d - availServeQuantum
		}
		if d > t.Bound {
			s.Held = false
		}
	}
	if t.Until > 0 {
		s.UnservedShare = float64(s.Unserved) / float64(t.Until)
	}
	return s
}

// checkA1: a healthy majority serves. Inside every healthy window no
// stretch longer than the bound passes without a successful acks=-1 reply,
// counted from the window's start, between successes and up to the window's
// end (DESIGN.md section 6). Not applicable without healthy windows or
// without acks=-1 load.
func checkA1(ix *index, c *collector) {
	t := ix.h.Avail
	if t == nil || !t.Offered || len(t.Windows) == 0 {
		return
	}
	c.judged()
	for _, g := range availGaps(ix.h) {
		if d := g.to - g.from; d > t.Bound {
			c.fail(g.from+t.Bound, nil, "no successful acks=-1 reply for %v (bound %v) from %v to %v, inside a healthy-majority window from %v to %v (majority at its start: %v)",
				d, t.Bound, g.from, g.to, g.window.From, g.window.To, g.window.Nodes)
		}
	}
}

// validateAvail checks the truth's structure.
func (t *AvailTruth) validate(nodes map[NodeID]bool, inRun func(time.Duration) bool) error {
	if t.Bound <= 0 || t.Bound > maxTime || !inRun(t.Until) {
		return malformed("avail: bound %v until %v", t.Bound, t.Until)
	}
	prev := time.Duration(0)
	for i, w := range t.Windows {
		if w.From < prev || w.To <= w.From || w.To > t.Until {
			return malformed("avail: window %d [%v, %v) out of order or outside [0, %v)", i, w.From, w.To, t.Until)
		}
		prev = w.To
		for _, n := range w.Nodes {
			if !nodes[n] {
				return malformed("avail: window %d names unknown node %d", i, n)
			}
		}
	}
	return nil
}

// String renders the summary on one line.
func (s AvailSummary) String() string {
	if !s.Judged {
		return "A1 not applicable (no healthy-majority window with acks=-1 load)"
	}
	verdict := "held"
	if !s.Held {
		verdict = "VIOLATED"
	}
	return fmt.Sprintf("longest unavailability %v at %v (bound %v, A1 %s); healthy majority %v, unserved %v (%.2f%% of the safety phase)",
		s.Longest.Round(time.Millisecond), s.LongestAt.Round(time.Millisecond), s.Bound.Round(time.Millisecond), verdict,
		s.Healthy.Round(time.Millisecond), s.Unserved.Round(time.Millisecond), 100*s.UnservedShare)
}
