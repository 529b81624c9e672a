package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"sync"
)

// The garbage collector settings of a process that runs simulations,
// unless the GOGC or GOMEMLIMIT environment variable says otherwise.
//
// A run allocates its live heap many times over (a calm 10 s run at 1,000
// msg/s allocates about 350 MB for a live heap under 100 MB), so at the
// default GOGC of 100 the collector runs dozens of times a run. At 400 it
// runs about a quarter as often and the simulator is 15-20% faster; 800
// measured no faster. The heap then grows to about 5x the live heap, which
// for a big run (10,000 msg/s: ~500 MB live) costs more in page faults on
// fresh memory than the collections it saves, so a soft memory limit of
// 2 GiB caps it: past it the collector runs as needed to stay there.
// Measured (scenarios.BenchmarkSimSpeed, one core, against GOGC=100):
// load=1000 22.6 -> 26.6 sim-s/s, load=10000 5.6 -> 7.0 sim-s/s (GOGC=400
// without the limit: 3.8); peak RSS of `walraft run -scenario calm` 153 ->
// 230 MB, of one load=10000 benchmark run 0.8 -> 1.0 GB.
const (
	simGCPercent   = 400
	simMemoryLimit = 2 << 30
)

var simGCOnce sync.Once

// tuneGC applies simGCPercent and simMemoryLimit once per process, each
// unless its environment variable is set, and turns off the runtime's
// sampling of allocations for memory profiles: the CLI never writes one,
// and each sample (one per 512 KiB allocated) walks the allocating stack,
// which in a simulation is deep: 1.3% of a load=1000 run's instructions
// (callgrind).
func tuneGC() {
	simGCOnce.Do(func() {
		runtime.MemProfileRate = 0
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(simGCPercent)
		}
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(simMemoryLimit)
		}
	})
}
