package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"walraft/scenarios"
	"walraft/sim"
)

// The test binary doubles as the walraft binary: a campaign re-executes
// os.Executable() as its workers, which in a test is this binary, so
// TestMain turns into the CLI when envCLI is set. envFake names the fake
// simulation the CLI uses ("" = the real harness), in this process and in
// the workers it starts.
const (
	envCLI  = "WALRAFT_TEST_CLI"
	envFake = "WALRAFT_TEST_FAKE"
)

func TestMain(m *testing.M) {
	if os.Getenv(envCLI) == "1" {
		if f := os.Getenv(envFake); f != "" {
			runSim = fakeRun(f)
		}
		os.Exit(cli(os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}))
	}
	os.Setenv(envCLI, "1") // for the worker processes campaigns start
	os.Exit(m.Run())
}

// useFake makes this process and the workers it starts run the named fake
// simulation ("" = the real harness) for the rest of the test.
func useFake(t *testing.T, mode string) {
	t.Helper()
	saved := runSim
	t.Cleanup(func() { runSim = saved })
	t.Setenv(envFake, mode)
	if mode == "" {
		runSim = scenarios.Run
	} else {
		runSim = fakeRun(mode)
	}
}

// runCLI runs one command line in this process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli(args, stdio{in: strings.NewReader(""), out: &out, err: &errb})
	if s := errb.String(); strings.Contains(s, "goroutine ") || strings.Contains(s, "panic(") {
		t.Errorf("walraft %s printed a stack trace:\n%s", strings.Join(args, " "), s)
	}
	return code, out.String(), errb.String()
}

// The fake simulation: a small deterministic function of the options and
// the schedule, with the shape of a real run, so the CLI's plumbing
// (workers, cases, replay, minimize, merge) is tested without the harness.
//
// Without an explicit schedule, seed k gets six filler faults (dup windows)
// plus a crash of node 1 when k%3 == 0, else a pause of node 2. A run
// violates S1 when it runs a variant, its schedule crashes node 1 for at
// least 5ms and it has at least 2 producers: so with a variant exactly the
// seeds divisible by 3 fail, and minimisation can drop the fillers, shorten
// the crash and lower the producers.
//
// Modes: "basic"; "nondet" (seed 1's trace includes the process id, as a
// real nondeterminism bug would); "panic" (seed 4 panics); "exit" (seed 8
// kills its worker process); "hang" (seed 5 never returns, a run stuck
// inside one event); "seedy" (as basic, but only odd seeds violate:
// a fixed schedule then passes some seeds and fails others, as a real one
// does).
func fakeRun(mode string) func(scenarios.Options, scenarios.RunConfig) (*scenarios.Result, error) {
	return func(o scenarios.Options, rc scenarios.RunConfig) (*scenarios.Result, error) {
		if err := o.Validate(); err != nil {
			return nil, err
		}
		switch {
		case mode == "panic" && o.Seed == 4:
			panic("fake: invariant broken inside the node (seed 4)")
		case mode == "exit" && o.Seed == 8:
			fmt.Fprintln(os.Stderr, "fake: fatal error: out of memory (seed 8)")
			os.Exit(3)
		case mode == "hang" && o.Seed == 5:
			select {}
		}
		s := rc.Schedule
		if !rc.UseSchedule {
			s = fakeSchedule(o.Seed)
		}
		tr, err := sim.NewTrace(sim.TraceConfig{Record: rc.RecordTrace, Ring: rc.TraceTail})
		if err != nil {
			return nil, err
		}
		if rc.OnTrace != nil {
			tr.SetListener(rc.OnTrace)
		}
		for i := 0; i < 60; i++ {
			e := sim.TraceEvent{At: time.Duration(i) * 100 * time.Millisecond, Node: uint64(1 + i%3), Kind: "produce", A: int64(i), B: int64(o.Producers)}
			if mode == "nondet" && o.Seed == 1 && i == 25 {
				e.B = int64(os.Getpid())
			}
			tr.Add(e)
			if i%10 == 0 {
				tr.Add(sim.TraceEvent{At: e.At, Node: e.Node, Kind: "hwm", A: 0, B: int64(i), C: int64(i + 2)})
			}
		}
		for _, f := range s {
			tr.Add(sim.TraceEvent{At: f.At, Kind: "fault." + string(f.Kind), A: int64(f.Node), B: int64(f.Dur)})
		}
		res := &scenarios.Result{
			Options: o, Schedule: s, Variant: rc.Variant, TraceHash: tr.Hash(), Events: tr.Len(),
			SimTime: o.SafetyDuration + 2*time.Second,
			Acks: map[string]scenarios.AcksCounts{
				"0": {Sent: 10}, "1": {Sent: 20, OK: 19, Failed: 1}, "all": {Sent: 30, OK: 28, Indeterminate: 2}},
			Probes: map[string]int{"leader-crash": len(s) % 3, "stale-batch": 1},
		}
		// A fake healthy system reaches its scenario's expected probes.
		for _, p := range scenarios.ExpectedProbes(o.Scenario) {
			res.Probes[p] = 1
		}
		if rc.Variant != "" && o.Producers >= 2 && (mode != "seedy" || o.Seed%2 == 1) {
			for _, f := range s {
				if f.Kind == scenarios.FaultCrash && f.Node == 1 && f.Dur >= 5*time.Millisecond {
					res.Violations = append(res.Violations, scenarios.Violation{Invariant: "S1",
						Detail: "acks=-1 offset 7 lost after " + strings.TrimSpace(f.String()), Time: f.At + f.Dur})
					break
				}
			}
		}
		for _, inv := range scenarios.CheckedInvariants {
			v := scenarios.VerdictOK
			switch {
			case inv == "S1" && len(res.Violations) > 0:
				v = scenarios.VerdictViolated
			case inv == "S8":
				v = scenarios.VerdictNA
			}
			res.Report.Verdicts = append(res.Report.Verdicts, scenarios.InvariantVerdict{Invariant: inv, Verdict: v})
		}
		if rc.RecordTrace {
			res.Trace = tr.Events()
		} else if rc.TraceTail > 0 {
			res.Trace = tr.Last()
		}
		return res, nil
	}
}

func fakeSchedule(seed uint64) scenarios.Schedule {
	var s scenarios.Schedule
	for i := 0; i < 6; i++ {
		s = append(s, scenarios.Fault{At: time.Duration(i+1) * 400 * time.Millisecond, Kind: scenarios.FaultDup, Prob: 0.1, Dur: 100 * time.Millisecond})
	}
	if seed%3 == 0 {
		s = append(s, scenarios.Fault{At: 1500 * time.Millisecond, Kind: scenarios.FaultCrash, Node: 1, Dur: 800 * time.Millisecond})
	} else {
		s = append(s, scenarios.Fault{At: 1500 * time.Millisecond, Kind: scenarios.FaultPause, Node: 2, Dur: 800 * time.Millisecond})
	}
	s.Sort()
	return s
}

// fakeFails says which seeds the fake fails with a variant.
func fakeFails(seed uint64) bool { return seed%3 == 0 }

func u(n uint64) string { return strconv.FormatUint(n, 10) }
