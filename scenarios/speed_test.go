package scenarios

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// BenchmarkSimSpeed measures how fast the simulator runs the default
// 3-node cluster (no faults) at offered loads of about 100, 1,000 and
// 10,000 simulated messages per second from 64 closed-loop producers
// (one record per request, think time set so 64 producers offer the load).
// It reports
//
//	sim-s/s     simulated seconds per wall second (the speed-up over real time)
//	events/s    scheduler events per wall second
//	msgs/s      simulated messages (records produced) per wall second
//	sim-msg/s   the load actually reached, in simulated messages per simulated second
//
// Wall time is measured around Run, so it includes building the cluster and
// checking the history. Run with
//
//	go test ./scenarios -run '^$' -bench SimSpeed -benchtime 3x -cpu 1
//
// The floor is 100x real time at 1,000 msg/s on one core; the goal 1,000x.
//
// Like the CLI (cmd/walraft/gc.go, where the numbers are), the benchmark
// runs with GOGC=400 and a soft memory limit of 2 GiB unless the GOGC or
// GOMEMLIMIT environment variable is set: a run allocates its live heap many
// times over, and 400 is about 15-20% faster than the default 100. Like
// the CLI, it samples no allocations for a memory profile unless one is
// asked for (-test.memprofile): a sample walks a deep stack, 1.3% of a
// run's instructions.
func BenchmarkSimSpeed(b *testing.B) {
	if f := flag.Lookup("test.memprofile"); f == nil || f.Value.String() == "" {
		defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
		runtime.MemProfileRate = 0
	}
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(speedGCPercent))
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(speedMemoryLimit))
	}
	for _, load := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("load=%d", load), func(b *testing.B) {
			o := speedOptions(b, load)
			var sim, wall time.Duration
			var events uint64
			var msgs int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				o.Seed = uint64(i + 1)
				start := time.Now()
				res, err := Run(o, RunConfig{})
				w := time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if !res.OK() {
					b.Fatalf("seed %d violated %v:\n%s", o.Seed, res.Invariants(), res.Report.String())
				}
				sim += res.SimTime
				wall += w
				events += res.Events
				msgs += res.Messages
			}
			b.ReportMetric(sim.Seconds()/wall.Seconds(), "sim-s/s")
			b.ReportMetric(float64(events)/wall.Seconds(), "events/s")
			b.ReportMetric(float64(msgs)/wall.Seconds(), "msgs/s")
			b.ReportMetric(float64(msgs)/sim.Seconds(), "sim-msg/s")
		})
	}
}

// The collector settings of BenchmarkSimSpeed (see there).
const (
	speedGCPercent   = 400
	speedMemoryLimit = 2 << 30
)

// speedOptions builds the benchmark's options: the calm scenario's draw for
// seed 1, 64 producers, one record per request, and think times around
// 64/load seconds so the producers offer about load messages per second
// (less when replies take a noticeable part of the think time).
func speedOptions(b *testing.B, load int) Options {
	b.Helper()
	sc, err := Lookup("calm")
	if err != nil {
		b.Fatal(err)
	}
	o := sc.Draw(1)
	o.Producers = 64
	o.MaxBatchRecs = 1
	mean := time.Duration(float64(o.Producers) / float64(load) * float64(time.Second))
	o.ThinkMin, o.ThinkMax = mean/2, mean*3/2
	o.Consumers = 1
	o.SafetyDuration = 10 * time.Second
	if err := o.Validate(); err != nil {
		b.Fatal(err)
	}
	return o
}
