package scenarios

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"walraft/core/env"
	"walraft/core/node"
	"walraft/sim"
)

// The harness runs one simulated cluster: the nodes on a sim.World,
// simulated producers and consumers, the fault schedule, then the liveness
// phase, recording a History the checkers judge.
//
// Clients are not processes: they never crash, and they reach the nodes
// through World.Post with their own latency (a request to a crashed node is
// lost; the client times out). Every draw a client makes comes from the
// "workload" stream, so a change in the nodes' code never shifts the
// workload of a seed.

const (
	observeEvery   = 5 * time.Millisecond
	livenessCheck  = 50 * time.Millisecond
	failedRestart  = 50 * time.Millisecond
	notLeaderPause = 10 * time.Millisecond
	// diskStallTimeout is the nodes' node.Config.DiskStallTimeout.
	diskStallTimeout = 500 * time.Millisecond
)

type harness struct {
	o       Options
	rc      RunConfig
	variant Variant
	sched   Schedule

	w     *sim.World
	s     *sim.Scheduler
	rng   *sim.Rand // workload
	nodes []*node.Node
	ids   []uint64

	rec     *recorder
	probes  map[string]int
	inLive  bool
	stopped bool // producers stop issuing new requests
	nextPID uint64
	flight  int // client requests in flight

	producers []*producer
	calm      calmState     // the liveness phase's calm workload
	liveAt    time.Duration // when L1 held, or -1
	probeOK   bool
	probeBusy bool
	extra     []Violation
	restarts  map[uint64]bool // node restarts the harness has scheduled
	pending   map[uint64]map[OpID]func(node.ProduceResponse, evidence)
	// held is, per node, the node-side record (Op.Served) of every
	// produce the node took and has not answered yet: a pause or crash of
	// the node marks them interrupted.
	held     map[uint64]map[OpID]*Served
	finished bool

	// Aimed and triggered faults (targets.go, triggers.go).
	armed     []*armed // triggers waiting for their event
	unfired   []Fault  // faults that never took effect (Result.Unfired)
	lastVoter uint64   // the node that sent the latest vote grant
	// leaders are the nodes that became leader, with their terms, in the
	// order they did (TargetPreviousLeader).
	leaders []leaderTerm
	// lastHit is the node the latest aimed one-node fault hit
	// (TargetLastHit).
	lastHit uint64
	// hungSince is, per node, when it reported its disk hung (trace
	// disk.hung A=1) and has not reported it back since: A2.
	hungSince map[uint64]time.Duration
	rot       rotation       // the liveness phase's leadership rotation
	boots     map[uint64]int // node.start events per node
	trng      *sim.Rand      // the "targets" stream, drawn lazily
	// diskEvents are the kinds of each node's disk events in the safety
	// phase (index id-1), when RunConfig.RecordDiskEvents (crashpoint.go).
	diskEvents [][]sim.DiskEvent
	// corrupted: nodes whose synced data a FaultCorrupt damaged; dead: of
	// those, the ones that refused to open (down by design). See corrupt.go.
	corrupted map[uint64]*corruptMark
	// hidden marks the nodes whose medium was corrupted and whose page
	// cache, kept across process kills, still hides it: a drawn crash of
	// such a node stays a power loss (see stop).
	hidden map[uint64]bool
	dead   map[uint64]bool
	// killed: nodes whose last death was a process kill (sim.World.Kill),
	// so their next boot reads the page cache, not only the disk; krng is
	// the "kills" stream that turns crashes into kills (Options.KillProb),
	// drawn lazily.
	killed map[uint64]bool
	krng   *sim.Rand
	oracle *oracle       // ground truth from the disks (oracle.go)
	avail  *availTracker // A1's ground truth (avail.go)
}

func newHarness(o Options, rc RunConfig, v Variant, sched Schedule) (*harness, error) {
	wc := sim.WorldConfig{
		Net:            sim.LinkConfig{Latency: o.NetLatency, Jitter: o.NetJitter},
		ClockSkewPPM:   20_000,
		ClockOffsetMax: time.Hour,
		Trace:          sim.TraceConfig{Record: rc.RecordTrace, Ring: rc.TraceTail},
	}
	w, err := sim.NewWorld(o.Seed, wc)
	if err != nil {
		return nil, err
	}
	h := &harness{
		o: o, rc: rc, variant: v, sched: sched, w: w, s: w.Sched(),
		rng:       w.Streams().Stream("workload"),
		nodes:     make([]*node.Node, o.Nodes),
		probes:    map[string]int{},
		liveAt:    -1,
		restarts:  map[uint64]bool{},
		pending:   map[uint64]map[OpID]func(node.ProduceResponse, evidence){},
		held:      map[uint64]map[OpID]*Served{},
		hungSince: map[uint64]time.Duration{},
		boots:     map[uint64]int{},
	}
	h.corrupted, h.dead, h.killed = map[uint64]*corruptMark{}, map[uint64]bool{}, map[uint64]bool{}
	h.rec = newRecorder(h)
	w.Trace().SetListener(h.onTrace)
	if rc.OnTrace != nil {
		w.Trace().SetListener(func(e sim.TraceEvent) { h.onTrace(e); rc.OnTrace(e) })
	}
	w.Net().SetTap(rc.NetTap)
	for i := 1; i <= o.Nodes; i++ {
		id := uint64(i)
		h.ids = append(h.ids, id)
		if err := w.AddNode(id, h.boot, o.Disk); err != nil {
			w.Close()
			return nil, err
		}
	}
	h.oracle = newOracle(h)
	w.SetSendObserver(h.oracle.onSend)
	h.avail = newAvailTracker(h)
	h.s.SetStormGuard(stormWork, StormWindow)
	return h, nil
}

// The storm guard (InvLivelock): StormWork units of work (an event is
// one, a KiB sent over the network one) within less than StormWindow of
// virtual time stop a run. The heaviest workloads do about 100,000 units
// per simulated second, so the guard is 20 times that.
const (
	StormWork   = 2_000_000
	StormWindow = time.Second
)

// stormWork is the guard's budget a run gets: StormWork, lowered only by
// the test that shows a tripped guard ends the run as InvLivelock.
var stormWork uint64 = StormWork

func (h *harness) close() { h.w.Close() }

// nodeConfig is the configuration every node of the run gets.
func (h *harness) nodeConfig(id uint64) node.Config { return nodeConfigFor(h.o, id, h.ids) }

// nodeConfigFor is node id's configuration in a run of o with nodes ids.
func nodeConfigFor(o Options, id uint64, ids []uint64) node.Config {
	c := node.Config{
		ID:          id,
		Peers:       append([]uint64(nil), ids...),
		Topics:      o.Topics,
		AcksTimeout: o.AcksTimeout,
		Path:        o.Path,
		// A simulated fsync takes at most a few milliseconds when the disk
		// is well, so half a second outstanding means it hangs.
		DiskStallTimeout: diskStallTimeout,
	}
	o.Knobs.apply(&c)
	return c
}

func (h *harness) boot(id env.NodeID, e env.Env) (sim.Receiver, error) {
	e.FS = &traceFS{FS: e.FS, tr: e.Tracer}
	if h.killed[id] && h.w.Disk(id).Unsynced() {
		h.probe("killed-read-unsynced")
	}
	n, err := node.NewWithBugs(h.nodeConfig(id), e, h.variant.bugs)
	if h.crashedInBoot(id) {
		return nil, errCrashedInBoot
	}
	if err != nil && h.refusedCorrupt(id, err) {
		return nil, err
	}
	if err != nil && (errors.Is(err, env.ErrIO) || errors.Is(err, env.ErrNoSpace)) {
		// An injected I/O error (or a full disk) during recovery: the
		// process exits and its supervisor starts it again, as after a
		// failed fsync.
		h.probe("boot-io-error")
		h.s.After(failedRestart, func() { h.restart(id) })
		return nil, err
	}
	if err != nil {
		// A node that cannot recover after in-budget faults is a bug (its
		// acknowledged data is unreachable); the checkers see it as a
		// liveness failure, and the detail says why.
		h.harnessViolation("L1", fmt.Sprintf("node %d failed to recover at %v: %v", id, h.s.Now(), err))
		return nil, err
	}
	h.nodes[id-1] = n
	if n.Status().Ready {
		h.checkBoot(id, n) // else at its node.start (onTrace)
	}
	h.oracle.booted(id, n)
	h.rec.observe(id, n)
	h.afterBoot(id)
	h.avail.sample()
	return n, nil
}

// node returns the running node id, or nil.
func (h *harness) node(id uint64) *node.Node {
	if p := h.w.Process(id); p == nil || p.State() == sim.StateDown {
		return nil
	}
	return h.nodes[id-1]
}

func (h *harness) harnessViolation(inv, detail string) {
	h.extra = append(h.extra, Violation{Invariant: inv, Detail: detail, Time: h.s.Now()})
}

func (h *harness) probe(name string) {
	if _, ok := LookupProbe(name); !ok {
		panic(fmt.Sprintf("scenarios: probe %q is not in the registry (probes.go)", name))
	}
	h.probes[name]++
}

// run executes the safety phase, then the liveness phase, then collects the
// final state.
func (h *harness) run() {
	h.armDiskEvents()
	if err := h.w.Start(); err != nil {
		// Boot errors are recorded by boot; anything else is a harness bug.
		if !errors.Is(err, sim.ErrNilReceiver) && len(h.extra) == 0 {
			panic(fmt.Sprintf("scenarios: start world: %v", err))
		}
	}
	for _, f := range h.sched {
		if f.Trigger != nil {
			h.s.At(f.At, func() { h.arm(f) })
		} else {
			h.s.At(f.At, func() { h.fire(f, 0) })
		}
	}
	h.s.After(0, h.observeTick)
	for i := 0; i < h.o.Producers; i++ {
		p := &producer{h: h, id: i + 1}
		h.producers = append(h.producers, p)
		h.s.After(h.rng.Duration(0, h.o.ThinkMax), p.next)
	}
	for i := 0; i < h.o.Consumers; i++ {
		c := &consumer{h: h, id: h.o.Producers + i + 1}
		h.s.After(h.rng.Duration(0, h.o.FetchEvery), c.next)
	}
	h.s.RunUntil(h.o.SafetyDuration)
	h.startLiveness()
	deadline := h.o.SafetyDuration + h.o.LivenessDuration
	h.s.RunWhile(func() bool { return h.liveAt < 0 }, deadline)
	// Let late replies and timeouts land so every request has an outcome.
	h.stopped = true
	h.s.RunWhile(func() bool { return h.flight > 0 }, h.s.Now()+h.o.RequestTimeout+time.Second)
	h.rec.finish()
	h.finished = true
}

// observeTick records node observations, and restarts nodes that stopped
// themselves after a storage failure (as a supervisor restarts a process
// that exited).
func (h *harness) observeTick() {
	h.avail.sample()
	for _, id := range h.ids {
		n := h.node(id)
		if n == nil {
			continue
		}
		h.rec.observe(id, n)
		if err := n.Healthy(); err != nil && !h.restarts[id] {
			h.probe("node-failstop")
			h.failedInCalm(id, err)
			h.restarts[id] = true
			h.s.After(failedRestart, func() {
				delete(h.restarts, id)
				if h.node(id) != nil {
					// The process exited: a kill, with the machine up,
					// as often as Options.KillProb says.
					h.stop(id, h.drawKill() && !h.hidden[id])
					h.restart(id)
				}
			})
		}
	}
	if !h.finished {
		h.s.After(observeEvery, h.observeTick)
	}
}

// crash crashes node id as a power loss (sim.World.Crash).
func (h *harness) crash(id uint64) { h.stop(id, false) }

// drawKill reports whether the next process death the harness causes is a
// kill with the machine up rather than a power loss: true with
// Options.KillProb, drawn from the "kills" stream (no draw when it is 0, so
// no other stream moves).
func (h *harness) drawKill() bool {
	if h.o.KillProb <= 0 {
		return false
	}
	if h.krng == nil {
		h.krng = h.w.Streams().Stream("kills")
	}
	return h.krng.Chance(h.o.KillProb)
}

// stop ends node id's process: a kill with the machine up (page cache kept)
// when kill is set, else a power loss.
func (h *harness) stop(id uint64, kill bool) {
	if h.node(id) == nil {
		return
	}
	if n := h.nodes[id-1]; n != nil && n.Status().Role == node.RoleLeader {
		for _, ps := range n.Partitions() {
			if ps.DurableEnd > ps.Committed {
				h.probe("leader-crash-with-unreplicated-batch")
				break
			}
		}
	}
	h.interrupt(id, true)
	stop := h.w.Crash
	if kill {
		stop = h.w.Kill
		h.probe("process-killed")
	} else {
		delete(h.hidden, id) // a power loss: the next boot reads the medium
	}
	if err := stop(id); err != nil {
		panic(fmt.Sprintf("scenarios: stop %d (kill %v): %v", id, kill, err))
	}
	h.killed[id] = kill
	h.nodes[id-1] = nil
	h.rec.down(id)
	h.resetConnections(id)
	h.avail.sample()
}

func (h *harness) restart(id uint64) {
	if p := h.w.Process(id); p.State() != sim.StateDown || h.dead[id] {
		return
	}
	_ = h.w.Restart(id) // a boot error is recorded by boot
}

// apply performs one fault of the schedule.
func (h *harness) apply(f Fault) {
	if h.inLive {
		return
	}
	defer h.avail.sample()
	net := h.w.Net()
	switch f.Kind {
	case FaultCrash, FaultTornCrash:
		if h.node(f.Node) == nil {
			return
		}
		d := h.w.Disk(f.Node)
		cfg := d.Config()
		torn := cfg
		if f.Kind == FaultTornCrash {
			torn.TornKeepProb = 0.5
		} else {
			torn.TornKeepProb = 0
		}
		d.SetConfig(torn)
		h.stop(f.Node, f.Kind == FaultCrash && h.drawKill() && !h.hidden[f.Node])
		d.SetConfig(cfg)
		h.probe("crash")
		h.s.After(f.Dur, func() { h.restart(f.Node) })
	case FaultKill:
		if h.node(f.Node) == nil {
			return
		}
		h.stop(f.Node, true)
		h.s.After(f.Dur, func() { h.restart(f.Node) })
	case FaultCrashAll:
		for _, id := range h.ids {
			h.crash(id)
		}
		h.probe("crash-all")
		for _, id := range h.ids {
			id := id
			h.s.After(f.Dur, func() { h.restart(id) })
		}
	case FaultPause:
		if h.w.Process(f.Node).State() != sim.StateUp {
			return
		}
		h.interrupt(f.Node, false)
		_ = h.w.Pause(f.Node)
		h.probe("pause")
		h.s.After(f.Dur, func() {
			if h.w.Process(f.Node).State() == sim.StatePaused {
				_ = h.w.Resume(f.Node)
				h.avail.sample()
			}
		})
	case FaultPartition:
		if err := net.Partition(f.Groups...); err != nil {
			panic(fmt.Sprintf("scenarios: %s: %v", f, err))
		}
		h.netFault()
	case FaultIsolate:
		_ = net.Isolate(f.Node)
		h.netFault()
	case FaultOneWay:
		_ = net.Cut(f.Node, f.Peer)
		h.netFault()
	case FaultBridge:
		_ = net.Bridge(f.Groups[0], f.Groups[1], f.Node)
		h.netFault()
	case FaultHeal:
		net.Heal()
	case FaultStall:
		h.w.Disk(f.Node).StallSyncsUntil(h.s.Now() + f.Dur)
		h.probe("fsync-stall")
	case FaultSyncEIO:
		if f.Log != "" {
			h.w.Disk(f.Node).FailNextSyncsUnder(h.logPrefix(f.Node, f.Log), f.Log == StallDir, f.Count)
		} else {
			h.w.Disk(f.Node).FailNextSyncs(f.Count)
		}
		h.probe("fsync-eio")
	case FaultWriteEIO:
		if f.Log != "" {
			h.w.Disk(f.Node).FailNextWritesUnder(h.logPrefix(f.Node, f.Log), f.Count)
		} else {
			h.w.Disk(f.Node).FailNextWrites(f.Count)
		}
		h.probe("write-eio")
	case FaultDrop, FaultDup:
		def := net.Default()
		c := def
		if f.Kind == FaultDrop {
			c.DropProb = f.Prob
		} else {
			c.DupProb = f.Prob
		}
		_ = net.SetDefault(c)
		h.s.After(f.Dur, func() {
			if !h.inLive {
				_ = net.SetDefault(def)
			}
		})
	case FaultSkew:
		_ = h.w.SetClockRate(f.Node, int64(f.Rate*float64(sim.RateOne)))
	case FaultNoSpace, FaultReadEIO, FaultHang, FaultClockStep, FaultLink, FaultStallLog:
		h.applySimFault(f)
	case FaultTransferLeader:
		h.transferLeader(f)
	case FaultCorrupt:
		h.corrupt(f)
	case FaultCrashAtDiskEvent, FaultTornCrashAtDiskEvent:
		// Armed before the run started (armDiskEvents); it fires from
		// the node's disk, not at a time.
	}
}

// netFault counts a partition that cut a node with an fsync in flight.
func (h *harness) netFault() {
	h.probe("partition")
	for _, id := range h.ids {
		if h.w.Disk(id).PendingSyncs() > 0 {
			h.probe("partition-during-fsync")
			return
		}
	}
}

// startLiveness heals everything: network, paused and down nodes, slow or
// failing disks, skewed clocks. From here the cluster must converge (L1).
func (h *harness) startLiveness() {
	h.inLive = true
	for _, f := range h.sched {
		if f.At > h.s.Now() { // RunUntil ran every event up to now
			h.unfired = append(h.unfired, f) // due in the liveness phase
		}
	}
	for _, a := range h.armed {
		h.unfired = append(h.unfired, a.f) // its trigger never fired
	}
	h.stopped = true
	net := h.w.Net()
	net.Heal()
	_ = net.SetDefault(sim.LinkConfig{Latency: h.o.NetLatency, Jitter: h.o.NetJitter})
	for _, id := range h.ids {
		d := h.w.Disk(id)
		d.SetConfig(sim.DefaultDiskConfig())
		d.ClearFaults()
		_ = h.w.SetClockRate(id, sim.RateOne)
		switch h.w.Process(id).State() {
		case sim.StatePaused:
			_ = h.w.Resume(id)
		case sim.StateDown:
			h.restart(id)
		}
	}
	h.healSimFaults()
	h.rec.livenessStart(h.s.Now())
	h.s.After(0, h.checkLive)
}

// checkLive evaluates L1 every livenessCheck until it holds, keeping the
// last evaluation for the liveness report.
func (h *harness) checkLive() {
	if h.liveAt >= 0 {
		return
	}
	ls := h.evalLive()
	h.rec.lastLive = ls
	settled := ls.allUp && ls.oneLeader && ls.hwms && ls.waiters && ls.drained
	// The probe goes out only after the calm workload's requests ended by
	// themselves (calmReady): a probe must never be what wakes the system.
	if settled && h.calmReady() && !ls.probe && !h.probeBusy {
		h.sendProbe(ls.leader)
	}
	if settled && h.calm == calmDone && ls.probe && h.rotateLeaders(ls) {
		h.liveAt = h.s.Now()
		h.rec.live(h.s.Now(), ls.leader)
		return
	}
	if h.rot.started && len(h.rot.left) > 0 {
		h.rec.rotation = fmt.Sprintf("after healing, node %d never took over leadership and served an acks=-1 write (leadership handed to each node in turn)", h.rot.left[0])
	}
	h.s.After(livenessCheck, h.checkLive)
}

// rotation is the last step of the liveness phase: leadership handed to
// every other live node in turn (LivenessReport.Rotation).
type rotation struct {
	started bool
	left    []uint64      // nodes still to lead and serve, the next first
	asked   time.Duration // when the current leader was last asked to hand over
	served  uint64        // the node whose rotation write succeeded
	busy    bool          // a rotation write is in flight
	// from is the term in which the leader accepted the transfer to the
	// current target (0: not yet): the target must lead in the next term.
	from uint64
}

// rotateLeaders runs the rotation one step per liveness check, on a settled
// cluster; it reports whether every node has led and served.
func (h *harness) rotateLeaders(ls liveState) bool {
	r := &h.rot
	if !r.started {
		r.started = true
		for _, id := range h.liveIDs() {
			if id != ls.leader {
				r.left = append(r.left, id)
			}
		}
		r.asked = -1
	}
	for len(r.left) > 0 && r.served == r.left[0] {
		r.left, r.asked, r.from = r.left[1:], -1, 0
	}
	if len(r.left) == 0 {
		return true
	}
	target := r.left[0]
	if ls.leader == target {
		// On a healed, converged cluster etcd raft's transfer hands over
		// in one election: the leader waits for the target to catch up,
		// then the target campaigns at once in the next term, and its
		// vote request carries the transfer mark that lets voters still
		// in the old leader's lease grant it. Any other term means an
		// extra election got in the way (a lost mark, a disrupted vote).
		if term := h.node(target).Status().Term; r.from > 0 && term != r.from+1 {
			h.harnessViolation(InvL1, fmt.Sprintf("leadership transfer to n%d, accepted in term %d on a healed cluster, completed only in term %d (not in one election)",
				target, r.from, term))
		}
		r.from = 0
		if !r.busy {
			r.busy = true
			h.writeOne(target, false, func(ok bool) {
				r.busy = false
				if ok {
					r.served = target
				}
			})
		}
		return false
	}
	// Ask again if a transfer got lost (etcd raft abandons one after an
	// election timeout).
	if r.asked < 0 || h.s.Now()-r.asked >= rotationRetry {
		r.asked = h.s.Now()
		if ln := h.node(ls.leader); ln.TransferLeadership(target) && r.from == 0 {
			r.from = ln.Status().Term
		}
	}
	return false
}

// rotationRetry is how long the rotation waits for a transfer before asking
// the leader again.
const rotationRetry = 500 * time.Millisecond

// evalLive evaluates the L1 conditions now.
func (h *harness) evalLive() liveState {
	ls := liveState{allUp: true, probe: h.probeOK}
	var leaders []uint64
	ids := h.liveIDs() // a node that refused corrupt data is down by design
	for _, id := range ids {
		n := h.node(id)
		if n == nil || n.Failed() != nil {
			ls.allUp = false
			ls.detail = fmt.Sprintf("node %d is down", id)
			if n == nil && h.w.Process(id).State() == sim.StateDown && !h.restarts[id] {
				h.restart(id)
			}
			continue
		}
		if r := n.Status().Role; r == node.RoleLeader || r == node.RoleStandalone {
			leaders = append(leaders, id)
		}
	}
	if !ls.allUp {
		return ls
	}
	if len(leaders) != 1 {
		ls.detail = fmt.Sprintf("leaders %v", leaders)
		return ls
	}
	ls.leader = leaders[0]
	ln := h.node(ls.leader)
	ls.oneLeader = ln.Status().Gate
	for _, id := range ids {
		if st := h.node(id).Status(); h.o.Nodes > 1 && st.Lead != ls.leader {
			ls.oneLeader = false
			ls.detail = fmt.Sprintf("node %d follows %d, leader is %d", id, st.Lead, ls.leader)
		}
	}
	ls.hwms = true
	for _, id := range ids {
		if h.node(id).Status().Recovering {
			ls.hwms = false
			ls.detail = fmt.Sprintf("node %d is still recovering", id)
		}
	}
	for _, lp := range ln.Partitions() {
		for _, id := range ids {
			ps, _ := h.node(id).PartitionStatus(lp.Topic, lp.Partition)
			if ps.HWM != lp.Committed {
				ls.hwms = false
				ls.detail = fmt.Sprintf("node %d %s/%d HWM %d, committed end %d", id, lp.Topic, lp.Partition, ps.HWM, lp.Committed)
			}
		}
	}
	ls.waiters = h.flight == 0
	if !ls.waiters {
		ls.detail = fmt.Sprintf("%d client requests unanswered", h.flight)
	}
	ls.drained, ls.stranded = drained(ls.leader, ln)
	if ls.waiters && ls.drained {
		ls.drained, ls.stranded = idle(ids, h.node)
	}
	if ls.waiters && !ls.drained {
		ls.detail = ls.stranded
	}
	if ls.allUp && ls.oneLeader && ls.hwms && ls.waiters && ls.drained && !ls.probe {
		ls.detail = "probe acks=-1 write has not succeeded"
	}
	return ls
}

// sendProbe writes one acks=-1 record to the leader: L1 requires it to
// succeed once everything healed.
func (h *harness) sendProbe(leader uint64) {
	h.probeBusy = true
	h.writeOne(leader, true, func(ok bool) {
		h.probeBusy = false
		if ok {
			h.probeOK = true
		}
	})
}

// writeOne sends one acks=-1 record of the first topic's partition 0 to
// node to, as the liveness phase's own client (probe: the L1 probe op),
// and calls done with whether it succeeded.
func (h *harness) writeOne(to uint64, probe bool, done func(ok bool)) {
	t := h.o.Topics[0]
	op := h.rec.invoke(0, to, t.Name, 0, node.AcksAll, h.payloads(1), probe)
	h.flight++
	h.post(to, op, func(resp node.ProduceResponse) { done(resp.Err == nil) })
}

// payloads makes n records, each starting with a fresh payload id and
// padded to a drawn size. Payload ids start at 1.
func (h *harness) payloads(n int) [][]byte {
	recs := make([][]byte, n)
	for i := range recs {
		h.nextPID++
		size := h.o.MsgMin
		if h.o.MsgMax > h.o.MsgMin {
			size += h.rng.IntN(h.o.MsgMax - h.o.MsgMin + 1)
		}
		recs[i] = NewPayload(h.nextPID, size)
	}
	return recs
}

// payloadID reads a record's payload id (0 if it has none).
func payloadID(rec []byte) uint64 {
	id, _ := PayloadIDOf(rec)
	return id
}

// post delivers a produce request to node id after the client latency and
// the reply back to the client after the same latency. If the node crashes
// first, the client sees its connection reset (indeterminate); if no reply
// comes at all (a paused node), the client times out (indeterminate).
func (h *harness) post(id uint64, op *clientOp, done func(node.ProduceResponse)) {
	lat := h.o.ClientLatency
	finished := false
	finish := func(resp node.ProduceResponse, ev evidence) {
		if finished {
			return
		}
		finished = true
		delete(h.pending[id], op.id)
		h.flight--
		h.rec.complete(op, resp, ev)
		done(resp)
	}
	h.s.After(h.o.RequestTimeout, func() {
		finish(node.ProduceResponse{Err: errClientTimeout, Indeterminate: true}, evidence{})
	})
	err := h.w.Post(id, lat, func() {
		n := h.node(id)
		if n == nil {
			return
		}
		// The term the node is in when it accepts the write: an acks=1
		// write accepted in term t may be lost once a later term begins,
		// even if the node replies after it learned of that term.
		st := n.Status()
		acceptTerm := st.Term
		h.oracle.onProduce(id, n, st)
		served := h.serve(id, op.id)
		n.Produce(op.req, func(resp node.ProduceResponse) {
			h.answered(id, op.id, served)
			served.TimedOut = errors.Is(resp.Err, node.ErrTimeout)
			served.Definite = resp.Err != nil && !resp.Indeterminate
			ev := h.evidence(id, n, op, resp)
			ev.Term = acceptTerm
			h.s.After(lat, func() { finish(resp, ev) })
		})
	})
	if err != nil {
		// Connection refused: the request never reached a node.
		h.s.After(lat, func() { finish(node.ProduceResponse{Err: errUnreachable}, evidence{}) })
		return
	}
	if h.pending[id] == nil {
		h.pending[id] = map[OpID]func(node.ProduceResponse, evidence){}
	}
	h.pending[id][op.id] = finish
}

// serve records that node id took op (Op.Served) and returns the record.
func (h *harness) serve(id uint64, op OpID) *Served {
	sv := &Served{At: h.nodeClock(id)}
	h.rec.r.History().Ops[op-1].Served = sv
	if h.held[id] == nil {
		h.held[id] = map[OpID]*Served{}
	}
	h.held[id][op] = sv
	return sv
}

// answered records that node id answered op.
func (h *harness) answered(id uint64, op OpID, sv *Served) {
	if sv.Answered == 0 {
		sv.Answered = max(h.nodeClock(id), 1)
	}
	delete(h.held[id], op)
}

// interrupt marks every request node id holds unanswered as interrupted:
// its process is being paused or crashed, or its clock stepped. A crash
// also forgets them (their
// waiters died with the process); a paused node keeps them and may answer
// once resumed.
func (h *harness) interrupt(id uint64, crashed bool) {
	for _, sv := range h.held[id] { // order-free: sets a flag on each
		sv.Interrupted = true
	}
	if crashed {
		delete(h.held, id)
	}
}

// nodeClock reads node id's own clock (0 if the node is down).
func (h *harness) nodeClock(id uint64) time.Duration {
	e, ok := h.w.Env(id)
	if !ok {
		return 0
	}
	return e.Clock.Now()
}

// resetConnections answers every request in flight to node id as a client
// whose connection was reset would see it: indeterminate.
func (h *harness) resetConnections(id uint64) {
	p := h.pending[id]
	ids := make([]OpID, 0, len(p))
	for op := range p {
		ids = append(ids, op)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, op := range ids {
		finish := p[op]
		h.s.After(h.o.ClientLatency, func() {
			finish(node.ProduceResponse{Err: errConnReset, Indeterminate: true}, evidence{})
		})
	}
}

var (
	errConnReset     = errors.New("client: connection reset (node crashed)")
	errClientTimeout = errors.New("client: request timed out")
	errUnreachable   = errors.New("client: node unreachable")
)

// evidence is what the harness reads at reply time, so the checkers need
// not trust the node's word: DurableEnd from the node's durable disk image
// when Truth is set (the oracle, see History's Evidence), next to what the
// node reported.
type evidence struct {
	At                 time.Duration
	DurableEnd         int64
	HWM                int64
	Term               uint64
	ReportedDurableEnd int64
	Truth              bool
}

func (h *harness) evidence(id uint64, n *node.Node, op *clientOp, resp node.ProduceResponse) evidence {
	ps, _ := n.PartitionStatus(op.req.Topic, op.req.Partition)
	ev := evidence{At: h.s.Now(), DurableEnd: ps.DurableEnd, HWM: ps.HWM}
	h.oracle.replyEvidence(id, op, resp, &ev)
	return ev
}

// onTrace counts probes from node trace events.
func (h *harness) onTrace(e sim.TraceEvent) {
	h.watch(e)
	if len(h.oracle.deposed) > 0 {
		h.oracle.checkDeposed()
	}
	switch e.Kind {
	case "apply":
		h.oracle.onApply(uint64(e.Node), uint64(e.A), uint64(e.B))
		if e.D == 1 {
			h.probe("stale-batch-rejected")
		}
	case "apply.legacy":
		h.oracle.onApply(uint64(e.Node), uint64(e.A), uint64(e.B))
		h.probe("legacy-entry-applied")
	case "wal.truncate":
		h.probe("uncommitted-suffix-truncated")
	case "raft.info":
		if strings.Contains(e.Text, "is starting a new election") {
			h.oracle.onCampaign(uint64(e.Node))
		}
		h.oracle.onRaftRole(uint64(e.Node), e.Text)
	case "leader.transfer":
		h.oracle.onStepAside(uint64(e.Node), uint64(e.A))
	case "disk.hung":
		if e.A == 1 {
			h.hungSince[uint64(e.Node)] = h.s.Now()
		} else {
			delete(h.hungSince, uint64(e.Node))
		}
	case "node.start":
		delete(h.hungSince, uint64(e.Node)) // a new process has no hung mark
		h.oracle.onBoot(uint64(e.Node))
		if n := h.node(uint64(e.Node)); n != nil {
			// Started after New returned (its logs' recovery syncs).
			h.checkBoot(uint64(e.Node), n)
		}
		h.oracle.leading[uint64(e.Node)] = false
	case "node.fail":
		h.probe("node-fail")
	case "gate.open":
		h.probe("leader-gate-open")
		h.oracle.onGateOpen(uint64(e.Node), uint64(e.A), uint64(e.B))
	case "node.recovering":
		h.probe("restart-recovering")
	case "raft.timeoutnow.ignored":
		h.probe("timeoutnow-ignored-hung")
	case "node.recover.cut":
		h.probe("recovery-cut-by-overwrite")
	case "pipe.apply.early":
		h.probe("pipelined-applied-before-wal-fsync")
	case "pipe.apply.rebuild":
		h.probe("pipelined-wal-suffix-rebuilt")
	case "wal.mixed":
		h.probe("pipelined-mixed-wal-batch")
	case "pipe.reapply.rebuild":
		h.probe("pipelined-applied-wal-rebuilt")
	case "raft.hold":
		h.probe("pipelined-leader-held-for-term-sync")
	case "pipe.fail":
		h.probe("pipelined-fsync-error-after-proposal")
	case "raft.transfer.abort":
		h.probe("transfer-aborted-for-batch")
	case "raft.stale.resp":
		h.probe("stale-append-ack-dropped")
	default:
		h.onSimTrace(e)
	}
}

// producer is one closed-loop client: one request at a time, think time
// between requests, leader discovery through NotLeader hints.
type producer struct {
	h      *harness
	id     int
	leader uint64
	// retired: replaced by the calm workload's producer of the same id;
	// whatever it still had scheduled does nothing.
	retired bool

	// backoff is the pause before the next attempt after a refusal without
	// a usable hint: notLeaderPause, doubling up to notLeaderBackoffMax
	// while no node takes the writes (an election in progress), reset by
	// any answer that names a leader or succeeds.
	backoff time.Duration
}

// redirect points the producer at the leader a node named (hint), or, when
// the hint is empty or names the node that just refused (from), at another
// node drawn at random: asking the same node again would get the same
// answer. It returns the pause before the next attempt.
func (p *producer) redirect(hint, from uint64) time.Duration {
	h := p.h
	if hint != 0 && hint != from {
		p.leader = hint
		p.backoff = 0
		return notLeaderPause
	}
	p.leader = h.ids[h.rng.IntN(len(h.ids))]
	if p.leader == from && len(h.ids) > 1 {
		p.leader = h.ids[(slices.Index(h.ids, from)+1)%len(h.ids)]
	}
	p.backoff = min(max(2*p.backoff, notLeaderPause), notLeaderBackoffMax)
	return p.backoff
}

func (p *producer) next() {
	h := p.h
	if h.stopped || p.retired {
		return
	}
	t := h.o.Topics[h.rng.IntN(len(h.o.Topics))]
	part := int32(h.rng.IntN(int(t.Partitions)))
	acks := h.drawAcks()
	recs := h.payloads(1 + h.rng.IntN(h.o.MaxBatchRecs))
	p.send(t.Name, part, acks, recs, 0)
}

func (h *harness) drawAcks() node.Acks {
	w := h.o.AcksWeights
	x := h.rng.IntN(w[0] + w[1] + w[2])
	switch {
	case x < w[0]:
		return node.AcksNone
	case x < w[0]+w[1]:
		return node.AcksLeader
	}
	return node.AcksAll
}

func (p *producer) target() uint64 {
	if p.leader == 0 {
		p.leader = p.h.ids[p.h.rng.IntN(len(p.h.ids))]
	}
	return p.leader
}

func (p *producer) send(topic string, part int32, acks node.Acks, recs [][]byte, retryOf int) {
	h := p.h
	id := p.target()
	op := h.rec.invoke(p.id, id, topic, part, acks, recs, false)
	h.rec.retry(op, retryOf)
	h.flight++
	h.post(id, op, func(resp node.ProduceResponse) {
		think := h.rng.Duration(h.o.ThinkMin, h.o.ThinkMax)
		switch {
		case resp.Err == nil:
			p.backoff = 0
			h.s.After(think, p.next)
		case errors.Is(resp.Err, node.ErrNotLeader) || errors.Is(resp.Err, node.ErrNotReady) || errors.Is(resp.Err, errUnreachable):
			// This attempt definitely did not happen: send it again, to the
			// leader the node named or to another node. A resend of a retry
			// stays a retry of the same indeterminate attempt (which may
			// still land), so the checkers allow both copies. A node that
			// has not started (its recovery sync still running) knows no
			// leader: a client that kept asking it would stay unserved for
			// as long as the sync takes (an A1 false positive, crashes
			// seeds 102 and 158, once a stalled log could hold a boot for
			// seconds), where a real client refreshes its metadata.
			pause := p.redirect(resp.LeaderHint, id)
			h.s.After(pause, func() {
				if !h.stopped && !p.retired {
					p.send(topic, part, acks, recs, retryOf)
				}
			})
		case resp.Indeterminate:
			// A timeout, a reset connection or a deposed leader: the next
			// request goes to the leader named, or to another node.
			think += p.redirect(resp.LeaderHint, id) - notLeaderPause
			// An acks=0 client learns nothing and never retries.
			if h.rng.Chance(0.5) && acks != node.AcksNone {
				h.probe("indeterminate-retry")
				h.s.After(think, func() {
					if !h.stopped && !p.retired {
						p.send(topic, part, acks, recs, int(op.id))
					}
				})
				return
			}
			h.s.After(think, p.next)
		default:
			if errors.Is(resp.Err, node.ErrNodeFailed) || errors.Is(resp.Err, node.ErrStorage) {
				// The node stopped after a storage failure: ask another.
				think += p.redirect(resp.LeaderHint, id) - notLeaderPause
			}
			h.s.After(think+notLeaderPause, p.next)
		}
	})
}

// consumer fetches from random nodes and partitions at random offsets below
// what it has seen as the HWM.
type consumer struct {
	h    *harness
	id   int
	hwm  map[string]int64
	past *sim.Rand // draws the fetches aimed past the HWM
}

func (c *consumer) next() {
	h := c.h
	if h.stopped {
		return
	}
	defer h.s.After(h.o.FetchEvery, c.next)
	id := h.ids[h.rng.IntN(len(h.ids))]
	t := h.o.Topics[h.rng.IntN(len(h.o.Topics))]
	part := int32(h.rng.IntN(int(t.Partitions)))
	if c.hwm == nil {
		c.hwm = map[string]int64{}
	}
	key := fmt.Sprintf("%s/%d", t.Name, part)
	from := int64(0)
	if hw := c.hwm[key]; hw > 0 {
		from = h.rng.Int64N(hw + 1)
	}
	// One fetch in eight aims just past the highest HWM seen, where a
	// leader's unacknowledged suffix lies: it must be refused as out of
	// range (S4's fetch contract), not answered from the log. Its own
	// stream, so the other draws stay where they were.
	if c.past == nil {
		c.past = h.w.Streams().Stream(fmt.Sprintf("consumer/%d/past-hwm", c.id))
	}
	if c.past.IntN(8) == 0 {
		from = c.hwm[key] + 1 + c.past.Int64N(4)
	}
	lat := h.o.ClientLatency
	invoked := h.s.Now()
	_ = h.w.Post(id, lat, func() {
		n := h.node(id)
		if n == nil {
			return
		}
		resp := n.Fetch(node.FetchRequest{Topic: t.Name, Partition: part, Offset: from, MaxBytes: 64 << 10})
		served := h.s.Now()
		h.s.After(lat, func() {
			if resp.Err == nil && resp.HWM > c.hwm[key] {
				c.hwm[key] = resp.HWM
			}
			h.rec.fetch(c.id, id, t.Name, part, from, invoked, served, resp)
		})
	})
}

// sortedIDs returns map keys sorted (deterministic iteration).
func sortedIDs[V any](m map[uint64]V) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
