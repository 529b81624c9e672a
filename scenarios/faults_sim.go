package scenarios

import (
	"fmt"
	"time"

	"walraft/core/node"
	"walraft/sim"
)

// The simulator's fault model beyond crashes and cuts (issue 12): Linux
// fsync semantics, ENOSPC, EIO on read during recovery, a hung fsync that
// blocks the node's loop, clock steps and per-link network quality. The
// harness's apply calls one helper per fault kind from here.

// drawSimFaultOptions draws the disk semantics of a run, and the weights of
// this file's fault kinds, from a stream of its own ("options/sim-faults"),
// so adding them shifted no other draw. Every
// scenario runs Linux's failed-fsync semantics (DESIGN.md section 5): half
// the seeds drop the failed blocks back to the durable image, half mark
// them clean, and half the seeds let some of a failed fsync's blocks reach
// the disk all the same. The kind model (FailedSyncKeep) is never drawn;
// tests select it explicitly.
func drawSimFaultOptions(o *Options, seed uint64) {
	rng := sim.NewStreams(seed).Stream("options/sim-faults")
	if rng.Chance(0.5) {
		o.Disk.FailedSync = sim.FailedSyncDrop
	} else {
		o.Disk.FailedSync = sim.FailedSyncClean
	}
	drawSimFaultWeights(o, rng)
	// Half the seeds let a failed fsync have written some of its blocks
	// back before it failed (sim.DiskConfig.FailedSyncKeepProb): a record
	// whose fsync failed may then be found on disk after a restart, so a
	// definite failure answered for it is a lie the checkers can see
	// (S6). Its own stream, so no other draw moves.
	if wb := sim.NewStreams(seed).Stream("options/sim-faults/writeback"); wb.Chance(0.5) {
		o.Disk.FailedSyncKeepProb = wb.Float64()
	}
	// Half the seeds kill processes with the machine up (Options.KillProb):
	// a restarted node then reads back writes that never reached the disk,
	// and, after a failed fsync marked pages clean, data that a sync will
	// not write (fsyncgate across a restart). Its own stream.
	// A scenario that set its own (restart) keeps it.
	if kp := sim.NewStreams(seed).Stream("options/sim-faults/kill"); kp.Chance(0.5) {
		if p := 0.3 + 0.7*kp.Float64(); o.KillProb == 0 {
			o.KillProb = p
		}
	}
}

// simKindsByScenario lists the fault kinds of this file each scenario
// draws, with the top weight (exclusive) of its per-seed draw. Scenarios
// not listed (calm) draw none.
var simKindsByScenario = map[string]struct {
	kinds []FaultKind
	top   int
}{
	"default":    {[]FaultKind{FaultNoSpace, FaultReadEIO, FaultHang, FaultClockStep, FaultLink, FaultStallLog}, 3},
	"five":       {[]FaultKind{FaultNoSpace, FaultReadEIO, FaultHang, FaultClockStep, FaultLink, FaultStallLog}, 3},
	"legacy":     {[]FaultKind{FaultNoSpace, FaultReadEIO, FaultHang, FaultClockStep, FaultLink, FaultStallLog}, 3},
	"standalone": {[]FaultKind{FaultNoSpace, FaultReadEIO, FaultHang, FaultClockStep}, 3},
	"crashes":    {[]FaultKind{FaultNoSpace, FaultReadEIO, FaultHang, FaultStallLog}, 3},
	// The fsync scenario always has its disk faults.
	"fsync": {[]FaultKind{FaultNoSpace, FaultReadEIO, FaultHang, FaultStallLog}, 0},
}

// drawSimFaultWeights adds the weights of this file's fault kinds to a
// scenario that has fault weights: each kind 0..top-1 (swarm testing: some
// seeds never see a kind), or 1 when top is 0.
func drawSimFaultWeights(o *Options, rng *sim.Rand) {
	sk, ok := simKindsByScenario[o.Scenario]
	if !ok || len(o.FaultWeights) == 0 {
		return
	}
	for _, k := range sk.kinds {
		w := 1
		if sk.top > 0 {
			w = rng.IntN(sk.top)
		}
		if w > 0 {
			o.FaultWeights[k] = w
		}
	}
}

// drawSimFault fills the parameters of a fault of this file's kinds; ok is
// false when the kind cannot apply to the cluster (a link needs two nodes).
func drawSimFault(f *Fault, o Options, rng *sim.Rand) (ok bool) {
	nodeN := func() uint64 { return uint64(1 + rng.IntN(o.Nodes)) }
	switch f.Kind {
	case FaultNoSpace:
		f.Node, f.Count = nodeN(), 1+rng.IntN(3)
	case FaultReadEIO:
		f.Node, f.Count, f.Dur = nodeN(), 1+rng.IntN(3), rng.Duration(10*time.Millisecond, time.Second)
	case FaultHang:
		f.Node, f.Dur = nodeN(), rng.Duration(5*time.Millisecond, 2*time.Second)
	case FaultStallLog:
		if o.Nodes < 2 {
			return false // a standalone node has no Raft log
		}
		f.Node, f.Dur = nodeN(), rng.Duration(5*time.Millisecond, 6*time.Second)
		if rng.Chance(0.3) {
			f.Log = CorruptWAL
		}
	case FaultClockStep:
		f.Node, f.Step = nodeN(), rng.Duration(10*time.Millisecond, 5*time.Second)
		if rng.Chance(0.5) {
			f.Step = -f.Step
		}
	case FaultLink:
		if o.Nodes < 2 {
			return false
		}
		f.Node = nodeN()
		f.Peer = 1 + (f.Node-1+uint64(1+rng.IntN(o.Nodes-1)))%uint64(o.Nodes)
		f.Latency = rng.Duration(0, 50*time.Millisecond)
		f.Jitter = rng.Duration(0, 20*time.Millisecond)
		if rng.Chance(0.5) {
			f.Prob = 0.6 * rng.Float64()
		}
		if rng.Chance(0.3) {
			f.Dup = 0.3 * rng.Float64()
		}
		f.Dur = rng.Duration(100*time.Millisecond, 4*time.Second)
	default:
		panic(fmt.Sprintf("scenarios: drawSimFault: kind %q is not a sim fault", f.Kind))
	}
	return true
}

// applySimFault performs a fault of this file's kinds.
func (h *harness) applySimFault(f Fault) {
	switch f.Kind {
	case FaultNoSpace:
		h.w.Disk(f.Node).FailNextWritesNoSpace(f.Count)
	case FaultReadEIO:
		// Aimed at recovery: a clean crash, then a restart whose reads fail.
		if h.node(f.Node) != nil {
			d := h.w.Disk(f.Node)
			cfg := d.Config()
			clean := cfg
			clean.TornKeepProb = 0
			d.SetConfig(clean)
			h.crash(f.Node)
			d.SetConfig(cfg)
			h.probe("crash")
		}
		h.w.Disk(f.Node).FailNextReads(f.Count)
		h.s.After(f.Dur, func() { h.restart(f.Node) })
	case FaultHang:
		h.w.Disk(f.Node).HangSyncsUntil(h.s.Now() + f.Dur)
		h.probe("fsync-hang")
	case FaultStallLog:
		prefix := h.logPrefix(f.Node, f.Log)
		if f.Log == StallDir {
			h.w.Disk(f.Node).StallDirSyncsUntil(h.s.Now() + f.Dur)
			h.probe("fsync-stall-dir")
			break
		}
		h.w.Disk(f.Node).StallPrefixUntil(prefix, h.s.Now()+f.Dur)
		h.probe("fsync-stall-log")
	case FaultClockStep:
		h.interrupt(f.Node, false) // its timers now fire early or late by design
		if err := h.w.StepClock(f.Node, f.Step); err != nil {
			panic(fmt.Sprintf("scenarios: %s: %v", f, err))
		}
	case FaultLink:
		net := h.w.Net()
		cfg := sim.LinkConfig{Latency: f.Latency, Jitter: f.Jitter, DropProb: f.Prob, DupProb: f.Dup}
		if err := net.SetLink(f.Node, f.Peer, cfg); err != nil {
			panic(fmt.Sprintf("scenarios: %s: %v", f, err))
		}
		h.probe("link-quality")
		h.s.After(f.Dur, func() {
			if !h.inLive && net.LinkConfig(f.Node, f.Peer) == cfg {
				net.ClearLink(f.Node, f.Peer)
			}
		})
	default:
		panic(fmt.Sprintf("scenarios: applySimFault: kind %q is not a sim fault", f.Kind))
	}
}

// afterBoot runs when node id booted: read errors were aimed at its
// recovery, which is over.
func (h *harness) afterBoot(id uint64) { h.w.Disk(id).ClearReadFaults() }

// healSimFaults undoes this file's faults for the liveness phase: the
// per-link overrides go, a backward clock step stops holding the clock,
// and the disk keeps the run's failed-sync semantics (startLiveness resets
// the rest of the disk config; its ClearFaults disarms ENOSPC, read errors
// and the hang).
func (h *harness) healSimFaults() {
	net := h.w.Net()
	for _, from := range h.ids {
		for _, to := range h.ids {
			if from != to {
				net.ClearLink(from, to)
			}
		}
		h.w.Process(from).Clock().SettleStep()
		d := h.w.Disk(from)
		cfg := d.Config()
		cfg.FailedSync = h.o.Disk.FailedSync
		d.SetConfig(cfg)
	}
}

// onSimTrace counts the probes of this file's fault states from the
// simulator's trace events.
func (h *harness) onSimTrace(e sim.TraceEvent) {
	switch e.Kind {
	case "disk.sync_dropped":
		if e.B > 0 {
			h.probe("fsync-failed-dropped")
		}
		if e.D > 0 {
			h.probe("fsync-failed-written-back")
		}
	case "disk.enospc":
		h.probe("enospc")
	case "disk.read_eio":
		h.probe("read-eio-on-recovery")
	case "proc.block":
		h.probe("loop-blocked-by-fsync")
	case "clock.step":
		if e.A < 0 {
			h.probe("clock-step-back")
		} else {
			h.probe("clock-step-forward")
		}
	}
}

// logPrefix is the file-name prefix of node id's log named by a fault's
// Log: its Raft log (CorruptRaft or "") or every WAL (CorruptWAL); ""
// for StallDir, which names directory syncs rather than files.
func (h *harness) logPrefix(id uint64, log string) string {
	cfg := h.nodeConfig(id)
	switch log {
	case CorruptWAL:
		return cfg.Dir + "wal/"
	case StallDir:
		return ""
	}
	return node.RaftLogDir(cfg) + "/"
}
