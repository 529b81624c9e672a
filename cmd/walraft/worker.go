package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"walraft/scenarios"
)

// The campaign protocol: the coordinator starts `walraft worker` processes
// (one simulation per process at a time, DESIGN.md section 4: etcd raft's
// crypto/rand hook is a process global) and talks to each over JSON lines,
// one job in and one reply out at a time.

// workerJob asks a worker for one simulation.
type workerJob struct {
	ID       int    `json:"id"`
	Scenario string `json:"scenario"`
	Seed     uint64 `json:"seed"`
	Variant  string `json:"variant"`
	Commit   string `json:"commit"`
	// Out, when set, is the directory the worker writes the case file of a
	// failing run into.
	Out string `json:"out,omitempty"`
	// TraceFile, when set, makes the worker record the full trace and write
	// it to this file, one event per line (determinism mismatch reports).
	TraceFile string `json:"trace_file,omitempty"`
	// Options, when set, are run with exactly Schedule instead of the
	// seed's drawn options and generated schedule (a crash point of
	// `walraft crashpoints`); CaseName then names its case file.
	Options  *scenarios.Options `json:"options,omitempty"`
	Schedule scenarios.Schedule `json:"schedule,omitempty"`
	CaseName string             `json:"case_name,omitempty"`
}

// workerReply is a worker's answer to one job.
type workerReply struct {
	ID     int      `json:"id"`
	Result *runJSON `json:"result"`
	// Problem reports what went wrong besides the run itself (writing the
	// case or the trace).
	Problem string `json:"problem,omitempty"`
	// Exit: the worker exits after this reply, because the simulation
	// panicked and the process's global state (the crypto/rand hook) can no
	// longer be trusted. The coordinator starts a fresh worker.
	Exit bool `json:"exit,omitempty"`
}

// maxJobLine bounds one job line.
const maxJobLine = 1 << 20

// cmdWorker is the hidden `walraft worker` subcommand.
func cmdWorker(args []string, st stdio) int {
	fs := newFlags("worker", st)
	if _, code := parseFlags(fs, args, 0, 0); code >= 0 {
		return code
	}
	// Ctrl-C on a terminal reaches the whole process group; the coordinator
	// handles it and stops its workers itself.
	signal.Ignore(os.Interrupt)
	proto := st.out
	if st.out == os.Stdout {
		// Anything else that prints to stdout (a stray debug print in the
		// code under test) must not corrupt the protocol.
		os.Stdout = os.Stderr
	}
	in := bufio.NewScanner(st.in)
	in.Buffer(make([]byte, 0, 64<<10), maxJobLine)
	enc := json.NewEncoder(proto)
	for in.Scan() {
		var job workerJob
		if err := json.Unmarshal(in.Bytes(), &job); err != nil {
			fmt.Fprintf(st.err, "walraft worker: bad job: %v\n", err)
			return exitUsage
		}
		reply := runJob(job)
		if err := enc.Encode(reply); err != nil {
			fmt.Fprintf(st.err, "walraft worker: %v\n", err)
			return exitFail
		}
		if reply.Exit {
			return exitOK
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(st.err, "walraft worker: %v\n", err)
		return exitFail
	}
	return exitOK
}

// runJob runs one job in this process.
func runJob(job workerJob) workerReply {
	reply := workerReply{ID: job.ID}
	sc, err := scenarios.Lookup(job.Scenario)
	if err == nil {
		_, err = scenarios.LookupVariant(job.Variant)
	}
	if err != nil {
		o := scenarios.Options{Scenario: job.Scenario, Seed: job.Seed}
		reply.Result = summarize(o, job.Variant, nil, 0, err, job.Commit)
		return reply
	}
	o := drawOptions(sc, job.Seed, job.Variant)
	rc := scenarios.RunConfig{Variant: job.Variant, RecordTrace: job.TraceFile != ""}
	if job.Options != nil {
		o = *job.Options
		rc.Schedule, rc.UseSchedule = job.Schedule, true
	}
	res, wall, simErr := simulate(o, rc)
	r := summarize(o, job.Variant, res, wall, simErr, job.Commit)
	reply.Result = r
	reply.Exit = errors.Is(simErr, errSimPanic)
	if res == nil {
		return reply
	}
	var problems []error
	if job.TraceFile != "" {
		problems = append(problems, writeTrace(job.TraceFile, res.Trace))
	}
	if r.failed() && job.Out != "" {
		c := newCase(job.Variant, res, r)
		name := c.FileName()
		if job.CaseName != "" {
			name = job.CaseName
		}
		path := filepath.Join(job.Out, name)
		if err := scenarios.WriteCase(path, c); err != nil {
			problems = append(problems, err)
		} else {
			r.Case = path
		}
	}
	if err := errors.Join(problems...); err != nil {
		reply.Problem = err.Error()
	}
	return reply
}

// tailBuffer keeps the last bytes written to it: a worker's stderr, shown
// when the worker dies.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

var _ io.Writer = (*tailBuffer)(nil)
