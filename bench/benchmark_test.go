package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"walraft/core/node"
)

// benchWindow is the measured window of each Go benchmark iteration:
// $WALRAFT_BENCH_DURATION (a Go duration) or 3 s, after a 2 s warmup. Each
// iteration is a whole Run, so b.N stays 1 unless -benchtime asks for more;
// -benchtime 3x reports the median of 3 runs (after one more the testing
// package makes first).
func benchWindow(b *testing.B) time.Duration {
	if s := os.Getenv("WALRAFT_BENCH_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatalf("WALRAFT_BENCH_DURATION: %v", err)
		}
		return d
	}
	return 3 * time.Second
}

// benchDir is $WALRAFT_BENCH_DIR (to measure a particular disk) or a
// temporary directory.
func benchDir(b *testing.B) string {
	if d := os.Getenv("WALRAFT_BENCH_DIR"); d != "" {
		return d
	}
	return b.TempDir()
}

// median returns the median of v (the mean of the middle two for an even
// count); -benchtime 3x gives the median of 3 runs.
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// BenchmarkRun runs the matrix with 64 producers: standalone and a
// 3-node cluster, acks 0/1/all, 256 B and 1 KiB, batch and legacy paths.
// Select with -bench, e.g. -bench 'Run/cluster/acks=all/size=1024/batch'.
func BenchmarkRun(b *testing.B) {
	for _, mode := range []string{ModeStandalone, ModeCluster} {
		for _, acks := range []node.Acks{node.AcksNone, node.AcksLeader, node.AcksAll} {
			for _, size := range []int{256, 1024} {
				for _, path := range []node.Path{node.PathBatch, node.PathLegacy, node.PathPipelined} {
					name := fmt.Sprintf("%s/acks=%s/size=%d/%s", mode, acks, size, path)
					b.Run(name, func(b *testing.B) {
						cfg := DefaultConfig()
						cfg.Mode, cfg.Acks, cfg.Size, cfg.Path = mode, acks, size, path
						cfg.Duration, cfg.Warmup, cfg.Dir = benchWindow(b), 2*time.Second, benchDir(b)
						var msgs, p50, p99 []float64
						for range b.N {
							r, err := Run(context.Background(), cfg)
							if err != nil {
								b.Fatal(err)
							}
							if r.Lost != 0 && (cfg.Mode == ModeStandalone && cfg.Acks != node.AcksNone || cfg.Acks == node.AcksAll) {
								b.Fatalf("lost %d acknowledged records: %v", r.Lost, r.LostSamples)
							}
							b.Logf("run: %.0f msg/s, p50 %.2f ms, p99 %.2f ms", r.MsgsPerSec, r.P50Ms, r.P99Ms)
							msgs = append(msgs, r.MsgsPerSec)
							p50 = append(p50, r.P50Ms)
							p99 = append(p99, r.P99Ms)
						}
						b.ReportMetric(median(msgs), "msgs/s")
						b.ReportMetric(median(p50), "p50-ms")
						b.ReportMetric(median(p99), "p99-ms")
					})
				}
			}
		}
	}
}

// BenchmarkCeiling measures the raw group-commit ceilings (one file; 2 of 3
// files; one file then 2 of 3 files) with 64 producers for 256 B and 1 KiB
// records.
func BenchmarkCeiling(b *testing.B) {
	for _, size := range []int{256, 1024} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Size, cfg.Duration, cfg.Warmup, cfg.Dir = size, benchWindow(b), 2*time.Second, benchDir(b)
			var oneMsgs, oneP99, qMsgs, qP99, wqMsgs, wqP99 []float64
			for range b.N {
				c, err := RunCeiling(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				oneMsgs = append(oneMsgs, c.OneFile.MsgsPerSec)
				oneP99 = append(oneP99, c.OneFile.P99Ms)
				qMsgs = append(qMsgs, c.Quorum.MsgsPerSec)
				qP99 = append(qP99, c.Quorum.P99Ms)
				wqMsgs = append(wqMsgs, c.WALThenQuorum.MsgsPerSec)
				wqP99 = append(wqP99, c.WALThenQuorum.P99Ms)
			}
			b.ReportMetric(median(oneMsgs), "one-file-msgs/s")
			b.ReportMetric(median(oneP99), "one-file-p99-ms")
			b.ReportMetric(median(qMsgs), "quorum-msgs/s")
			b.ReportMetric(median(qP99), "quorum-p99-ms")
			b.ReportMetric(median(wqMsgs), "wal-then-quorum-msgs/s")
			b.ReportMetric(median(wqP99), "wal-then-quorum-p99-ms")
		})
	}
}
