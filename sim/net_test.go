package sim

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"walraft/core/env"
)

// sendAll makes every node send one message to every other node through
// its env.Network, runs the world, and returns the links that delivered.
func sendAll(t *testing.T, c *testCluster) map[Link]bool {
	t.Helper()
	for _, n := range c.nodes {
		n.got = nil
	}
	ids := c.w.Nodes()
	for _, from := range ids {
		for _, to := range ids {
			if from != to {
				c.nodes[from].e.Net.Send(to, []byte(fmt.Sprintf("%d>%d", from, to)))
			}
		}
	}
	c.w.Sched().RunFor(time.Second)
	got := map[Link]bool{}
	for _, to := range ids {
		for _, m := range c.nodes[to].got {
			want := fmt.Sprintf("%d>%d", m.from, to)
			if string(m.msg) != want {
				t.Fatalf("node %d got %q from %d, want %q", to, m.msg, m.from, want)
			}
			got[Link{m.from, to}] = true
		}
	}
	return got
}

func TestNetPartitions(t *testing.T) {
	in := func(id env.NodeID, ids ...env.NodeID) bool { return slices.Contains(ids, id) }
	tests := []struct {
		name string
		op   func(n *Net) error
		up   func(from, to env.NodeID) bool
	}{
		{"none", func(*Net) error { return nil },
			func(_, _ env.NodeID) bool { return true }},
		{"symmetric", func(n *Net) error { return n.Partition([]env.NodeID{1, 2}, []env.NodeID{3, 4, 5}) },
			func(a, b env.NodeID) bool { return in(a, 1, 2) == in(b, 1, 2) }},
		{"one-way", func(n *Net) error { return n.Cut(1, 2) },
			func(a, b env.NodeID) bool { return !(a == 1 && b == 2) }},
		{"two one-way cuts", func(n *Net) error {
			if err := n.Cut(1, 2); err != nil {
				return err
			}
			return n.Cut(3, 1)
		}, func(a, b env.NodeID) bool { return !(a == 1 && b == 2) && !(a == 3 && b == 1) }},
		{"isolate", func(n *Net) error { return n.Isolate(3) },
			func(a, b env.NodeID) bool { return a != 3 && b != 3 }},
		{"bridge", func(n *Net) error { return n.Bridge([]env.NodeID{1, 2}, []env.NodeID{4, 5}, 3) },
			func(a, b env.NodeID) bool {
				return !(in(a, 1, 2) && in(b, 4, 5) || in(a, 4, 5) && in(b, 1, 2))
			}},
		{"minority", func(n *Net) error { return n.PartitionMinority(4, 5) },
			func(a, b env.NodeID) bool { return in(a, 4, 5) == in(b, 4, 5) }},
		{"unlisted node isolated", func(n *Net) error { return n.Partition([]env.NodeID{1, 2}, []env.NodeID{3, 4}) },
			func(a, b env.NodeID) bool { return a != 5 && b != 5 && in(a, 1, 2) == in(b, 1, 2) }},
		{"partition replaces cuts", func(n *Net) error {
			if err := n.Cut(1, 2); err != nil {
				return err
			}
			return n.Partition([]env.NodeID{1, 2, 3, 4, 5})
		}, func(_, _ env.NodeID) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCluster(t, 1, WorldConfig{Net: LinkConfig{Latency: time.Millisecond}}, 5)
			n := c.w.Net()
			must(t, tt.op(n))
			got := sendAll(t, c)
			cut := 0
			for _, a := range c.w.Nodes() {
				for _, b := range c.w.Nodes() {
					if a == b {
						continue
					}
					want := tt.up(a, b)
					if !want {
						cut++
					}
					if got[Link{a, b}] != want || n.Connected(a, b) != want {
						t.Errorf("link %d->%d: delivered %v, Connected %v, want %v", a, b, got[Link{a, b}], n.Connected(a, b), want)
					}
				}
			}
			if s := n.Stats(); s.DroppedBy[DropCut] != int64(cut) || len(n.Cuts()) != cut || s.Dropped() != int64(cut) {
				t.Errorf("cut %d links, stats %+v, Cuts %v", cut, s, n.Cuts())
			}
			n.Heal()
			if len(n.Cuts()) != 0 {
				t.Fatalf("cuts after Heal: %v", n.Cuts())
			}
			if got := sendAll(t, c); len(got) != 20 {
				t.Fatalf("after Heal %d of 20 links delivered", len(got))
			}
		})
	}
}

func TestNetBadArguments(t *testing.T) {
	ids := func(v ...env.NodeID) []env.NodeID { return v }
	tests := []struct {
		name string
		op   func(n *Net) error
		want error
	}{
		{"partition overlap", func(n *Net) error { return n.Partition(ids(1, 2), ids(2, 3)) }, ErrInvalidArgument},
		{"partition repeat", func(n *Net) error { return n.Partition(ids(1, 1)) }, ErrInvalidArgument},
		{"partition unknown", func(n *Net) error { return n.Partition(ids(1, 9)) }, ErrUnknownNode},
		{"cut self", func(n *Net) error { return n.Cut(1, 1) }, ErrInvalidArgument},
		{"cut unknown", func(n *Net) error { return n.Cut(1, 9) }, ErrUnknownNode},
		{"isolate unknown", func(n *Net) error { return n.Isolate(9) }, ErrUnknownNode},
		{"bridge in group", func(n *Net) error { return n.Bridge(ids(1), ids(2), 1) }, ErrInvalidArgument},
		{"bridge overlap", func(n *Net) error { return n.Bridge(ids(1, 2), ids(2, 3), 4) }, ErrInvalidArgument},
		{"bridge unknown", func(n *Net) error { return n.Bridge(ids(1), ids(2), 9) }, ErrUnknownNode},
		{"minority too big", func(n *Net) error { return n.PartitionMinority(1, 2, 3) }, ErrInvalidArgument},
		{"minority empty", func(n *Net) error { return n.PartitionMinority() }, ErrInvalidArgument},
		{"minority unknown", func(n *Net) error { return n.PartitionMinority(9) }, ErrUnknownNode},
		{"link prob", func(n *Net) error { return n.SetLink(1, 2, LinkConfig{DropProb: 2}) }, ErrInvalidConfig},
		{"link unknown", func(n *Net) error { return n.SetLink(1, 9, LinkConfig{}) }, ErrUnknownNode},
		{"default negative", func(n *Net) error { return n.SetDefault(LinkConfig{Jitter: -1}) }, ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCluster(t, 1, WorldConfig{}, 5)
			n := c.w.Net()
			must(t, n.Cut(5, 4))
			if err := tt.op(n); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			// A failed call changes nothing.
			if cuts := n.Cuts(); len(cuts) != 1 || cuts[0] != (Link{5, 4}) {
				t.Fatalf("cuts after a failed call: %v", cuts)
			}
		})
	}
}

func TestNetLossAndDuplication(t *testing.T) {
	const total = 20000
	cfg := LinkConfig{Latency: time.Millisecond, DropProb: 0.2, DupProb: 0.1}
	c := newTestCluster(t, 42, WorldConfig{Net: cfg}, 2)
	e := c.nodes[1].e
	for i := 0; i < total; i++ {
		e.Net.Send(2, []byte(strconv.Itoa(i)))
	}
	c.w.Sched().RunFor(time.Second)
	s := c.w.Net().Stats()
	got := c.nodes[2].got
	if s.Sent != total || s.Delivered != int64(len(got)) || s.Delivered != s.Sent-s.Dropped()+s.Duplicated {
		t.Fatalf("stats inconsistent: %+v, received %d", s, len(got))
	}
	if f := float64(s.DroppedBy[DropLoss]) / total; f < 0.18 || f > 0.22 {
		t.Errorf("dropped fraction %.3f, want ~0.2", f)
	}
	if f := float64(s.Duplicated) / float64(total-s.Dropped()); f < 0.085 || f > 0.115 {
		t.Errorf("duplicated fraction %.3f, want ~0.1", f)
	}
	// Duplicates are separate copies: the receiver owns each slice.
	first := map[string][]byte{}
	dups := 0
	for _, m := range got {
		if p, ok := first[string(m.msg)]; ok {
			dups++
			if &p[0] == &m.msg[0] {
				t.Fatalf("message %q delivered twice in the same slice", m.msg)
			}
			continue
		}
		first[string(m.msg)] = m.msg
	}
	if int64(dups) != s.Duplicated {
		t.Fatalf("received %d duplicates, stats say %d", dups, s.Duplicated)
	}
}

func TestNetDelays(t *testing.T) {
	tests := []struct {
		name         string
		cfg          LinkConfig
		lo, hi       time.Duration
		wantInOrder  bool
		wantReorders bool
	}{
		{"fixed latency", LinkConfig{Latency: 5 * time.Millisecond}, 5 * time.Millisecond, 5 * time.Millisecond, true, false},
		{"zero latency", LinkConfig{}, 0, 0, true, false},
		{"jitter", LinkConfig{Latency: 5 * time.Millisecond, Jitter: 500 * time.Microsecond},
			5 * time.Millisecond, 5500 * time.Microsecond, true, false},
		{"reorder", LinkConfig{Latency: 5 * time.Millisecond, ReorderProb: 0.3, ReorderDelay: 50 * time.Millisecond},
			5 * time.Millisecond, 55 * time.Millisecond, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCluster(t, 7, WorldConfig{}, 2)
			must(t, c.w.Net().SetLink(1, 2, tt.cfg))
			if c.w.Net().LinkConfig(1, 2) != tt.cfg || c.w.Net().LinkConfig(2, 1) != (LinkConfig{}) {
				t.Fatal("SetLink did not override exactly one direction")
			}
			const n = 1000
			sentAt := map[string]time.Duration{}
			for i := 0; i < n; i++ {
				// One message per millisecond: the jitter (0.5ms) cannot
				// reorder them, the reorder delay (50ms) can.
				c.at(time.Duration(i)*time.Millisecond, func() {
					msg := strconv.Itoa(i)
					sentAt[msg] = c.w.Now()
					c.nodes[1].e.Net.Send(2, []byte(msg))
				})
			}
			c.w.Sched().RunFor(2 * time.Second)
			got := c.nodes[2].got
			if len(got) != n {
				t.Fatalf("received %d of %d", len(got), n)
			}
			inOrder := true
			spread := false
			for i, m := range got {
				d := m.at - sentAt[string(m.msg)]
				if d < tt.lo || d > tt.hi {
					t.Fatalf("message %s took %v, want [%v, %v]", m.msg, d, tt.lo, tt.hi)
				}
				if d != tt.lo {
					spread = true
				}
				if string(m.msg) != strconv.Itoa(i) {
					inOrder = false
				}
			}
			if inOrder != tt.wantInOrder {
				t.Errorf("in order = %v, want %v", inOrder, tt.wantInOrder)
			}
			if spread != (tt.hi > tt.lo) {
				t.Errorf("delays varied = %v, want %v", spread, tt.hi > tt.lo)
			}
			if r := c.w.Net().Stats().Reordered; (r > 0) != tt.wantReorders || tt.wantReorders && (r < 250 || r > 350) {
				t.Errorf("reordered %d of %d", r, n)
			}
		})
	}
}

func TestNetDownAndStale(t *testing.T) {
	c := newTestCluster(t, 1, WorldConfig{Net: LinkConfig{Latency: 10 * time.Millisecond}}, 3)
	w := c.w
	n := w.Net()
	// Destination down at send time.
	must(t, w.Crash(2))
	c.nodes[1].e.Net.Send(2, []byte("to-down"))
	// Unknown destination.
	c.nodes[1].e.Net.Send(9, []byte("to-nobody"))
	must(t, w.Restart(2))
	// In flight when the destination crashes: never reaches the next
	// incarnation, even though it is up when the message arrives.
	c.nodes[1].e.Net.Send(2, []byte("in-flight"))
	stale := c.nodes[2].e
	c.at(5*time.Millisecond, func() { must(t, w.Crash(2)) })
	c.at(6*time.Millisecond, func() { must(t, w.Restart(2)) })
	// A stale sender: the crashed incarnation's handle.
	c.at(7*time.Millisecond, func() { stale.Net.Send(3, []byte("from-stale")) })
	w.Sched().RunFor(time.Second)
	for _, id := range []env.NodeID{2, 3} {
		if got := c.nodes[id].got; len(got) != 0 {
			t.Fatalf("node %d received %d messages, want none", id, len(got))
		}
	}
	s := n.Stats()
	want := NetStats{Sent: 4, DroppedBy: [DropUnknown + 1]int64{DropDown: 2, DropStale: 1, DropUnknown: 1}}
	s.BytesSent = 0
	if s != want {
		t.Fatalf("stats %+v, want %+v", s, want)
	}
}

func TestNetPausedNodeGetsMessagesInOrder(t *testing.T) {
	c := newTestCluster(t, 1, WorldConfig{Net: LinkConfig{Latency: time.Millisecond}}, 2)
	w := c.w
	must(t, w.Pause(2))
	for i := 0; i < 10; i++ {
		c.at(time.Duration(i)*time.Millisecond, func() { c.nodes[1].e.Net.Send(2, []byte(strconv.Itoa(i))) })
	}
	c.at(100*time.Millisecond, func() {
		if len(c.nodes[2].got) != 0 || w.Process(2).Held() != 10 {
			t.Errorf("paused node: received %d, held %d", len(c.nodes[2].got), w.Process(2).Held())
		}
		must(t, w.Resume(2))
		c.nodes[1].e.Net.Send(2, []byte("after"))
	})
	w.Sched().RunFor(time.Second)
	got := c.nodes[2].got
	if len(got) != 11 {
		t.Fatalf("received %d, want 11", len(got))
	}
	for i, m := range got[:10] {
		if string(m.msg) != strconv.Itoa(i) || m.at != 100*time.Millisecond {
			t.Fatalf("message %d: %q at %v, want %q at 100ms", i, m.msg, m.at, strconv.Itoa(i))
		}
	}
	if got[10].at != 101*time.Millisecond {
		t.Fatalf("message sent after resume arrived at %v, want 101ms", got[10].at)
	}
}
