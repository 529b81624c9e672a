package scenarios

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"walraft/sim"
)

// Crash points (issue 12): a run re-run once per disk event of a node, with
// the node crashed right at that event.
//
// The disk numbers its events (sim.DiskEvent: write, truncate, sync issued,
// sync done, create, remove, syncdir issued, syncdir done) over the run. A
// dry run (RunConfig.RecordDiskEvents) records the kind of every event each
// node's disk had during the safety phase. The sweep then re-runs the run
// once per chosen event k with one more fault, FaultCrashAtDiskEvent (or its
// torn form) with Node and Count = k: the harness hooks the disk, and at
// event k crashes the node from inside the call that caused it, restarts it
// after the fault's Dur, heals at the end of the safety phase as every run
// does, and checks every invariant. Until event k the re-run is the dry run
// (the hook draws nothing and schedules nothing), so event k is the event the
// dry run saw. The fault is plain schedule data, so a failing point is a case
// file that `walraft replay` and `minimize` handle like any other.
//
// What a point enumerates follows etcd's and gosim's crash-state helpers: a
// crash between a write and its fsync (the write is lost, or with a torn
// crash partly kept), between the fsync's issue and its completion, right
// after the fsync completed but before the node heard of it (durable but
// never acknowledged), around file creation, removal and the directory
// sync that makes them durable, and inside recovery itself (a restart's own
// disk events are points too).

// DefaultCrashRestart is how long after a crash point the node restarts,
// as the harness restarts a node that stopped itself after a storage
// failure.
const DefaultCrashRestart = failedRestart

// tornCrashKeep is the share of unsynced blocks a torn crash keeps when the
// fault does not say (as FaultTornCrash).
const tornCrashKeep = 0.5

// isDiskEventCrash reports whether k is a crash-at-disk-event kind.
func isDiskEventCrash(k FaultKind) bool {
	return k == FaultCrashAtDiskEvent || k == FaultTornCrashAtDiskEvent || k == FaultKillAtDiskEvent
}

// validateDiskEventCrash checks the fields a crash-at-disk-event fault
// needs: a node of the cluster and an event number of at least 1.
func (f Fault) validateDiskEventCrash(n int) error {
	if !isDiskEventCrash(f.Kind) {
		return nil
	}
	if f.Node < 1 || f.Node > uint64(n) {
		return fmt.Errorf("fault %s: node %d not in 1..%d", f, f.Node, n)
	}
	if f.Count < 1 {
		return fmt.Errorf("fault %s: disk event number (count) %d, want at least 1", f, f.Count)
	}
	return nil
}

// armDiskEvents hooks the disks the run needs: the nodes a
// crash-at-disk-event fault names, and every node when the dry run records
// disk events. Called before the world starts, so boot's own events count.
func (h *harness) armDiskEvents() {
	byNode := map[uint64][]Fault{}
	for _, f := range h.sched {
		if isDiskEventCrash(f.Kind) {
			byNode[f.Node] = append(byNode[f.Node], f)
		}
	}
	if h.rc.RecordDiskEvents {
		h.diskEvents = make([][]sim.DiskEvent, len(h.ids))
	}
	for _, id := range h.ids {
		faults := byNode[id]
		if len(faults) == 0 && !h.rc.RecordDiskEvents {
			continue
		}
		d := h.w.Disk(id)
		d.SetEventHook(func(n uint64, k sim.DiskEvent) {
			if h.inLive {
				return
			}
			if h.diskEvents != nil {
				h.diskEvents[id-1] = append(h.diskEvents[id-1], k)
			}
			for _, f := range faults {
				if uint64(f.Count) == n && h.s.Now() >= f.At {
					h.crashAtDiskEvent(f, k)
					return
				}
			}
		})
	}
}

// crashAtDiskEvent crashes f.Node from inside its disk event k (see
// sim.DiskEventHook) and schedules its restart.
func (h *harness) crashAtDiskEvent(f Fault, k sim.DiskEvent) {
	id := f.Node
	p := h.w.Process(id)
	if p.State() == sim.StateDown {
		// Unreachable: a down process has no disk events (its pending
		// completions were cancelled when it went down).
		panic(fmt.Sprintf("scenarios: %s fired on a down node", f))
	}
	d := h.w.Disk(id)
	cfg := d.Config()
	torn := cfg
	torn.TornKeepProb = 0
	if f.Kind == FaultTornCrashAtDiskEvent {
		torn.TornKeepProb = f.Prob
		if torn.TornKeepProb == 0 {
			torn.TornKeepProb = tornCrashKeep
		}
	}
	d.SetConfig(torn)
	kill := f.Kind == FaultKillAtDiskEvent
	if h.nodes[id-1] != nil {
		h.stop(id, kill)
	} else {
		// Inside boot: the node object does not exist yet for the
		// harness, so there is nothing of it to forget.
		h.interrupt(id, true)
		stop := h.w.Crash
		if kill {
			stop = h.w.Kill
		}
		if err := stop(id); err != nil {
			panic(fmt.Sprintf("scenarios: %s: %v", f, err))
		}
		h.killed[id] = kill
		h.rec.down(id)
		h.resetConnections(id)
	}
	d.SetConfig(cfg)
	h.probe("crash-at-disk-event")
	if kill {
		h.probe("kill-at-disk-event")
	}
	h.probe("crash-at-" + k.String())
	h.s.After(f.Dur, func() { h.restart(id) })
}

// crashedInBoot reports whether node id was crashed by a crash point while
// it booted: boot must then leave it alone (it is down, and what the boot
// built belongs to the crashed incarnation).
func (h *harness) crashedInBoot(id uint64) bool {
	return h.w.Process(id).State() == sim.StateDown
}

// errCrashedInBoot is what boot returns for a node crashed inside its own
// boot; sim ignores it (the incarnation is already gone).
var errCrashedInBoot = errors.New("scenarios: crashed at a disk event during boot")

// CrashPoint is one point of a sweep: crash Node at its disk event Event
// (1-based), whose kind the dry run saw was Kind; torn or clean, or Kill:
// the process killed there with its machine up (FaultKillAtDiskEvent).
type CrashPoint struct {
	Node  uint64
	Event int
	Kind  sim.DiskEvent
	Torn  bool
	Kill  bool
}

// String renders the point as reports show it: "n2 #153 sync.done torn".
func (p CrashPoint) String() string {
	s := fmt.Sprintf("n%d #%d %s", p.Node, p.Event, p.Kind)
	if p.Torn {
		s += " torn"
	}
	if p.Kill {
		s += " kill"
	}
	return s
}

// Fault is the schedule entry that crashes at the point and restarts the
// node after restart.
func (p CrashPoint) Fault(restart time.Duration) Fault {
	f := Fault{At: 0, Kind: FaultCrashAtDiskEvent, Node: p.Node, Count: p.Event, Dur: restart}
	if p.Torn {
		f.Kind, f.Prob = FaultTornCrashAtDiskEvent, tornCrashKeep
	}
	if p.Kill {
		f.Kind = FaultKillAtDiskEvent
	}
	return f
}

// Schedule returns base with the point's fault added (base is not
// modified; the result stays in time order).
func (p CrashPoint) Schedule(base Schedule, restart time.Duration) Schedule {
	s := make(Schedule, 0, len(base)+1)
	s = append(s, p.Fault(restart))
	s = append(s, base...)
	s.Sort()
	return s
}

// SweepPlan chooses the points of a sweep.
type SweepPlan struct {
	// Nodes are the nodes to crash (ids); empty means every node.
	Nodes []uint64
	// Every keeps events 1, 1+Every, 1+2*Every, ... of each node (0 or 1:
	// every event).
	Every int
	// Torn adds a torn crash at each point besides the clean one.
	Torn bool
	// Kill adds a process kill with the machine up at each point.
	Kill bool
	// Kinds keeps only events of these kinds (empty: every kind); Every
	// then counts among the kept events of each node.
	Kinds []sim.DiskEvent
}

// Points lists the sweep's points from a dry run's disk events (index
// node-1), node by node in event order, the clean crash of a point before
// its torn one.
func (sp SweepPlan) Points(events [][]sim.DiskEvent) []CrashPoint {
	every := max(sp.Every, 1)
	var pts []CrashPoint
	for i, evs := range events {
		id := uint64(i + 1)
		if len(sp.Nodes) > 0 && !slices.Contains(sp.Nodes, id) {
			continue
		}
		kept := 0
		for k, kind := range evs {
			if len(sp.Kinds) > 0 && !slices.Contains(sp.Kinds, kind) {
				continue
			}
			kept++
			if (kept-1)%every != 0 {
				continue
			}
			pts = append(pts, CrashPoint{Node: id, Event: k + 1, Kind: kind})
			if sp.Torn {
				pts = append(pts, CrashPoint{Node: id, Event: k + 1, Kind: kind, Torn: true})
			}
			if sp.Kill {
				pts = append(pts, CrashPoint{Node: id, Event: k + 1, Kind: kind, Kill: true})
			}
		}
	}
	return pts
}

// CountDiskEvents returns how many disk events of each kind a dry run's
// nodes had, summed over the nodes (and kinds) of the plan.
func (sp SweepPlan) CountDiskEvents(events [][]sim.DiskEvent) map[sim.DiskEvent]int {
	c := map[sim.DiskEvent]int{}
	sp.eachSwept(events, func(_ int, k sim.DiskEvent) { c[k]++ })
	return c
}

// KeptPerNode counts, per node (index id-1), the disk events the plan
// sweeps before Every thins them (0 for a node it does not sweep).
func (sp SweepPlan) KeptPerNode(events [][]sim.DiskEvent) []int {
	out := make([]int, len(events))
	sp.eachSwept(events, func(i int, _ sim.DiskEvent) { out[i]++ })
	return out
}

// eachSwept calls f with the node index and kind of every disk event of
// the plan's nodes and kinds, in order.
func (sp SweepPlan) eachSwept(events [][]sim.DiskEvent, f func(i int, k sim.DiskEvent)) {
	for i, evs := range events {
		if len(sp.Nodes) > 0 && !slices.Contains(sp.Nodes, uint64(i+1)) {
			continue
		}
		for _, k := range evs {
			if len(sp.Kinds) == 0 || slices.Contains(sp.Kinds, k) {
				f(i, k)
			}
		}
	}
}

// SweepResult is one point's outcome in an in-process sweep.
type SweepResult struct {
	Point  CrashPoint
	Result *Result
}

// Sweep runs a crash-point sweep in this process, one point after another:
// the dry run of o with rc (rc.Schedule and rc.UseSchedule as for Run),
// then every point of plan with the node restarted after restart. It
// returns the dry run, the points and each point's result (failing or
// not). The CLI runs the points in worker processes instead (walraft
// crashpoints); tests use this.
func Sweep(o Options, rc RunConfig, plan SweepPlan, restart time.Duration) (dry *Result, out []SweepResult, err error) {
	drc := rc
	drc.RecordDiskEvents = true
	dry, err = Run(o, drc)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range plan.Points(dry.DiskEvents) {
		prc := rc
		prc.Schedule, prc.UseSchedule = p.Schedule(dry.Schedule, restart), true
		res, err := Run(o, prc)
		if err != nil {
			return dry, out, fmt.Errorf("crash point %s: %w", p, err)
		}
		out = append(out, SweepResult{Point: p, Result: res})
	}
	return dry, out, nil
}
