package report

import (
	"strings"
	"testing"
	"time"

	"walraft/sim"
)

func ev(ms int, node uint64, kind string, a, b, c, d int64) sim.TraceEvent {
	return sim.TraceEvent{At: time.Duration(ms) * time.Millisecond, Node: node, Kind: kind, A: a, B: b, C: c, D: d}
}

// The state before the window keeps every node's every partition (before,
// one map entry per node and kind kept only the last partition).
func TestWindowStateKeepsAllPartitions(t *testing.T) {
	w := NewWindow(50*time.Millisecond, 2, 1, nil, 0)
	for _, e := range []sim.TraceEvent{
		ev(1, 1, "obs", 0, 10, 11, 1),
		ev(1, 1, "obs", 1, 20, 21, 1),
		ev(2, 2, "obs", 0, 10, 12, 1),
		ev(2, 2, "obs", 1, 20, 22, 1),
		ev(10, 1, "produce", 0, 0, 0, 0),
		ev(20, 1, "produce", 0, 1, 0, 0),
		ev(30, 1, "produce", 0, 2, 0, 0),
		ev(60, 1, "produce", 0, 3, 0, 0),
		ev(70, 1, "produce", 0, 4, 0, 0),
	} {
		w.Add(e, "")
	}
	lines := w.Lines("mark")
	text := strings.Join(lines, "\n")
	for _, want := range []string{"n1 obs a=0 b=10", "n1 obs a=1 b=20", "n2 obs a=0 b=10", "n2 obs a=1 b=20",
		"3 of 9 events", "0.020000000s n1 produce a=0 b=1", ">>> 0.050000000s mark", "0.060000000s n1 produce"} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline lacks %q:\n%s", want, text)
		}
	}
	for _, not := range []string{"b=0 c=0 d=0\n  0.010", "0.070000000s"} {
		if strings.Contains(text, not) {
			t.Errorf("timeline has %q:\n%s", not, text)
		}
	}
}

// A state event inside the window is shown there, not listed before it.
func TestWindowStateInsideWindow(t *testing.T) {
	w := NewWindow(time.Second, 3, 0, []string{"net."}, 2)
	w.Add(ev(1, 2, "obs", 0, 1, 1, 1), "")
	w.Add(ev(2, 1, "produce", 0, 0, 0, 0), "")                                           // other node: left out
	w.Add(sim.TraceEvent{At: 3 * time.Millisecond, Kind: "net.deliver", A: 1, B: 2}, "") // hidden
	w.Add(ev(4, 2, "obs", 0, 2, 2, 1), "")
	text := strings.Join(w.Lines("m"), "\n")
	if strings.Contains(text, "node state before") || strings.Count(text, "n2 obs") != 2 || strings.Contains(text, "n1 produce") || strings.Contains(text, "net.deliver") {
		t.Fatalf("timeline:\n%s", text)
	}
}
