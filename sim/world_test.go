package sim

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"walraft/core/env"
)

// recNode is a test node that records what reaches its event loop.
type recNode struct {
	id  env.NodeID
	w   *World
	e   env.Env
	inc uint64
	got []recMsg
	log []string // labels of events run on the loop, in order
}

type recMsg struct {
	at   time.Duration
	from env.NodeID
	msg  []byte
}

func (n *recNode) Receive(from env.NodeID, msg []byte) {
	n.got = append(n.got, recMsg{at: n.w.Now(), from: from, msg: msg})
	n.log = append(n.log, "msg:"+string(msg))
}

// testCluster is a started world of recNodes; nodes holds the current
// incarnation of each.
type testCluster struct {
	w     *World
	nodes map[env.NodeID]*recNode
}

// newTestCluster starts a world of recNodes with ids 1..n on instant
// disks. The world is closed at the end of the test.
func newTestCluster(t *testing.T, seed uint64, cfg WorldConfig, n int) *testCluster {
	t.Helper()
	w, err := NewWorld(seed, cfg)
	if err != nil {
		t.Fatalf("NewWorld: %v", err)
	}
	t.Cleanup(w.Close)
	c := &testCluster{w: w, nodes: map[env.NodeID]*recNode{}}
	for id := env.NodeID(1); id <= env.NodeID(n); id++ {
		if err := w.AddNode(id, c.boot, DiskConfig{}); err != nil {
			t.Fatalf("AddNode(%d): %v", id, err)
		}
	}
	if err := w.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return c
}

func (c *testCluster) boot(id env.NodeID, e env.Env) (Receiver, error) {
	n := &recNode{id: id, w: c.w, e: e, inc: c.w.Process(id).Incarnation()}
	c.nodes[id] = n
	return n, nil
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// at runs fn at global time t (a harness action, not on any node's loop).
func (c *testCluster) at(t time.Duration, fn func()) { c.w.Sched().At(t, fn) }

func TestWorldConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*WorldConfig)
		ok   bool
	}{
		{"zero", func(*WorldConfig) {}, true},
		{"default", func(c *WorldConfig) { *c = DefaultWorldConfig() }, true},
		{"negative latency", func(c *WorldConfig) { c.Net.Latency = -1 }, false},
		{"drop prob > 1", func(c *WorldConfig) { c.Net.DropProb = 1.5 }, false},
		{"skew negative", func(c *WorldConfig) { c.ClockSkewPPM = -1 }, false},
		{"skew too large", func(c *WorldConfig) { c.ClockSkewPPM = MaxClockSkewPPM + 1 }, false},
		{"skew max", func(c *WorldConfig) { c.ClockSkewPPM = MaxClockSkewPPM }, true},
		{"offset negative", func(c *WorldConfig) { c.ClockOffsetMax = -time.Second }, false},
		{"offset too large", func(c *WorldConfig) { c.ClockOffsetMax = MaxClockOffset + 1 }, false},
		{"ring negative", func(c *WorldConfig) { c.Trace.Ring = -1 }, false},
		{"ring too large", func(c *WorldConfig) { c.Trace.Ring = MaxTraceRing + 1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg WorldConfig
			tt.mod(&cfg)
			err := cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			_, nerr := NewWorld(1, cfg)
			if (nerr == nil) != tt.ok {
				t.Fatalf("NewWorld() = %v, want ok=%v", nerr, tt.ok)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestWorldAddNodeErrors(t *testing.T) {
	boot := func(env.NodeID, env.Env) (Receiver, error) { return &recNode{}, nil }
	tests := []struct {
		name string
		id   env.NodeID
		boot BootFunc
		disk DiskConfig
		want error
	}{
		{"ok", 2, boot, DiskConfig{}, nil},
		{"id zero", 0, boot, DiskConfig{}, ErrInvalidArgument},
		{"nil boot", 3, nil, DiskConfig{}, ErrInvalidArgument},
		{"duplicate", 1, boot, DiskConfig{}, ErrDuplicateNode},
		{"bad disk config", 4, boot, DiskConfig{SyncEIOProb: 2}, ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWorld(1, WorldConfig{})
			must(t, err)
			defer w.Close()
			must(t, w.AddNode(1, boot, DiskConfig{}))
			err = w.AddNode(tt.id, tt.boot, tt.disk)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("AddNode = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWorldParamsFromSeed(t *testing.T) {
	cfg := DefaultWorldConfig()
	boot := func(env.NodeID, env.Env) (Receiver, error) { return &recNode{}, nil }
	params := func(seed uint64, ids ...env.NodeID) Params {
		w, err := NewWorld(seed, cfg)
		must(t, err)
		defer w.Close()
		for _, id := range ids {
			must(t, w.AddNode(id, boot, DefaultDiskConfig()))
		}
		return w.Params()
	}
	a, b := params(7, 1, 2, 3), params(7, 1, 2, 3)
	if a.String() != b.String() {
		t.Fatalf("same seed, different params:\n%s\n%s", a, b)
	}
	if c := params(8, 1, 2, 3); c.String() == a.String() {
		t.Fatalf("seeds 7 and 8 drew the same params:\n%s", a)
	}
	// Named streams: leaving node 2 out does not change nodes 1 and 3.
	d := params(7, 3, 1)
	if d.Nodes[0] != a.Nodes[0] || d.Nodes[1] != a.Nodes[2] {
		t.Fatalf("node draws depend on the other nodes:\n%s\n%s", a, d)
	}
	for _, n := range a.Nodes {
		if n.ClockRatePPM < RateOne-cfg.ClockSkewPPM || n.ClockRatePPM > RateOne+cfg.ClockSkewPPM {
			t.Errorf("node %d rate %d outside ±%d ppm", n.ID, n.ClockRatePPM, cfg.ClockSkewPPM)
		}
		if n.ClockOffset < 0 || n.ClockOffset > cfg.ClockOffsetMax {
			t.Errorf("node %d offset %v outside [0, %v]", n.ID, n.ClockOffset, cfg.ClockOffsetMax)
		}
	}
	s := a.String()
	for _, want := range []string{"seed 7\n", "node 1 clock rate=", "node 3 clock rate=", "net latency=1ms"} {
		if !strings.Contains(s, want) {
			t.Errorf("Params.String() lacks %q:\n%s", want, s)
		}
	}
}

func TestWorldLifecycle(t *testing.T) {
	orig := rand.Reader
	c := newTestCluster(t, 1, WorldConfig{}, 2)
	w := c.w
	if !CryptoRandInstalled() || rand.Reader == orig {
		t.Fatal("Start did not install the crypto/rand hook")
	}
	if err := w.Start(); !errors.Is(err, ErrAlreadyStarted) {
		t.Fatalf("second Start = %v, want ErrAlreadyStarted", err)
	}
	if e, ok := w.Env(1); !ok || e.Validate() != nil {
		t.Fatalf("Env(1) = %v, %v on a running node", e, ok)
	}
	must(t, w.Crash(1))
	if _, ok := w.Env(1); ok {
		t.Fatal("Env(1) ok on a crashed node")
	}
	if _, ok := w.Env(9); ok {
		t.Fatal("Env(9) ok on an unknown node")
	}
	if w.Process(9) != nil || w.Disk(9) != nil || w.Disk(1) == nil {
		t.Fatal("Process/Disk lookups wrong")
	}
	// A node added after Start starts down.
	must(t, w.AddNode(3, c.boot, DiskConfig{}))
	if st := w.Process(3).State(); st != StateDown {
		t.Fatalf("late node state %v, want down", st)
	}
	must(t, w.Restart(3))
	w.Close()
	w.Close()
	if CryptoRandInstalled() || rand.Reader != orig {
		t.Fatal("Close did not restore crypto/rand.Reader")
	}
	if err := w.AddNode(4, c.boot, DiskConfig{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddNode after Close = %v, want ErrClosed", err)
	}
}

func TestWorldStartReturnsBootError(t *testing.T) {
	errBoom := errors.New("boom")
	w, err := NewWorld(1, WorldConfig{})
	must(t, err)
	defer w.Close()
	booted := 0
	ok := func(env.NodeID, env.Env) (Receiver, error) { booted++; return &recNode{}, nil }
	must(t, w.AddNode(1, ok, DiskConfig{}))
	must(t, w.AddNode(2, func(env.NodeID, env.Env) (Receiver, error) { return nil, errBoom }, DiskConfig{}))
	must(t, w.AddNode(3, ok, DiskConfig{}))
	err = w.Start()
	if !errors.Is(err, errBoom) {
		t.Fatalf("Start = %v, want boom", err)
	}
	if booted != 1 || w.Process(2).State() != StateDown || w.Process(3).State() != StateDown {
		t.Fatalf("after a failed Start: booted %d, states %v %v", booted, w.Process(2).State(), w.Process(3).State())
	}
}
