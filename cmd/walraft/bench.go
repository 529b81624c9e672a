package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"

	"walraft/bench"
)

// The bench command drives the real runtime (package bench): the same core
// on real files with fsync, the wall clock and TCP on loopback.
func init() {
	commands = append(commands, command{
		name:    "bench",
		args:    "[-mode standalone|cluster] [-nodes 3] [-producers 64] [-duration 20s] [-warmup 2s] [-acks 0|1|all] [-size 256] [-path batch|legacy|pipelined] [-partitions 1] [-dir DIR] [-kill-leader-after D] [-stall-leader-disk-after D -stall-for S] [-ceiling] [-critical-path] [-cpuprofile FILE] [-memprofile FILE] [-json]",
		summary: "benchmark the real runtime with closed-loop producers, then verify every acknowledged message",
		run:     cmdBench,
	})
}

func cmdBench(args []string, st stdio) int {
	def := bench.DefaultConfig()
	fs := newFlags("bench", st)
	mode := fs.String("mode", def.Mode, "`standalone` (one node, no Raft) or cluster")
	nodes := fs.Int("nodes", def.Nodes, "cluster size (cluster mode)")
	producers := fs.Int("producers", def.Producers, "closed-loop producers")
	duration := fs.Duration("duration", def.Duration, "measured window")
	warmup := fs.Duration("warmup", def.Warmup, "unmeasured warm-up before the window")
	acks := fs.String("acks", "all", "acks level: 0, 1 or all (-1)")
	size := fs.Int("size", def.Size, "record size in bytes")
	path := fs.String("path", def.Path.String(), "proposal path: batch, legacy (one Raft entry per record) or pipelined (proposed while the WAL fsync runs)")
	partitions := fs.Int("partitions", def.Partitions, "partitions of the one topic")
	dir := fs.String("dir", "", "directory for the nodes' files (default: a temporary directory)")
	kill := fs.Duration("kill-leader-after", 0, "kill the leader this long into the window (0: never)")
	stallAfter := fs.Duration("stall-leader-disk-after", 0, "hold the leader's fsyncs this long into the window (0: never), for -stall-for")
	stallFor := fs.Duration("stall-for", 0, "how long -stall-leader-disk-after holds the leader's fsyncs")
	ceiling := fs.Bool("ceiling", false, "also measure the raw group-commit ceilings (one file; three files acked on two syncs; one file, then three acked on two)")
	critPath := fs.Bool("critical-path", false, "also time each batch's steps from proposal to apply on the leader (leader and follower fsyncs, the network, the quorum); 3-node cluster, 1 partition; decodes every Raft message, which costs some CPU")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (warm-up, window and verification; every node, producer and the ceilings share the process) to `FILE`, for go tool pprof")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the whole run to `FILE` when it ends, for go tool pprof -sample_index=alloc_space")
	if _, code := parseFlags(fs, args, 0, 0); code >= 0 {
		return code
	}
	cfg := def
	cfg.Mode, cfg.Nodes, cfg.Producers, cfg.Duration, cfg.Warmup = *mode, *nodes, *producers, *duration, *warmup
	cfg.Size, cfg.Partitions, cfg.Dir, cfg.KillLeaderAfter, cfg.Ceiling = *size, *partitions, *dir, *kill, *ceiling
	cfg.CriticalPath = *critPath
	cfg.StallLeaderDiskAfter, cfg.StallFor = *stallAfter, *stallFor
	var err error
	if cfg.Acks, err = bench.ParseAcks(*acks); err != nil {
		return usageErr(st, "bench", "%s", benchMsg(err))
	}
	if cfg.Path, err = bench.ParsePath(*path); err != nil {
		return usageErr(st, "bench", "%s", benchMsg(err))
	}
	if err := cfg.Validate(); err != nil {
		return usageErr(st, "bench", "%s", benchMsg(err))
	}
	if code := checkOutPaths(st, "bench", []outFlag{{"-dir", cfg.Dir, true}, {"-cpuprofile", *cpuProfile, false}, {"-memprofile", *memProfile, false}}); code >= 0 {
		return code
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return usageErr(st, "bench", "-cpuprofile: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return usageErr(st, "bench", "-cpuprofile: %v", err)
		}
		defer pprof.StopCPUProfile()
	}
	if !*asJSON {
		live := isTerminal(st.err)
		cfg.Logf = func(format string, a ...any) {
			if live {
				fmt.Fprint(st.err, "\r\x1b[K") // over the progress line
			}
			fmt.Fprintf(st.err, format+"\n", a...)
		}
		if live {
			cfg.Progress = func(records int64, el time.Duration) {
				fmt.Fprintf(st.err, "\r\x1b[Kbench: %s of %s: %d records, %.0f msg/s so far", fmtDur(el), fmtDur(cfg.Duration), records, float64(records)/el.Seconds())
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := bench.Run(ctx, cfg)
	if *memProfile != "" {
		if code := writeHeapProfile(st, *memProfile); code >= 0 {
			return code
		}
	}
	if cfg.Progress != nil {
		fmt.Fprint(st.err, "\r\x1b[K")
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(st.err, "walraft bench: %s\n", benchMsg(err))
		return exitFail
	}
	if *asJSON {
		b, jerr := res.JSON()
		if jerr != nil {
			fmt.Fprintf(st.err, "walraft bench: %s\n", benchMsg(jerr))
			return exitFail
		}
		fmt.Fprintln(st.out, string(b))
	} else if perr := res.Print(st.out); perr != nil {
		fmt.Fprintf(st.err, "walraft bench: %s\n", benchMsg(perr))
		return exitFail
	}
	if res.Lost > 0 && ((cfg.Mode == bench.ModeStandalone && cfg.Acks != 0) || cfg.Acks == -1) {
		fmt.Fprintf(st.err, "walraft bench: %d acknowledged messages lost\n", res.Lost)
		return exitFail
	}
	return exitOK
}

// benchMsg is a bench error without the package's own "bench: " prefix,
// which the CLI's "walraft bench: " already says.
func benchMsg(err error) string { return strings.TrimPrefix(err.Error(), "bench: ") }

// isTerminal reports whether w is a terminal (a live progress line makes
// sense there, not in a file or a pipe).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// writeHeapProfile writes the allocation profile so far to name; it returns
// an exit code on failure and -1 on success.
func writeHeapProfile(st stdio, name string) int {
	f, err := os.Create(name)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(st.err, "walraft bench: -memprofile: %v\n", err)
		return exitFail
	}
	return -1
}
