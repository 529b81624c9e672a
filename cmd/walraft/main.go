// Command walraft runs walraft's deterministic simulations: single runs,
// seed campaigns over every core, replays and minimisation of failing
// cases, and merging of sharded campaign summaries.
//
// Exit codes: 0 when every invariant held, 1 when a run violated an
// invariant (or a campaign found a failing seed or a determinism mismatch,
// or a simulation could not complete), 2 on bad usage or bad input (an
// unknown scenario or variant, a corrupt or truncated case file). Run
// `walraft help` for the commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes.
const (
	exitOK    = 0 // every invariant held
	exitFail  = 1 // a violation, a determinism mismatch or a failed simulation
	exitUsage = 2 // bad usage or bad input
)

// stdio is where a command reads and writes; tests substitute buffers.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// command is one subcommand.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string
	hidden  bool
	run     func(args []string, st stdio) int
}

// commands lists the subcommands; main dispatches on the first argument.
// A command defined in a file of its own (`bench`, from the real-runtime
// issue) registers itself from that file's init function with
// `commands = append(commands, command{...})`; it is listed after these.
var commands []command

func init() {
	commands = append([]command{
		{name: "run", args: "[-scenario S | -schedule FILE] [-seed N | -seeds A-B] [-variant V] [-trace FILE] [-history FILE] [-out DIR] [-json]",
			summary: "run one simulation (or a schedule file over a range of seeds) and check every invariant", run: cmdRun},
		{name: "campaign", args: "[-scenario S|all] [-seeds N] [-start K] [-parallel P] [-shard i/n] [-variant V] [-out DIR] [-determinism N] [-json]",
			summary: "run many seeds in worker processes on every core", run: cmdCampaign},
		{name: "replay", args: "[-trace FILE] [-history FILE] [-window N] [-hide KINDS] [-json] CASE",
			summary: "re-run a case file, check its trace hash and show the timeline around the violation", run: cmdReplay},
		{name: "minimize", args: "[-max-runs N] [-invariant I] [-o FILE] CASE",
			summary: "shrink a case's fault schedule and workload while the same invariant fails", run: cmdMinimize},
		{name: "merge", args: "[-json] [-partial] SUMMARY.json...",
			summary: "combine the -json summaries of a sharded campaign", run: cmdMerge},
		{name: "scenarios", summary: "list the scenarios", run: cmdScenarios},
		{name: "variants", summary: "list the known-bad variants", run: cmdVariants},
		{name: "help", args: "[trace]", summary: "show this help; `help trace` explains every trace event kind", run: cmdHelp},
		{name: "worker", hidden: true, summary: "campaign worker: JSON lines on stdin/stdout", run: cmdWorker},
	}, commands...)
}

func main() {
	if os.Getenv(envSelf) == "" {
		os.Setenv(envSelf, selfCommand(os.Args[0]))
	}
	os.Exit(cli(os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}))
}

// cli runs one command line and returns the exit code. A panic that
// escapes a command is reported as an internal error on one line, never
// as a stack trace.
func cli(args []string, st stdio) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(st.err, "walraft: internal error: %v\n", r)
			code = exitFail
		}
	}()
	if len(args) == 0 {
		usage(st.err)
		return exitUsage
	}
	name := args[0]
	if name == "-h" || name == "-help" || name == "--help" {
		usage(st.out)
		return exitOK
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(args[1:], st)
		}
	}
	names := make([]string, 0, len(commands))
	for _, c := range commands {
		if !c.hidden {
			names = append(names, c.name)
		}
	}
	fmt.Fprintf(st.err, "walraft: unknown command %q (commands: %s; walraft help explains them)\n", name, strings.Join(names, ", "))
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: walraft <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `walraft <command> -h` for a command's flags.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 violation or failed run, 2 bad usage or bad input.")
}

// newFlags returns a flag set for a command that reports errors on st.err.
func newFlags(name string, st stdio) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(st.err)
	for _, c := range commands {
		if c.name == name {
			fs.Usage = func() {
				fmt.Fprintf(st.err, "usage: walraft %s %s\n\n%s.\n\n", c.name, c.args, c.summary)
				fs.PrintDefaults()
			}
		}
	}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// (`walraft replay CASE -trace t.txt`), and checks the number of positional
// arguments is within [minPos, maxPos] (maxPos < 0: no limit). It returns
// the positional arguments and an exit code: -1 to go on, exitOK after
// -h, exitUsage on a bad command line (already reported).
//
// A bad flag is one line (the flag package's error and where the flags
// are explained), not the whole usage: the usage is for -h.
func parseFlags(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, int) {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard) // the flag package prints its error, then the usage
	fs.Usage = func() {}
	defer func() { fs.SetOutput(out); fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			fs.SetOutput(out)
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, exitOK
			}
			fmt.Fprintf(out, "walraft %s: %v (walraft %s -h lists the flags)\n", fs.Name(), err, fs.Name())
			return nil, exitUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < minPos || (maxPos >= 0 && len(pos) > maxPos) {
		switch {
		case maxPos == 0:
			fmt.Fprintf(out, "walraft %s: unexpected argument %q (walraft %s -h for usage)\n", fs.Name(), pos[0], fs.Name())
		case len(pos) < minPos:
			fmt.Fprintf(out, "walraft %s: missing argument (walraft %s -h for usage)\n", fs.Name(), fs.Name())
		default:
			fmt.Fprintf(out, "walraft %s: too many arguments: %s\n", fs.Name(), strings.Join(pos, " "))
		}
		return nil, exitUsage
	}
	return pos, -1
}

// flagSet reports whether the named flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// usageErr reports a bad command line or input and returns exitUsage.
func usageErr(st stdio, cmd string, format string, args ...any) int {
	fmt.Fprintf(st.err, "walraft %s: %s\n", cmd, fmt.Sprintf(format, args...))
	return exitUsage
}

// sortedKeys returns a map's keys in order, so output never depends on map
// iteration order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
