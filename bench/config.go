// Package bench runs walraft's real-runtime benchmark: the same core/node
// code the simulator tests, driven by core/osenv (real files with fsync, the
// wall clock, TCP on loopback, one event-loop goroutine per node), loaded by
// closed-loop in-process producers.
//
// Run builds a standalone node or a cluster in a fresh directory, waits for
// a leader, lets Config.Producers goroutines each keep exactly one produce
// request in flight for Warmup+Duration, records every acknowledged
// request's latency in an HDR histogram, then stops the producers and reads
// every acknowledged record back from the leader to check it sits at the
// offset it was acknowledged with. RunCeiling measures what the disk allows
// with no replication code at all: a raw group-commit loop on one file, and
// on three files acked when two have synced; Run reports its ratio to both
// when Config.Ceiling is set.
//
// Threading: a node is not safe for concurrent use, so every call into a node
// (Produce, Fetch, Status, ...) is a closure posted to that node's
// osenv.Loop; replies are made on the loop and handed to the producer
// goroutine through a channel. Nothing here changes the core's determinism
// rules: the real environment adapts to the core.
package bench

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"walraft/core/node"
)

// Modes of a run.
const (
	// ModeStandalone runs one node without Raft: acks=all behaves as acks=1.
	ModeStandalone = "standalone"
	// ModeCluster runs Config.Nodes nodes replicating with Raft over TCP on
	// 127.0.0.1.
	ModeCluster = "cluster"
)

// Topic is the topic every producer writes to.
const Topic = "bench"

// HeaderSize is the smallest record: 8 bytes of producer id and 8 bytes of
// sequence number; the rest of a record is filler.
const HeaderSize = 16

// Limits that keep a bad flag from turning into an unbounded allocation or a
// run nobody meant to start.
const (
	MaxNodes       = 9
	MaxProducers   = 10000
	MaxSize        = 1 << 20 // node.Config's default MaxRecordBytes
	MaxPartitions  = 1024
	MaxRunDuration = 24 * time.Hour
)

// Config configures a benchmark run. Start from DefaultConfig: Validate does
// not fill zero fields (acks=0 is a real value, so zero cannot mean
// "default").
type Config struct {
	// Mode is ModeStandalone or ModeCluster.
	Mode string
	// Nodes is the cluster size (2 to MaxNodes); standalone ignores it and
	// runs one node.
	Nodes int
	// Producers is the number of closed-loop producers, each with one
	// request in flight.
	Producers int
	// Duration is the measured window.
	Duration time.Duration
	// Warmup runs the producers before the measured window; its requests
	// are acknowledged and verified but not counted in the rates or the
	// histogram.
	Warmup time.Duration
	// Acks is the acknowledgement level of every request.
	Acks node.Acks
	// Size is the record size in bytes (HeaderSize to MaxSize).
	Size int
	// Path selects batched, legacy per-record or pipelined Raft proposals.
	Path node.Path
	// Dir is where the run's files go: a fresh directory is made inside it
	// (inside os.TempDir when empty) and removed when the run ends.
	Dir string
	// Progress, when set, is called about once a second during the
	// measured window with the records the nodes' WALs have written since
	// the window began and the time since then (walraft bench shows a
	// live msg/s line on a terminal with it).
	Progress func(records int64, elapsed time.Duration)
	// Partitions of the topic; producer i writes to partition i mod
	// Partitions.
	Partitions int
	// KillLeaderAfter, when non-zero, kills the leader that long into the
	// measured window (cluster only): its loop and transport stop and its
	// files are closed without a sync, and the producers carry on with the
	// new leader.
	KillLeaderAfter time.Duration
	// StallLeaderDiskAfter, when non-zero, holds the leader's fsyncs that
	// long into the measured window, for StallFor (cluster only; see
	// stall.go): a hung disk on a leader whose loop and network are fine.
	StallLeaderDiskAfter time.Duration
	StallFor             time.Duration
	// ElectionTimeout is the Raft election timeout of every node, in
	// multiples of the node's 10 ms tick, with the heartbeat at a tenth of
	// it; 0 keeps the node's default (100 ms, tuned for the simulator's
	// quick failovers). On a shared machine an fsync stall or a loop busy
	// with a large backlog can exceed 100 ms: with it, 10 s cluster runs saw
	// needless leader changes (and, for acks=0/1, the loss they allow).
	// DefaultConfig uses 500 ms.
	ElectionTimeout time.Duration
	// Procs is GOMAXPROCS while the run lasts (restored afterwards); 0
	// leaves it alone. An fsync is a blocking system call that keeps its
	// P (Go's scheduler slot) until the runtime's monitor takes it back,
	// which can take milliseconds; with GOMAXPROCS at the CPU count, a few
	// fsyncs in flight (3 nodes x WAL + Raft log, or the quorum ceiling's
	// 3 files) leave no P for the loops and producers. On 2 CPUs that
	// alone cut the quorum ceiling from about 66k to 50k msg/s (16
	// producers: 34k to 11k). DefaultConfig uses DefaultProcs.
	Procs int
	// CriticalPath also times each batch's steps from proposal to apply on
	// the leader (Result.CriticalPath; see CriticalPath). It needs a
	// 3-node cluster with one partition, and costs some CPU.
	CriticalPath bool
	// Ceiling also runs RunCeiling after the cluster has shut down and
	// reports the run's ratio to both ceilings.
	Ceiling bool
	// Tune, when set, adjusts each node's configuration before the node
	// starts (for experiments: Raft tick, WAL batching, limits).
	Tune func(*node.Config)
	// Logf, when set, receives progress lines (leader elected, leader
	// killed, verification). It may be called from several goroutines.
	Logf func(format string, args ...any)
}

// DefaultConfig returns the defaults of `walraft bench`: a 3-node cluster,
// 64 producers, 20 s measured after a 2 s warmup, acks=all, 256-byte
// records, the batch path, one partition, GOMAXPROCS DefaultProcs and a
// 500 ms Raft election timeout.
func DefaultConfig() Config {
	return Config{
		Mode:            ModeCluster,
		Nodes:           3,
		Producers:       64,
		Duration:        20 * time.Second,
		Warmup:          2 * time.Second,
		Acks:            node.AcksAll,
		Size:            256,
		Path:            node.PathBatch,
		Partitions:      1,
		Procs:           DefaultProcs(),
		ElectionTimeout: 500 * time.Millisecond,
	}
}

// DefaultProcs is the default Config.Procs: the CPU count, at least 8 (see
// Config.Procs).
func DefaultProcs() int { return max(8, runtime.NumCPU()) }

// MaxProcs bounds Config.Procs.
const MaxProcs = 1024

// setProcs applies Config.Procs and returns what restores the old value.
func (c Config) setProcs() (restore func()) {
	if c.Procs <= 0 {
		return func() {}
	}
	old := runtime.GOMAXPROCS(c.Procs)
	return func() { runtime.GOMAXPROCS(old) }
}

// ErrConfig is wrapped by every error Validate returns.
var ErrConfig = errors.New("bench: bad config")

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	switch c.Mode {
	case ModeStandalone:
		if c.KillLeaderAfter != 0 || c.StallLeaderDiskAfter != 0 {
			return bad("-kill-leader-after and -stall-leader-disk-after need -mode cluster (a standalone node has no one to take over)")
		}
	case ModeCluster:
		if c.Nodes < 2 || c.Nodes > MaxNodes {
			return bad("cluster of %d nodes (2 to %d allowed)", c.Nodes, MaxNodes)
		}
	default:
		return bad("mode %q (want %q or %q)", c.Mode, ModeStandalone, ModeCluster)
	}
	switch {
	case c.Producers < 1 || c.Producers > MaxProducers:
		return bad("%d producers (1 to %d allowed)", c.Producers, MaxProducers)
	case c.Duration <= 0 || c.Duration > MaxRunDuration:
		return bad("duration %v (must be in (0, %v])", c.Duration, MaxRunDuration)
	case c.Warmup < 0 || c.Warmup > MaxRunDuration:
		return bad("warmup %v (must be in [0, %v])", c.Warmup, MaxRunDuration)
	case c.Acks != node.AcksNone && c.Acks != node.AcksLeader && c.Acks != node.AcksAll:
		return bad("acks %d (want 0, 1 or -1)", c.Acks)
	case c.Size < HeaderSize || c.Size > MaxSize:
		return bad("record size %d (%d to %d bytes allowed)", c.Size, HeaderSize, MaxSize)
	case c.Path != node.PathBatch && c.Path != node.PathLegacy && c.Path != node.PathPipelined:
		return bad("path %d", c.Path)
	case c.Partitions < 1 || c.Partitions > MaxPartitions:
		return bad("%d partitions (1 to %d allowed)", c.Partitions, MaxPartitions)
	case c.ElectionTimeout != 0 && (c.ElectionTimeout < 10*tick || c.ElectionTimeout > time.Minute):
		return bad("election timeout %v (0, or %v to 1m)", c.ElectionTimeout, 10*tick)
	case c.Procs < 0 || c.Procs > MaxProcs:
		return bad("procs %d (0 to %d allowed)", c.Procs, MaxProcs)
	case c.KillLeaderAfter < 0 || (c.KillLeaderAfter > 0 && c.KillLeaderAfter >= c.Duration):
		return bad("-kill-leader-after %v must be 0 or inside the %v window (-duration)", c.KillLeaderAfter, c.Duration)
	case c.StallLeaderDiskAfter < 0 || (c.StallLeaderDiskAfter > 0 && c.StallLeaderDiskAfter >= c.Duration):
		return bad("-stall-leader-disk-after %v must be 0 or inside the %v window (-duration)", c.StallLeaderDiskAfter, c.Duration)
	case (c.StallLeaderDiskAfter > 0) != (c.StallFor > 0) || c.StallFor < 0 || c.StallFor > MaxRunDuration:
		return bad("-stall-for %v: set it (positive, at most %v) exactly when -stall-leader-disk-after is set", c.StallFor, MaxRunDuration)
	case c.StallLeaderDiskAfter > 0 && c.KillLeaderAfter > 0:
		return bad("one drill per run: -kill-leader-after or -stall-leader-disk-after")
	case c.CriticalPath && (c.Mode != ModeCluster || c.Nodes != 3 || c.Partitions != 1):
		return bad("-critical-path needs -mode cluster, 3 nodes and 1 partition")
	}
	return nil
}

// tick is the node's Raft tick (node.Config's default TickInterval).
const tick = 10 * time.Millisecond

// raftTiming applies ElectionTimeout to a node's config.
func (c Config) raftTiming(n *node.Config) {
	if c.ElectionTimeout == 0 {
		return
	}
	n.TickInterval = tick
	n.ElectionTicks = int(c.ElectionTimeout / tick)
	n.HeartbeatTicks = max(1, n.ElectionTicks/10)
}

// nodeCount is the number of nodes the run starts.
func (c Config) nodeCount() int {
	if c.Mode == ModeStandalone {
		return 1
	}
	return c.Nodes
}

func (c Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// ParseAcks parses the CLI spelling of an acks level: "0", "1", "all" or
// "-1".
func ParseAcks(s string) (node.Acks, error) {
	switch s {
	case "0":
		return node.AcksNone, nil
	case "1":
		return node.AcksLeader, nil
	case "all", "-1":
		return node.AcksAll, nil
	}
	return 0, fmt.Errorf("%w: acks %q (want 0, 1 or all)", ErrConfig, s)
}

// ParsePath parses the CLI spelling of a proposal path: "batch", "legacy"
// or "pipelined".
func ParsePath(s string) (node.Path, error) {
	switch s {
	case "batch":
		return node.PathBatch, nil
	case "legacy":
		return node.PathLegacy, nil
	case "pipelined":
		return node.PathPipelined, nil
	}
	return 0, fmt.Errorf("%w: path %q (want batch, legacy or pipelined)", ErrConfig, s)
}
