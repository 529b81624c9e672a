package scenarios

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"walraft/core/node"
	"walraft/sim"
)

// Options are every knob of one simulation run. A scenario draws them from
// the seed (swarm testing: each seed gets its own workload mix and fault
// probabilities); every drawn value is printed by Describe, as TigerBeetle's
// VOPR does, so a report says exactly what ran.
type Options struct {
	Scenario string
	Seed     uint64
	Variant  string

	Nodes       int
	Topics      []node.TopicConfig
	Path        node.Path
	AcksTimeout time.Duration

	// Workload.
	Producers      int
	AcksWeights    [3]int // weights of acks=0, acks=1, acks=-1
	MaxBatchRecs   int    // records per produce request: 1..MaxBatchRecs
	MsgMin, MsgMax int    // record size range in bytes (>= 8: the payload id)
	ThinkMin       time.Duration
	ThinkMax       time.Duration
	ClientLatency  time.Duration // one-way client<->node latency
	RequestTimeout time.Duration // client gives up (indeterminate) after this
	Consumers      int
	FetchEvery     time.Duration

	// Phases.
	SafetyDuration   time.Duration // faults and load
	LivenessDuration time.Duration // bound for L1 after everything heals

	// World.
	Disk       sim.DiskConfig
	NetLatency time.Duration
	NetJitter  time.Duration
	// Fault generation (used when no explicit schedule is given).
	FaultEvery   time.Duration // mean time between faults
	FaultWeights map[FaultKind]int

	// Knobs are the node configuration the seed drew (knobs.go); absent
	// from a case file written before knobs were swarmed (then defaults).
	Knobs Knobs `json:",omitzero"`
	// FaultStallMax is the longest fsync stall the generator draws (0:
	// defaultStallMax). Omitted from JSON when zero, so case files written
	// before it existed still decode.
	FaultStallMax time.Duration `json:",omitempty"`
	// KillProb is the chance that a process death the harness causes (a
	// crash fault's, or the supervisor's restart of a node that stopped
	// itself after a storage failure) is a process kill that keeps the
	// machine up (sim.World.Kill: page cache kept, syncs in flight
	// complete) rather than a power loss. Omitted from JSON when zero (every
	// death a power loss, as before it existed).
	KillProb float64 `json:",omitempty"`
}

// defaultStallMax is the longest generated fsync stall unless the scenario
// sets Options.FaultStallMax.
const defaultStallMax = 3 * time.Second

// Describe renders every option on its own line, sorted and stable.
func (o Options) Describe() string {
	var b strings.Builder
	w := func(k string, v any) { fmt.Fprintf(&b, "  %-18s %v\n", k, v) }
	w("scenario", o.Scenario)
	w("seed", o.Seed)
	if o.Variant != "" {
		w("variant", o.Variant)
	}
	w("nodes", o.Nodes)
	var topics []string
	for _, t := range o.Topics {
		topics = append(topics, fmt.Sprintf("%s:%d", t.Name, t.Partitions))
	}
	w("topics", strings.Join(topics, ","))
	w("path", o.Path)
	w("acks-timeout", o.AcksTimeout)
	w("producers", o.Producers)
	w("acks-weights", fmt.Sprintf("0:%d 1:%d all:%d", o.AcksWeights[0], o.AcksWeights[1], o.AcksWeights[2]))
	w("records/request", fmt.Sprintf("1..%d", o.MaxBatchRecs))
	w("record-bytes", fmt.Sprintf("%d..%d", o.MsgMin, o.MsgMax))
	w("think", fmt.Sprintf("%v..%v", o.ThinkMin, o.ThinkMax))
	w("client-latency", o.ClientLatency)
	w("request-timeout", o.RequestTimeout)
	w("consumers", o.Consumers)
	w("fetch-every", o.FetchEvery)
	w("safety-phase", o.SafetyDuration)
	w("liveness-bound", o.LivenessDuration)
	w("disk-sync", fmt.Sprintf("%v..%v stall p=%.3f %v..%v", o.Disk.SyncMin, o.Disk.SyncMax, o.Disk.StallProb, o.Disk.StallMin, o.Disk.StallMax))
	w("disk-eio", fmt.Sprintf("write p=%.4f sync p=%.4f", o.Disk.WriteEIOProb, o.Disk.SyncEIOProb))
	w("disk-torn-keep", o.Disk.TornKeepProb)
	w("disk-failed-sync", o.Disk.FailedSync)
	if o.KillProb > 0 {
		w("kill-prob", o.KillProb)
	}
	w("net", fmt.Sprintf("latency %v jitter %v", o.NetLatency, o.NetJitter))
	w("knobs", o.Knobs.describe())
	w("fault-every", o.FaultEvery)
	if o.FaultStallMax > 0 {
		w("fault-stall-max", o.FaultStallMax)
	}
	if len(o.FaultWeights) > 0 {
		var ks []string
		for k, v := range o.FaultWeights {
			ks = append(ks, fmt.Sprintf("%s:%d", k, v))
		}
		sort.Strings(ks)
		w("fault-weights", strings.Join(ks, " "))
	}
	return b.String()
}

// Validate reports options that cannot run.
func (o Options) Validate() error {
	switch {
	case o.Nodes < 1 || o.Nodes > 9:
		return fmt.Errorf("nodes %d not in 1..9", o.Nodes)
	case len(o.Topics) == 0:
		return fmt.Errorf("no topics")
	case o.Producers < 0 || o.Consumers < 0:
		return fmt.Errorf("negative client count")
	case o.MsgMin < 8 || o.MsgMax < o.MsgMin:
		return fmt.Errorf("record size %d..%d (min 8)", o.MsgMin, o.MsgMax)
	case o.MaxBatchRecs < 1:
		return fmt.Errorf("records per request %d", o.MaxBatchRecs)
	case o.SafetyDuration <= 0 || o.LivenessDuration <= 0:
		return fmt.Errorf("phase durations must be positive")
	case o.AcksWeights[0]+o.AcksWeights[1]+o.AcksWeights[2] <= 0:
		return fmt.Errorf("acks weights all zero")
	case !(o.KillProb >= 0 && o.KillProb <= 1):
		return fmt.Errorf("kill probability %v not in [0, 1]", o.KillProb)
	}
	return nil
}

// generateTimed draws the timed faults of a schedule from rng, using the
// options' fault rate and weights. Crashes restart after a drawn delay;
// partitions heal after a drawn time; whole-cluster crashes are drawn too,
// which the design survives. GenerateSchedule aims and triggers a share.
func generateTimed(o Options, rng *sim.Rand) Schedule {
	var s Schedule
	if o.FaultEvery <= 0 || len(o.FaultWeights) == 0 {
		return s
	}
	kinds := make([]FaultKind, 0, len(o.FaultWeights))
	total := 0
	for _, k := range faultKinds {
		if w := o.FaultWeights[k]; w > 0 && k != FaultCorrupt {
			kinds = append(kinds, k)
			total += w
		}
	}
	if total == 0 && o.FaultWeights[FaultCorrupt] == 0 {
		return s
	}
	pick := func() FaultKind {
		x := rng.IntN(total)
		for _, k := range kinds {
			x -= o.FaultWeights[k]
			if x < 0 {
				return k
			}
		}
		return kinds[len(kinds)-1]
	}
	nodeN := func() uint64 { return uint64(1 + rng.IntN(o.Nodes)) }
	t := time.Duration(0)
	for total > 0 {
		t += rng.Duration(o.FaultEvery/4, o.FaultEvery*7/4)
		if t >= o.SafetyDuration {
			break
		}
		f := Fault{At: t, Kind: pick()}
		switch f.Kind {
		case FaultCrash, FaultTornCrash:
			f.Node, f.Dur = nodeN(), rng.Duration(10*time.Millisecond, 2*time.Second)
		case FaultCrashAll:
			f.Dur = rng.Duration(10*time.Millisecond, time.Second)
		case FaultPause:
			f.Node, f.Dur = nodeN(), rng.Duration(10*time.Millisecond, 2*time.Second)
		case FaultIsolate:
			f.Node = nodeN()
		case FaultOneWay:
			f.Node = nodeN()
			f.Peer = f.Node%uint64(o.Nodes) + 1
		case FaultPartition:
			f.Groups = splitGroups(o.Nodes, rng)
		case FaultBridge:
			if o.Nodes < 3 {
				continue
			}
			f.Node = nodeN()
			var a, b []uint64
			for id := uint64(1); id <= uint64(o.Nodes); id++ {
				if id == f.Node {
					continue
				}
				if len(a) <= len(b) {
					a = append(a, id)
				} else {
					b = append(b, id)
				}
			}
			f.Groups = [][]uint64{a, b}
		case FaultHeal:
		case FaultStall:
			stallMax := defaultStallMax
			if o.FaultStallMax > 0 {
				stallMax = o.FaultStallMax
			}
			f.Node, f.Dur = nodeN(), rng.Duration(5*time.Millisecond, stallMax)
		case FaultSyncEIO, FaultWriteEIO:
			f.Node, f.Count = nodeN(), 1+rng.IntN(2)
		case FaultDrop:
			f.Prob, f.Dur = 0.05+0.5*rng.Float64(), rng.Duration(100*time.Millisecond, 3*time.Second)
		case FaultDup:
			f.Prob, f.Dur = 0.05+0.3*rng.Float64(), rng.Duration(100*time.Millisecond, 3*time.Second)
		case FaultSkew:
			f.Node, f.Rate = nodeN(), 0.8+0.4*rng.Float64()
		case FaultNoSpace, FaultReadEIO, FaultHang, FaultClockStep, FaultLink, FaultStallLog:
			if !drawSimFault(&f, o, rng) {
				continue
			}
		}
		if (f.Kind == FaultOneWay || f.Kind == FaultIsolate || f.Kind == FaultPartition) && o.Nodes < 2 {
			continue
		}
		s = append(s, f)
		// Network faults heal on their own after a while, so a run spends
		// time in every state rather than staying split.
		if f.Kind == FaultPartition || f.Kind == FaultIsolate || f.Kind == FaultOneWay || f.Kind == FaultBridge {
			h := t + rng.Duration(200*time.Millisecond, 4*time.Second)
			if h < o.SafetyDuration {
				s = append(s, Fault{At: h, Kind: FaultHeal})
			}
		}
	}
	if o.FaultWeights[FaultCorrupt] > 0 {
		s = append(s, corruptFaults(o, rng)...)
	}
	s.Sort()
	return s
}

// corruptFaults draws, after every other fault (so the others are what the
// same swarm draws without it), one latent corruption of one node's synced
// Raft log or WAL, and a crash of that node soon after, so that its
// recovery meets the damage within the run.
func corruptFaults(o Options, rng *sim.Rand) Schedule {
	at := rng.Duration(o.SafetyDuration/10, o.SafetyDuration*7/10)
	node := uint64(1 + rng.IntN(o.Nodes))
	target := CorruptWAL
	if rng.Chance(0.5) {
		target = CorruptRaft
	}
	return Schedule{
		{At: at, Kind: FaultCorrupt, Node: node, Log: target},
		{At: at + rng.Duration(time.Millisecond, 300*time.Millisecond), Kind: FaultCrash, Node: node,
			Dur: rng.Duration(10*time.Millisecond, time.Second)},
	}
}

// splitGroups draws a random split of nodes 1..n into two non-empty groups.
func splitGroups(n int, rng *sim.Rand) [][]uint64 {
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	for i := n - 1; i > 0; i-- {
		j := rng.IntN(i + 1)
		ids[i], ids[j] = ids[j], ids[i]
	}
	cut := 1 + rng.IntN(n-1)
	a := append([]uint64(nil), ids[:cut]...)
	b := append([]uint64(nil), ids[cut:]...)
	sort.Slice(a, func(i, j int) bool { return a[i] < a[j] })
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	return [][]uint64{a, b}
}
