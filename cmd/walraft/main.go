// Command walraft runs walraft's deterministic simulations: single runs,
// seed campaigns, replays and minimisation of failing cases, and the real
// runtime benchmark.
package main

import (
	"fmt"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: walraft <campaign|run|replay|minimize|bench> [flags]")
		return 2
	}
	switch args[0] {
	case "campaign":
		fmt.Println("walraft: no scenario exists yet (the scenarios issue adds them); nothing to run")
		return 0
	default:
		fmt.Fprintf(os.Stderr, "walraft: unknown command %q\n", args[0])
		return 2
	}
}
