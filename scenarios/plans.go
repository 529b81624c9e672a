package scenarios

// Aimed schedules: the share of generated faults that get targets and
// triggers, and the targeted scenarios whose schedules are written with
// them (zombie, double-failover, last-replica). Every draw here comes from
// the seed's "aim" stream, so the timed schedule GenerateSchedule draws
// from the "faults" stream stays what it was.

import (
	"time"

	"walraft/sim"
)

// Shares of generated faults that are aimed at a role or triggered by an
// event, and the chance of a leadership transfer after a fault.
const (
	aimShare      = 0.25
	triggerShare  = 0.2
	transferShare = 0.1
)

// aimSchedule rewrites a generated schedule: some faults name a role
// instead of a node, some wait for an event, and some are followed by a
// leadership transfer. It draws from rng only (the "aim" stream).
func aimSchedule(o Options, s Schedule, rng *sim.Rand) Schedule {
	out := make(Schedule, 0, len(s))
	for _, f := range s {
		if f.Node != 0 && len(f.Groups) == 0 && rng.Chance(aimShare) {
			f.Node, f.Target = 0, drawOneTarget(rng, o.Nodes)
			if f.Kind == FaultOneWay {
				f.Peer = 0
			}
		}
		if f.Kind != FaultHeal && rng.Chance(triggerShare) {
			t := drawTrigger(rng, o.Nodes)
			f.Trigger = &t
			if rng.Chance(0.3) && (f.Target == "" || f.Node == 0) && f.Kind != FaultCrashAll && f.Kind != FaultDrop &&
				f.Kind != FaultDup && f.Kind != FaultPartition && f.Kind != FaultBridge {
				f.Node, f.Target = 0, TargetEventNode
				if f.Kind == FaultOneWay {
					f.Peer = 0
				}
			}
		}
		out = append(out, f)
		if o.Nodes > 1 && rng.Chance(transferShare) {
			out = append(out, Fault{At: f.At, Kind: FaultTransferLeader, Target: drawOneTarget(rng, o.Nodes)})
		}
	}
	out.Sort()
	return out
}

// drawOneTarget draws a role that names one node.
func drawOneTarget(rng *sim.Rand, n int) Target {
	if n == 1 {
		return TargetLeader
	}
	one := []Target{TargetLeader, TargetFollower, TargetMostCaughtUp, TargetLeastCaughtUp, TargetLastVoter}
	return one[rng.IntN(len(one))]
}

// drawTrigger draws a trigger: an event, whose (a node, a role or any),
// the Nth occurrence (1-3, the k-th fsync up to 40) and a short delay.
func drawTrigger(rng *sim.Rand, n int) Trigger {
	t := Trigger{On: triggerEvents[rng.IntN(len(triggerEvents))]}
	switch rng.IntN(3) {
	case 0:
		t.Node = uint64(1 + rng.IntN(n))
	case 1:
		t.Role = TargetLeader
		if n > 1 && rng.Chance(0.4) {
			t.Role = TargetFollower
		}
	}
	t.Nth = 1 + rng.IntN(3)
	if t.On == OnFsync {
		t.Nth = 1 + rng.IntN(40)
	}
	if rng.Chance(0.6) {
		t.Delay = rng.Duration(0, 20*time.Millisecond)
	}
	return t
}

// The targeted scenarios' schedules. Each is a few aimed and triggered
// faults at seeded moments, repeated through the safety phase.

// zombiePlan deposes a leader right after it wrote a batch, aiming the
// faults so that the deposed leader's batch reaches one follower and
// commits only later, through a third leader:
//
//   - on the leader's WAL write, the leader's messages to one follower
//     (seeded) are dropped for a few milliseconds, so the batch's append
//     reaches the other follower only;
//   - a moment later the leader is isolated (with 5 nodes, sometimes cut
//     off with a minority; sometimes paused instead, a zombie that acts as
//     leader once resumed), before that follower's acknowledgement can
//     commit the batch;
//   - the node that becomes leader next (the follower holding the batch,
//     which alone can win) is crashed as it takes over, before its first
//     entry commits, so a third leader commits the deposed leader's batch;
//   - sometimes the disk of a follower of that third leader stalls as it
//     takes over, so its first entry, and with it the deposed batch, stays
//     uncommitted while clients find it: the window in which only the
//     produce gate (DESIGN.md 3.2) keeps it from handing out the batch's
//     offsets again;
//   - sometimes leadership is then transferred to the least caught-up
//     follower, and everything heals; the deposed leader rejoins with its
//     uncommitted suffix.
func zombiePlan(o Options, rng *sim.Rand) Schedule {
	var s Schedule
	t := rng.Duration(300*time.Millisecond, time.Second)
	for t < o.SafetyDuration-500*time.Millisecond {
		write := Trigger{On: OnWALWrite, Role: TargetLeader, Nth: 1 + rng.IntN(3)}
		s = append(s, Fault{At: t, Kind: FaultLink, Target: TargetLeader, Prob: 1,
			Dur: rng.Duration(5*time.Millisecond, 20*time.Millisecond), Trigger: &write})
		depose := write
		depose.Delay = rng.Duration(500*time.Microsecond, 3*time.Millisecond)
		iso := Fault{At: t, Kind: FaultIsolate, Target: TargetLeader, Trigger: &depose}
		if o.Nodes > 3 && rng.Chance(0.5) {
			iso.Kind, iso.Target = FaultPartition, TargetMinority
		}
		if rng.Chance(0.3) {
			// A pause instead: the leader stops past the election
			// timeout with its batch in flight and, once resumed, acts
			// as leader until it hears of the new term (a zombie).
			iso = Fault{At: t, Kind: FaultPause, Target: TargetLeader, Dur: rng.Duration(300*time.Millisecond, 2*time.Second),
				Trigger: &depose}
		}
		s = append(s, iso)
		s = append(s, Fault{At: t, Kind: FaultCrash, Target: TargetEventNode, Dur: rng.Duration(50*time.Millisecond, time.Second),
			Trigger: &Trigger{On: OnBecomeLeader, Delay: rng.Duration(0, 5*time.Millisecond)}})
		if rng.Chance(0.5) {
			s = append(s, Fault{At: t, Kind: FaultStall, Target: TargetMostCaughtUp, Dur: rng.Duration(50*time.Millisecond, 400*time.Millisecond),
				Trigger: &Trigger{On: OnBecomeLeader, Nth: 2}})
		}
		if rng.Chance(0.5) {
			s = append(s, Fault{At: t, Kind: FaultTransferLeader, Target: TargetLeastCaughtUp,
				Trigger: &Trigger{On: OnBecomeLeader, Nth: 2, Delay: rng.Duration(20*time.Millisecond, 200*time.Millisecond)}})
		}
		heal := t + rng.Duration(400*time.Millisecond, 2*time.Second)
		s = append(s, Fault{At: heal, Kind: FaultHeal})
		t = heal + rng.Duration(300*time.Millisecond, 1500*time.Millisecond)
	}
	s.Sort()
	return s
}

// doubleFailoverPlan is KIP-101's double failover: the leader crashes, the
// new leader crashes right after it takes over (before followers caught
// up), nodes come back within milliseconds and are crashed again right
// after their restart, torn or clean.
func doubleFailoverPlan(o Options, rng *sim.Rand) Schedule {
	var s Schedule
	t := rng.Duration(300*time.Millisecond, time.Second)
	kind := func() FaultKind {
		if rng.Chance(0.5) {
			return FaultTornCrash
		}
		return FaultCrash
	}
	for t < o.SafetyDuration-500*time.Millisecond {
		s = append(s, Fault{At: t, Kind: kind(), Target: TargetLeader, Dur: rng.Duration(100*time.Millisecond, 1500*time.Millisecond)})
		s = append(s, Fault{At: t, Kind: kind(), Target: TargetEventNode, Dur: rng.Duration(50*time.Millisecond, time.Second),
			Trigger: &Trigger{On: OnBecomeLeader, Delay: rng.Duration(0, 50*time.Millisecond)}})
		if rng.Chance(0.5) {
			s = append(s, Fault{At: t, Kind: FaultCrash, Target: TargetEventNode, Dur: rng.Duration(10*time.Millisecond, 500*time.Millisecond),
				Trigger: &Trigger{On: OnRestart, Delay: rng.Duration(0, 5*time.Millisecond)}})
		}
		if rng.Chance(0.3) {
			s = append(s, Fault{At: t, Kind: FaultTornCrash, Target: TargetEventNode, Dur: rng.Duration(10*time.Millisecond, 500*time.Millisecond),
				Trigger: &Trigger{On: OnSegment, Delay: rng.Duration(0, 2*time.Millisecond)}})
		}
		if rng.Chance(0.3) {
			s = append(s, Fault{At: t, Kind: FaultTornCrash, Target: TargetEventNode, Dur: rng.Duration(10*time.Millisecond, 500*time.Millisecond),
				Trigger: &Trigger{On: OnTruncate, Delay: rng.Duration(0, 2*time.Millisecond)}})
		}
		t += rng.Duration(time.Second, 3*time.Second)
	}
	s.Sort()
	return s
}

// lastReplicaPlan is KIP-966's last replica standing: the followers go
// down one after the other, the leader serves alone (acks=1 succeeds, acks=-1
// cannot commit), then the leader crashes (torn) and stays down while the
// followers return and elect one of themselves; the old leader rejoins
// last, with a suffix nobody committed.
func lastReplicaPlan(o Options, rng *sim.Rand) Schedule {
	var s Schedule
	t := rng.Duration(300*time.Millisecond, time.Second)
	for t < o.SafetyDuration-time.Second {
		down := rng.Duration(800*time.Millisecond, 2*time.Second)
		for i := 0; i < (o.Nodes-1)/2+1 && i < o.Nodes-1; i++ {
			at := t + time.Duration(i)*rng.Duration(10*time.Millisecond, 100*time.Millisecond)
			tg := TargetMostCaughtUp
			if i%2 == 1 {
				tg = TargetLeastCaughtUp
			}
			s = append(s, Fault{At: at, Kind: FaultCrash, Target: tg, Dur: down})
		}
		lead := t + rng.Duration(200*time.Millisecond, 600*time.Millisecond)
		s = append(s, Fault{At: lead, Kind: FaultTornCrash, Target: TargetLeader, Dur: down + rng.Duration(500*time.Millisecond, 2*time.Second)})
		t = lead + down + rng.Duration(time.Second, 2*time.Second)
	}
	s.Sort()
	return s
}

// electionStallPlan aims a disk stall at the moment a node starts an
// election: a follower is made to campaign (a leadership transfer to the
// most caught-up one, which has just taken appends and so usually has a
// Raft-log fsync in flight), and its disk stalls for a few milliseconds
// as its term changes. Its votes then come back while the fsync it issued
// before the new term is still running, so it leads before its term is
// durable: the window in which a leader must hold its messages (async.go's
// raft.hold; S9 judges what they promise) and the one Ready loop must not
// treat the older fsync as covering the new term. Timed faults alone
// almost never land there.
func electionStallPlan(o Options, rng *sim.Rand) Schedule {
	var s Schedule
	if o.Nodes < 2 {
		return s
	}
	t := rng.Duration(300*time.Millisecond, time.Second)
	for t < o.SafetyDuration-500*time.Millisecond {
		s = append(s, Fault{At: t, Kind: FaultStall, Target: TargetEventNode, Dur: rng.Duration(2*time.Millisecond, 30*time.Millisecond),
			Trigger: &Trigger{On: OnTermChange}})
		s = append(s, Fault{At: t + rng.Duration(0, 20*time.Millisecond), Kind: FaultTransferLeader, Target: TargetMostCaughtUp})
		t += rng.Duration(time.Second, 3*time.Second)
	}
	s.Sort()
	return s
}

// syncTornPlan aims torn crashes at a node's fsync in flight: a node
// (any, a follower or the leader) is crashed torn a moment after it issues
// its Nth fsync from the arming, often before the fsync completes and
// while later writes pile up behind it (on the pipelined path the WAL and
// the Raft log are written while their fsyncs run). Recovery must then
// tell the synced prefix from a torn unsynced tail, and a record log that
// claims more than its fsync covered takes the tail for damaged synced
// data. Timed torn crashes rarely land inside the few milliseconds of one
// fsync.
func syncTornPlan(o Options, rng *sim.Rand) Schedule {
	var s Schedule
	t := rng.Duration(300*time.Millisecond, time.Second)
	for t < o.SafetyDuration-500*time.Millisecond {
		tr := Trigger{On: OnFsync, Nth: 1 + rng.IntN(20), Delay: rng.Duration(0, 2*time.Millisecond)}
		if o.Nodes > 1 && rng.Chance(0.5) {
			tr.Role = TargetFollower
		}
		s = append(s, Fault{At: t, Kind: FaultTornCrash, Target: TargetEventNode, Dur: rng.Duration(50*time.Millisecond, time.Second), Trigger: &tr})
		t += rng.Duration(time.Second, 3*time.Second)
	}
	s.Sort()
	return s
}

// GenerateSchedule draws a fault schedule for the safety phase: the timed
// faults of the options' fault rate and weights (from rng, the "faults"
// stream), a share of them aimed and triggered, and the scenario's own
// aimed plan if it has one (both from the seed's "aim" stream).
func GenerateSchedule(o Options, rng *sim.Rand) Schedule {
	aim := sim.NewStreams(o.Seed).Stream("aim")
	s := aimSchedule(o, generateTimed(o, rng), aim)
	if sc, err := Lookup(o.Scenario); err == nil && sc.plan != nil {
		s = append(s, sc.plan(o, aim)...)
		s.Sort()
	}
	return s
}

// stepDownPlan aims at a sick leader's step-down (health.go): its disk
// stalls past the nodes' DiskStallTimeout, so it marks the disk hung and
// hands leadership to its most caught-up follower that is still active.
// Two shapes alternate, seeded:
//
//   - a follower is down first (crashed, or cut off) for seconds, long
//     enough that the leader no longer counts it active; then the
//     leader's disk stalls for seconds, and it must step aside to a live
//     follower while one is missing (with five nodes the healthy
//     majority must be served again, A1). The down follower has fallen
//     behind by then, so this does not show a step-down that ignores
//     activity (the round-6 red-team bug that did survived it);
//   - the leader's disk stalls for a little more than DiskStallTimeout and
//     the most caught-up follower is cut off just before the leader picks
//     it: the transfer cannot finish, the disk returns mid-transfer, and
//     the batches written meanwhile reach their proposal during the
//     transfer, which must be aborted rather than let raft drop them
//     (produce.go's proposable; the probe transfer-aborted-for-batch). The
//     acks=1 writes answered before a dropped proposal would be lost (S5).
//
// Timed stalls and cuts rarely line up this way.
func stepDownPlan(o Options, rng *sim.Rand) Schedule {
	var s Schedule
	if o.Nodes < 3 {
		return s
	}
	t := rng.Duration(300*time.Millisecond, time.Second)
	for t < o.SafetyDuration-time.Second {
		switch rng.IntN(2) {
		case 0:
			down := Fault{At: t, Kind: FaultCrash, Target: TargetMostCaughtUp, Dur: rng.Duration(2*time.Second, 4*time.Second)}
			if rng.Chance(0.5) {
				down = Fault{At: t, Kind: FaultIsolate, Target: TargetMostCaughtUp}
			}
			stall := t + rng.Duration(1500*time.Millisecond, 2500*time.Millisecond)
			s = append(s, down, Fault{At: stall, Kind: FaultStall, Target: TargetLeader, Dur: rng.Duration(time.Second, 3*time.Second)})
			t = stall + rng.Duration(3*time.Second, 4*time.Second)
		default:
			stallFor := diskStallTimeout + rng.Duration(100*time.Millisecond, 600*time.Millisecond)
			s = append(s, Fault{At: t, Kind: FaultStall, Target: TargetLeader, Dur: stallFor},
				Fault{At: t + diskStallTimeout - rng.Duration(0, 100*time.Millisecond), Kind: FaultIsolate, Target: TargetMostCaughtUp})
			t += stallFor + rng.Duration(time.Second, 2*time.Second)
		}
		s = append(s, Fault{At: t - rng.Duration(200*time.Millisecond, 500*time.Millisecond), Kind: FaultHeal})
	}
	s.Sort()
	return s
}

// overwritePlan aims at the drop of a stale append acknowledgement
// (ready.go's staleAppResp): a follower must hold a deposed leader's
// entries, written but not yet synced, when a leader elected without it
// overwrites them, so that the acknowledgement its sync then releases
// promises entries its log no longer holds (S9 judges it if it leaves).
// On the leader's WAL write its messages to one follower are dropped for
// a few milliseconds, so its batch's append reaches the other one; a
// follower's disk stalls for most of a second (the one holding the batch
// in about half the rounds); the leader crashes torn a moment later,
// usually before its own Raft-log sync, and comes back without the batch
// to vote for the follower that never had it.
func overwritePlan(o Options, rng *sim.Rand) Schedule {
	var s Schedule
	t := rng.Duration(300*time.Millisecond, time.Second)
	for t < o.SafetyDuration-time.Second {
		write := Trigger{On: OnWALWrite, Role: TargetLeader, Nth: 1 + rng.IntN(3)}
		s = append(s, Fault{At: t, Kind: FaultLink, Target: TargetLeader, Prob: 1,
			Dur: rng.Duration(5*time.Millisecond, 20*time.Millisecond), Trigger: &write})
		s = append(s, Fault{At: t, Kind: FaultStall, Target: TargetFollower, Dur: rng.Duration(400*time.Millisecond, 1200*time.Millisecond),
			Trigger: &write})
		crash := write
		crash.Delay = rng.Duration(500*time.Microsecond, 3*time.Millisecond)
		s = append(s, Fault{At: t, Kind: FaultTornCrash, Target: TargetLeader, Dur: rng.Duration(50*time.Millisecond, 300*time.Millisecond),
			Trigger: &crash})
		t += rng.Duration(1500*time.Millisecond, 3*time.Second)
	}
	s.Sort()
	return s
}

// restartPlan aims at restarts after a process kill with the machine up
// (sim.World.Kill). At a node's write or fsync, one of its logs' syncs
// stall (FaultStallLog) and the node is killed a few milliseconds later,
// so its page cache holds what it wrote behind the stalled sync, which the
// disk does not (the sync in flight completes after the kill, covering
// only what it was issued for). As the node boots again (OnBoot) one of
// its logs' syncs stall once more, so its recovery sync is slow: a node
// that starts, acknowledges or exposes anything before every log's
// recovery sync completes does so over bytes a power loss would take.
// Half the kills hit a follower.
func restartPlan(o Options, rng *sim.Rand) Schedule {
	var s Schedule
	log := func() string {
		if rng.Chance(0.3) {
			return CorruptWAL
		}
		return CorruptRaft
	}
	// The boot's failed recovery syncs come from a stream of their own, so
	// that adding them left the plan's other draws as they were.
	eio := sim.NewStreams(o.Seed).Stream("plan/restart/boot-eio")
	t := rng.Duration(300*time.Millisecond, time.Second)
	for t < o.SafetyDuration-500*time.Millisecond {
		at := Trigger{On: OnWALWrite, Nth: 1 + rng.IntN(10)}
		if rng.Chance(0.5) {
			at.On = OnFsync
		}
		if rng.Chance(0.5) {
			at.Role = TargetFollower
		}
		// Both armed at t with the same event spec: they fire on the
		// same event of the same node, the kill a little later.
		stallAt, killAt := at, at
		killAt.Delay = rng.Duration(500*time.Microsecond, 10*time.Millisecond)
		s = append(s,
			Fault{At: t, Kind: FaultStallLog, Target: TargetEventNode, Dur: rng.Duration(20*time.Millisecond, 200*time.Millisecond), Log: log(), Trigger: &stallAt},
			Fault{At: t, Kind: FaultKill, Target: TargetEventNode, Dur: rng.Duration(20*time.Millisecond, 500*time.Millisecond), Trigger: &killAt},
			Fault{At: t, Kind: FaultStallLog, Target: TargetEventNode, Dur: rng.Duration(5*time.Millisecond, 300*time.Millisecond), Log: log(), Trigger: &Trigger{On: OnBoot}})
		if eio.Chance(0.4) {
			// One of the first recovery syncs after the kill fails: the
			// node must stop, not start on what only its page cache held.
			s = append(s, Fault{At: t, Kind: FaultSyncEIO, Target: TargetEventNode, Count: 1 + eio.IntN(3), Trigger: &Trigger{On: OnBoot}})
		}
		t += rng.Duration(time.Second, 3*time.Second)
	}
	s.Sort()
	return s
}

// sickLogPlan aims gray failure at one log of the leader: once or twice a
// run, the leader's Raft log (or, one time in four, its WALs) stalls for
// 1.5-6 s while its other log's syncs go on. The leader must see its disk
// hung by the oldest outstanding sync and step aside (health.go); a
// hung-disk check that looked at any other sync (the newest, or the last
// completed) would see fresh WAL syncs and keep it leading on a log that
// commits nothing, past A1's bound.
func sickLogPlan(o Options, rng *sim.Rand) Schedule {
	var s Schedule
	n := 1 + rng.IntN(2)
	for range n {
		f := Fault{At: rng.Duration(o.SafetyDuration/10, o.SafetyDuration*6/10), Kind: FaultStallLog, Target: TargetLeader,
			Dur: rng.Duration(1500*time.Millisecond, 6*time.Second), Log: CorruptRaft}
		if rng.Chance(0.25) {
			f.Log = CorruptWAL
		}
		s = append(s, f)
	}
	// Once a run, the leader's directory syncs stall right as
	// it creates a segment (a rotation: the record log syncs the
	// directory before it issues the file syncs queued behind). Its
	// hung-disk check must see the stalled directory sync; one that
	// watched file syncs alone (a red-team bug) sees nothing outstanding
	// and keeps leading past A1's bound. Its own stream: the plan's other
	// draws are unchanged.
	// It lasts past the run's A1 bound (0.5-3 s more), which the knobs
	// and the client timeout move from about 2 s to 8 s.
	dir := sim.NewStreams(o.Seed).Stream("plan/gray/dir-stall")
	ids := make([]uint64, o.Nodes)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	bound := A1Bound(o, nodeConfigFor(o, 1, ids).Defaults())
	s = append(s, Fault{At: dir.Duration(o.SafetyDuration/10, o.SafetyDuration/2), Kind: FaultStallLog, Target: TargetEventNode,
		Dur: bound + dir.Duration(500*time.Millisecond, 3*time.Second), Log: StallDir, Trigger: &Trigger{On: OnSegment, Role: TargetLeader}})
	s.Sort()
	return s
}
