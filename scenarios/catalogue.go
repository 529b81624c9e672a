package scenarios

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"walraft/core/node"
	"walraft/sim"
)

// Scenario is a named family of runs: Draw turns a seed into Options.
type Scenario struct {
	Name    string
	Summary string
	draw    func(o *Options, rng *sim.Rand)
	// plan, if set, adds the scenario's own aimed and triggered faults to
	// the generated schedule (plans.go).
	plan func(o Options, rng *sim.Rand) Schedule
	// swarm marks the scenario of scenarios (SwarmScenario).
	swarm bool
	// optionsOf is the scenario whose name seeds the options (optionSeed):
	// a twin's original; "" for the scenario's own name.
	optionsOf string
}

// ClientTimeout is the harness clients' request timeout: an acks=-1 write
// on a healthy cluster takes milliseconds, so a second of silence means the
// node is sick (paused, or holding the request on a hung disk).
const ClientTimeout = time.Second

// ClientTimeoutPatient is the request timeout of the seeds that draw
// patient clients.
const ClientTimeoutPatient = 6 * time.Second

// SwarmScenario names the scenario of scenarios: seed N of it is seed N of
// one scenario of the catalogue, drawn from the seed (Scenario.For). It is
// swarm testing (Groce et al., "Swarm Testing", ISSTA 2012) one level up:
// the path (batch, pipelined, legacy, standalone), the cluster size and the
// aimed fault plan vary per seed as the fault mix already does within a
// scenario, so that a campaign that names no scenario reaches every path
// and plan instead of the batch path's swarm alone. A swarm seed replays
// as the scenario it drew (`run -scenario zombie -seed N` is the same run),
// and a campaign accounts it, its case file and its replay command under
// that scenario's name. Adding a scenario to the catalogue changes which
// scenario a swarm seed draws.
const SwarmScenario = "swarm"

// DefaultScenario is what campaigns and runs use when none is named.
const DefaultScenario = SwarmScenario

var swarmScenario = Scenario{Name: SwarmScenario, swarm: true,
	Summary: "each seed runs one scenario of this list, drawn from the seed (every path, size and fault plan; the default)"}

// For returns the scenario that seed runs: s itself, or for the swarm
// scenario the one drawn from the seed's own "swarm" stream, uniformly
// over Scenarios().
func (s Scenario) For(seed uint64) Scenario {
	if !s.swarm {
		return s
	}
	all := Scenarios()
	return all[sim.NewStreams(seed).Stream("swarm").IntN(len(all))]
}

// IsSwarm reports whether s is the scenario of scenarios (SwarmScenario).
func (s Scenario) IsSwarm() bool { return s.swarm }

var catalogue = []Scenario{
	{Name: "default", Summary: "3 nodes, 2 partitions, swarm of every in-budget fault, batch path", draw: func(o *Options, rng *sim.Rand) {
		o.Nodes = 3
		swarmFaults(o, rng, clusterFaults)
	}},
	{Name: "standalone", Summary: "1 node without Raft: crashes, torn crashes, fsync stalls and EIO", draw: func(o *Options, rng *sim.Rand) {
		o.Nodes = 1
		swarmFaults(o, rng, []FaultKind{FaultCrash, FaultTornCrash, FaultPause, FaultStall, FaultSyncEIO, FaultWriteEIO, FaultSkew})
		// Stalls up to 6 s, past the drawn acks timeouts (2-8 s): a lone
		// node cannot step aside, so its requests wait on the stalled
		// fsync and only its own timeout ends them (L2 judges it).
		o.FaultStallMax = 6 * time.Second
	}},
	{Name: "five", Summary: "5 nodes, swarm of every in-budget fault", draw: func(o *Options, rng *sim.Rand) {
		o.Nodes = 5
		swarmFaults(o, rng, clusterFaults)
	}},
	{Name: "legacy", Summary: "3 nodes on the legacy per-record path, swarm faults", draw: func(o *Options, rng *sim.Rand) {
		o.Nodes = 3
		o.Path = node.PathLegacy
		swarmFaults(o, rng, clusterFaults)
	}},
	{Name: "crashes", Summary: "3 nodes, whole-cluster and torn crashes with fsync faults; torn crashes aimed at an fsync in flight", draw: func(o *Options, rng *sim.Rand) {
		o.Nodes = 3
		swarmFaults(o, rng, []FaultKind{FaultCrash, FaultTornCrash, FaultCrashAll, FaultStall, FaultSyncEIO})
	}, plan: syncTornPlan},
	{Name: "fsync", Summary: "3 nodes, frequent fsync errors and stalls, write errors and crashes; a disk stall aimed at each election", draw: func(o *Options, rng *sim.Rand) {
		o.Nodes = 3
		o.FaultWeights = map[FaultKind]int{FaultSyncEIO: 4, FaultWriteEIO: 1, FaultStall: 2, FaultCrash: 1, FaultTornCrash: 1}
		o.FaultEvery = rng.Duration(100*time.Millisecond, 500*time.Millisecond)
	}, plan: electionStallPlan},
	{Name: "calm", Summary: "3 nodes, no faults: the baseline", draw: func(o *Options, rng *sim.Rand) {
		o.Nodes = 3
	}},
	{Name: "zombie", Summary: "3 or 5 nodes: a leader deposed right after it wrote a batch, the next leader crashed as it takes over",
		draw: func(o *Options, rng *sim.Rand) {
			o.Nodes = 3 + 2*rng.IntN(2)
			o.AcksWeights[1]++ // acks=1 batches are the ones a deposed leader leaves behind
		}, plan: zombiePlan},
	{Name: "double-failover", Summary: "3 nodes: KIP-101 double failover, crashes right after a node leads, restarts, rotates or truncates",
		draw: func(o *Options, rng *sim.Rand) {
			o.Nodes = 3
			o.Disk.TornKeepProb = rng.Float64()
		}, plan: doubleFailoverPlan},
	{Name: "last-replica", Summary: "3 or 5 nodes: KIP-966 last replica standing, the followers down, then the lone leader",
		draw: func(o *Options, rng *sim.Rand) {
			o.Nodes = 3 + 2*rng.IntN(2)
			o.AcksWeights[1]++
		}, plan: lastReplicaPlan},
	{Name: "stepdown", Summary: "3 or 5 nodes: a leader's disk stalls past the stall timeout while a follower is down, or the follower it hands leadership to is cut off mid-transfer",
		draw: func(o *Options, rng *sim.Rand) {
			o.Nodes = 3 + 2*rng.IntN(2)
			o.AcksWeights[1]++ // acks=1 writes are what a dropped proposal would lose
		}, plan: stepDownPlan},
	{Name: "overwrite", Summary: "3 nodes: a leader's batch reaches one follower whose disk stalls, the leader crashes before its own sync, and a leader elected without the batch overwrites it",
		draw: func(o *Options, rng *sim.Rand) {
			o.Nodes = 3
			o.Disk.TornKeepProb = 0.2 * rng.Float64() // the crashed leader should usually lose its unsynced batch
		}, plan: overwritePlan},
	{Name: "restart", Summary: "3 nodes: processes killed with the machine up right after a write, one log's recovery syncs stalled as each boots; fsync errors whose fail-stops are kills too",
		draw: func(o *Options, rng *sim.Rand) {
			o.Nodes = 3
			o.AcksWeights[1]++ // acks=1 records are what a killed node's page cache holds unsynced
			// Every death a kill: a fail-stop after a failed fsync restarts
			// over the pages Linux left clean (fsyncgate across a restart).
			o.KillProb = 1
			o.FaultWeights = map[FaultKind]int{FaultSyncEIO: 2, FaultStall: 1}
			o.FaultEvery = rng.Duration(500*time.Millisecond, 1500*time.Millisecond)
		}, plan: restartPlan},
	{Name: "corrupt", Summary: "3 nodes, one replica's synced Raft log or WAL corrupted (in budget: a minority), swarm of every other fault",
		draw: func(o *Options, rng *sim.Rand) {
			o.Nodes = 3
			swarmFaults(o, rng, clusterFaults)
			o.FaultWeights[FaultCorrupt] = 1
		}},
	{Name: "gray", Summary: "3 or 5 nodes, gray failure: fsync stalls (on the leader or a follower), pauses, one-way and flapping links, A1 judged", draw: func(o *Options, rng *sim.Rand) {
		o.Nodes = 3
		if rng.Chance(0.25) {
			o.Nodes = 5
		}
		// Stalls and pauses hit the leader as often as any node; one-way
		// cuts that heal within seconds make links flap; an isolation or a
		// bridge now and then; no crashes (gray failure is the node that
		// is sick, not dead). Spaced so that a healthy majority exists most
		// of the time and A1 has something to judge.
		// One log's stall (stall-log) as often as a node's: a hung-disk
		// check must time the oldest sync, not whichever completed last.
		o.FaultWeights = map[FaultKind]int{FaultStall: 5, FaultStallLog: 3, FaultPause: 2, FaultOneWay: 3, FaultIsolate: 1, FaultBridge: 1}
		o.FaultEvery = rng.Duration(time.Second, 2500*time.Millisecond)
		// Stalls up to 6 s: well past A1's bound, so a leader that sits on
		// a hung disk shows.
		o.FaultStallMax = 6 * time.Second
	}, plan: sickLogPlan},
}

var clusterFaults = []FaultKind{FaultCrash, FaultTornCrash, FaultCrashAll, FaultPause, FaultPartition, FaultIsolate,
	FaultOneWay, FaultBridge, FaultHeal, FaultStall, FaultSyncEIO, FaultWriteEIO, FaultDrop, FaultDup, FaultSkew}

// swarmFaults draws per-seed fault probabilities: each kind gets a weight
// in 0..3 (so some seeds never see a kind at all), and a fault rate.
func swarmFaults(o *Options, rng *sim.Rand, kinds []FaultKind) {
	o.FaultWeights = map[FaultKind]int{}
	any := false
	for _, k := range kinds {
		if w := rng.IntN(4); w > 0 {
			o.FaultWeights[k] = w
			any = true
		}
	}
	if !any {
		o.FaultWeights[kinds[rng.IntN(len(kinds))]] = 1
	}
	o.FaultEvery = rng.Duration(300*time.Millisecond, 2*time.Second)
	if rng.Chance(0.3) {
		o.Disk.StallProb = 0.01 * rng.Float64()
	}
	if rng.Chance(0.5) {
		o.Disk.TornKeepProb = rng.Float64()
	}
}

// Scenarios returns the catalogue sorted by name: every concrete
// scenario ("all" in a campaign), not the swarm scenario that draws among
// them.
func Scenarios() []Scenario {
	out := append([]Scenario(nil), catalogue...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup finds a scenario by name.
func Lookup(name string) (Scenario, error) {
	if name == SwarmScenario {
		return swarmScenario, nil
	}
	for _, s := range catalogue {
		if s.Name == name {
			return s, nil
		}
	}
	var names []string
	for _, s := range Scenarios() {
		names = append(names, s.Name)
	}
	return Scenario{}, fmt.Errorf("unknown scenario %q (known: %s, %s)", name, SwarmScenario, strings.Join(names, ", "))
}

// Draw derives the options of one run of the scenario from seed. The
// workload mix is drawn per seed as well (swarm testing). The swarm
// scenario's options are those of the scenario it draws for the seed
// (For), and their Scenario field names that one.
func (s Scenario) Draw(seed uint64) Options {
	if s.swarm {
		return s.For(seed).Draw(seed)
	}
	name := s.Name
	if s.optionsOf != "" {
		name = s.optionsOf
	}
	oseed := optionSeed(seed, name)
	rng := sim.NewStreams(oseed).Stream("options")
	o := Options{
		Scenario:      s.Name,
		Seed:          seed,
		Topics:        []node.TopicConfig{{Name: "t", Partitions: int32(1 + rng.IntN(2))}},
		AcksTimeout:   5 * time.Second,
		Producers:     2 + rng.IntN(15),
		AcksWeights:   [3]int{rng.IntN(3), rng.IntN(4), 1 + rng.IntN(4)},
		MaxBatchRecs:  1 + rng.IntN(4),
		MsgMin:        16,
		MsgMax:        16 + rng.IntN(1024),
		ThinkMin:      time.Millisecond,
		ThinkMax:      rng.Duration(2*time.Millisecond, 40*time.Millisecond),
		ClientLatency: rng.Duration(50*time.Microsecond, time.Millisecond),
		Consumers:     1 + rng.IntN(3),
		FetchEvery:    rng.Duration(5*time.Millisecond, 100*time.Millisecond),

		SafetyDuration:   rng.Duration(3*time.Second, 10*time.Second),
		LivenessDuration: 20 * time.Second,

		Disk:       sim.DefaultDiskConfig(),
		NetLatency: rng.Duration(100*time.Microsecond, 2*time.Millisecond),
	}
	o.NetJitter = o.NetLatency / 2
	// A client that hears nothing for ClientTimeout gives up (indeterminate)
	// and asks another node: that bounds how long a client stays stuck on
	// a silent node (a paused leader), which A1's bound includes. The
	// node's own timer (AcksTimeout) ends requests a live node holds.
	o.RequestTimeout = ClientTimeout
	// A quarter of the seeds get patient clients (ClientTimeoutPatient):
	// a request then outlives most leader changes, so a deposed leader's
	// late answers reach the client (the shape of Kafka's 30 s request
	// timeout). A1's bound grows with it. Its own stream, so no other
	// draw moves.
	if sim.NewStreams(oseed).Stream("options/client").Chance(0.25) {
		o.RequestTimeout = ClientTimeoutPatient
	}
	s.draw(&o, rng)
	drawSimFaultOptions(&o, oseed)
	drawKnobs(&o, oseed)
	drawTopics(&o, oseed)
	drawStandalonePath(&o, oseed)
	return o
}

// optionSeed is the seed a scenario draws a run's options from (workload,
// knobs, topics, disk semantics, kill rate): the run's seed mixed with the
// scenario's name (FNV-1a), so that a campaign of every scenario over
// seeds 1-4 draws 4 configurations per scenario, not the same 4 for all of
// them (a red-team bug behind a knob, Linger > 0, survived -scenario all
// -seeds 4 because seeds 1-4 never drew it, while 60 main-job seeds did in
// half the runs). The default scenario keeps the seed itself. The world's
// own randomness (network, disk, Raft) and the fault schedule still come
// from the seed; a pipelined or legacy twin draws with its original's
// name, so the two still differ only in the path.
func optionSeed(seed uint64, name string) uint64 {
	if name == "default" {
		return seed
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	return seed ^ h
}

// drawStandalonePath gives a one-node run any of the three paths, a third
// of the seeds each: node.Config takes every Path for a one-node cluster
// and a standalone node must run each as the batch path (it has no Raft).
// Code that read Config.Path where it meant "pipelined and clustered"
// (a red-team bug answered a standalone pipelined node's acks=-1 before
// its fsync) was out of every campaign's reach while one-node runs all
// drew the batch path. Its own stream, so no other draw moves.
func drawStandalonePath(o *Options, seed uint64) {
	if o.Nodes != 1 || o.Path != node.PathBatch {
		return
	}
	paths := []node.Path{node.PathBatch, node.PathPipelined, node.PathLegacy}
	o.Path = paths[sim.NewStreams(seed).Stream("options/standalone-path").IntN(len(paths))]
}

// drawTopics gives about a third of the seeds one or two more topics of
// one to three partitions besides "t": code that keys state by partition
// must tell topics apart (a red-team bug ordered partitions by number
// alone, so two topics' partition 0 ran in map order, and no run had two
// topics to show it). Its own stream, so no other draw moves, and a seed
// with one topic runs as it did.
func drawTopics(o *Options, seed uint64) {
	rng := sim.NewStreams(seed).Stream("options/topics")
	if !rng.Chance(0.35) {
		return
	}
	for i, n := 0, 1+rng.IntN(2); i < n; i++ {
		o.Topics = append(o.Topics, node.TopicConfig{Name: []string{"u", "v"}[i], Partitions: int32(1 + rng.IntN(3))})
	}
}
