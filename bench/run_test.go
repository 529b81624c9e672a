package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"walraft/core/node"
)

// shortConfig is a run small enough for `go test`: 16 producers, 64-byte
// records, a 1 s window after a short warmup.
func shortConfig(t testing.TB, mode string, acks node.Acks) Config {
	c := DefaultConfig()
	c.Mode = mode
	c.Acks = acks
	c.Producers = 16
	c.Size = 64
	c.Warmup = 100 * time.Millisecond
	c.Duration = time.Second
	c.Dir = t.TempDir()
	c.Logf = t.Logf
	return c
}

// checkRun fails t unless the run acknowledged something, lost nothing and
// verified everything it acknowledged.
func checkRun(t *testing.T, r Result) {
	t.Helper()
	var b strings.Builder
	r.Print(&b)
	t.Log("\n" + b.String())
	switch {
	case r.Acked == 0 || r.MsgsPerSec <= 0:
		t.Fatalf("nothing acknowledged")
	case r.Lost != 0:
		t.Fatalf("lost %d acknowledged records: %v", r.Lost, r.LostSamples)
	case r.Verified != r.Acked:
		t.Fatalf("verified %d of %d acknowledged", r.Verified, r.Acked)
	case r.P50Ms <= 0 || r.P99Ms < r.P50Ms || r.MaxMs < r.P99Ms:
		t.Fatalf("latency summary out of order: %+v", r.Latency)
	case r.FsyncsPerSec <= 0:
		t.Fatalf("no fsyncs counted")
	case r.Acks != "0" && r.MeanBatch < 1:
		t.Fatalf("mean batch %v", r.MeanBatch)
	case r.Cost.UserUs+r.Cost.SysUs <= 0 || r.Cost.Cores <= 0:
		t.Fatalf("no CPU counted: %+v", r.Cost)
	case r.Acks != "0" && (r.Cost.Fsyncs <= 0 || r.Cost.FileWrites <= 0):
		t.Fatalf("no fsyncs or file writes per message counted: %+v", r.Cost)
	case r.Nodes > 1 && r.Cost.NetFlushes <= 0:
		t.Fatalf("a cluster flushed nothing to the network: %+v", r.Cost)
	case r.Cost.Allocs <= 0 || r.Cost.AllocBytes <= 0:
		t.Fatalf("no allocations counted: %+v", r.Cost)
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		mode  string
		acks  node.Acks
		path  node.Path
		parts int
	}{
		{ModeStandalone, node.AcksNone, node.PathBatch, 1},
		{ModeStandalone, node.AcksLeader, node.PathBatch, 1},
		{ModeStandalone, node.AcksAll, node.PathBatch, 2},
		{ModeCluster, node.AcksLeader, node.PathBatch, 1},
		{ModeCluster, node.AcksAll, node.PathBatch, 1},
		{ModeCluster, node.AcksAll, node.PathLegacy, 2},
		{ModeCluster, node.AcksAll, node.PathPipelined, 1},
		{ModeCluster, node.AcksLeader, node.PathPipelined, 2},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/acks=%s/%s/partitions=%d", tc.mode, tc.acks, tc.path, tc.parts), func(t *testing.T) {
			cfg := shortConfig(t, tc.mode, tc.acks)
			cfg.Path = tc.path
			cfg.Partitions = tc.parts
			r, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkRun(t, r)
			if r.Mode != tc.mode || r.Acks != tc.acks.String() || r.Path != tc.path.String() || r.Partitions != tc.parts {
				t.Fatalf("result describes another run: %+v", r)
			}
			if want := cfg.nodeCount(); r.Nodes != want {
				t.Fatalf("nodes %d, want %d", r.Nodes, want)
			}
		})
	}
}

// TestKillLeader kills the leader of a 3-node cluster mid-run: a new leader
// takes over, the producers carry on, and no acks=all record is lost.
func TestKillLeader(t *testing.T) {
	cfg := shortConfig(t, ModeCluster, node.AcksAll)
	cfg.Duration = 3 * time.Second
	cfg.KillLeaderAfter = 800 * time.Millisecond
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, r)
	if r.KilledLeader == 0 || r.NewLeader == 0 || r.NewLeader == r.KilledLeader {
		t.Fatalf("killed %d, new leader %d", r.KilledLeader, r.NewLeader)
	}
	if r.AckedAfterKill == 0 || r.FailoverMs <= 0 {
		t.Fatalf("%d acknowledged after the kill, the first after %v ms: the producers did not carry on", r.AckedAfterKill, r.FailoverMs)
	}
}

// TestStallLeaderDisk holds the leader's fsyncs for 2.5 s mid-run, with the
// node's default 1 s DiskStallTimeout: another node takes over and
// acknowledges while the stall lasts, the longest stretch without an ack is
// well below the stall, and no acks=all record is lost.
func TestStallLeaderDisk(t *testing.T) {
	cfg := shortConfig(t, ModeCluster, node.AcksAll)
	cfg.Duration = 4 * time.Second
	cfg.StallLeaderDiskAfter = 500 * time.Millisecond
	cfg.StallFor = 2500 * time.Millisecond
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, r)
	t.Logf("stalled %d, new leader %d, first ack by another node after %.0f ms, longest gap %.0f ms at %.0f ms",
		r.StalledLeader, r.NewLeader, r.StallFailoverMs, r.NoAckGapMs, r.NoAckGapAtMs)
	if r.StalledLeader == 0 || r.StallFailoverMs <= 0 || r.StallFailoverMs >= 2500 {
		t.Fatalf("stalled %d: no other node acknowledged within the 2.5 s stall (first after %v ms)", r.StalledLeader, r.StallFailoverMs)
	}
	if r.NoAckGapMs >= 2500 {
		t.Fatalf("no ack for %v ms: the cluster waited out the stall", r.NoAckGapMs)
	}
}

func TestRunCancel(t *testing.T) {
	cfg := shortConfig(t, ModeStandalone, node.AcksLeader)
	cfg.Duration = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	r, err := Run(ctx, cfg)
	if err != context.DeadlineExceeded {
		t.Fatalf("Run = %v, want DeadlineExceeded", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("cancellation did not end the run")
	}
	checkRun(t, r)
}

func TestRunCeiling(t *testing.T) {
	cfg := shortConfig(t, ModeStandalone, node.AcksLeader)
	cfg.Duration = 500 * time.Millisecond
	c, err := RunCeiling(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", c)
	for _, run := range []CeilingRun{c.OneFile, c.Quorum, c.WALThenQuorum} {
		if run.MsgsPerSec <= 0 || run.P99Ms <= 0 || run.FsyncsPerSec <= 0 || run.MeanBatch < 1 {
			t.Fatalf("empty ceiling run: %+v", run)
		}
	}
	if c.OneFile.Files != 1 || c.Quorum.Files != 3 || c.Quorum.Quorum != 2 ||
		c.WALThenQuorum.Shape != "1 file, then 2 of 3 files" || c.WALThenQuorum.Quorum != 2 {
		t.Fatalf("wrong shapes: %+v", c)
	}
	// Two fsyncs in series cannot beat one: every record waits for both.
	if c.WALThenQuorum.P50Ms < c.Quorum.P50Ms/2 {
		t.Errorf("two-stage p50 %.3f ms is below half the one-stage p50 %.3f ms", c.WALThenQuorum.P50Ms, c.Quorum.P50Ms)
	}
	// Nothing left behind.
	if ents, err := os.ReadDir(cfg.Dir); err != nil || len(ents) != 0 {
		t.Fatalf("run directory not cleaned: %v %v", ents, err)
	}
}
