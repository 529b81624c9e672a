package bench

import (
	"runtime"
	"syscall"
	"time"
)

// Cost is what the process spent per message acknowledged in the measured
// window. The process holds every node, every producer and the transport,
// so these are the whole cluster's costs; they are steadier than msg/s on a
// shared machine (other processes take wall time, not this process's CPU or
// system calls), which makes them the numbers to compare two builds by.
type Cost struct {
	// UserUs and SysUs are CPU microseconds (user, kernel) per message.
	UserUs float64 `json:"user_us"`
	SysUs  float64 `json:"sys_us"`
	// Cores is the CPU the process used over the window, in cores.
	Cores float64 `json:"cores"`
	// Fsyncs, FileWrites and NetFlushes count, per message, File.Sync and
	// SyncDir requests, File.Write calls and transport flushes (each about
	// one system call) of every node.
	Fsyncs     float64 `json:"fsyncs"`
	FileWrites float64 `json:"file_writes"`
	NetFlushes float64 `json:"net_flushes"`
	// Allocs and AllocBytes are heap allocations per message.
	Allocs     float64 `json:"allocs"`
	AllocBytes float64 `json:"alloc_bytes"`
}

// procSnap is a snapshot of the process's resource use.
type procSnap struct {
	user, sys         time.Duration
	mallocs, allocled uint64
}

func takeProcSnap() procSnap {
	var ru syscall.Rusage
	var s procSnap
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.user = time.Duration(ru.Utime.Nano())
		s.sys = time.Duration(ru.Stime.Nano())
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.mallocs, s.allocled = ms.Mallocs, ms.TotalAlloc
	return s
}

// costOf divides what was spent between two snapshots by msgs.
func costOf(p0, p1 procSnap, k0, k1 counters, msgs int64, window time.Duration) Cost {
	if msgs <= 0 {
		return Cost{}
	}
	n := float64(msgs)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / n }
	c := Cost{
		UserUs:     us(p1.user - p0.user),
		SysUs:      us(p1.sys - p0.sys),
		Fsyncs:     float64(k1.syncs-k0.syncs) / n,
		FileWrites: float64(k1.writes-k0.writes) / n,
		NetFlushes: float64(k1.flushes-k0.flushes) / n,
		Allocs:     float64(p1.mallocs-p0.mallocs) / n,
		AllocBytes: float64(p1.allocled-p0.allocled) / n,
	}
	if window > 0 {
		c.Cores = float64(p1.user-p0.user+p1.sys-p0.sys) / float64(window)
	}
	return c
}
