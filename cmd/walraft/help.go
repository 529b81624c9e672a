package main

import (
	"fmt"

	"walraft/report"
)

// cmdHelp prints the command list, or with "trace" the legend of every
// trace event kind (what A, B, C, D and Text hold).
func cmdHelp(args []string, st stdio) int {
	switch {
	case len(args) == 0:
		usage(st.out)
		return exitOK
	case len(args) == 1 && args[0] == "trace":
		fmt.Fprintln(st.out, "Trace events, one per line: TIME NODE KIND a=A b=B c=C d=D [\"TEXT\"]")
		fmt.Fprintln(st.out, "(NODE is nN, or \"world\" for network events; replay appends a message's kind, from, to, term and index to net.deliver and net.drop lines)")
		fmt.Fprintln(st.out)
		for _, e := range report.Legend() {
			fmt.Fprintf(st.out, "  %-18s %s\n", e.Kind, e.Fields)
		}
		return exitOK
	}
	return usageErr(st, "help", "unknown topic %q (try: walraft help trace)", args[0])
}
