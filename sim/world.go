package sim

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"walraft/core/env"
)

// Errors of world construction and configuration; test with errors.Is.
var (
	// ErrInvalidConfig: a config value out of range.
	ErrInvalidConfig = errors.New("sim: invalid config")
	// ErrInvalidArgument: a bad argument to a world, process or network
	// call (a nil func, a node listed twice, ...).
	ErrInvalidArgument = errors.New("sim: invalid argument")
	// ErrDuplicateNode: AddNode with an id already added.
	ErrDuplicateNode = errors.New("sim: duplicate node")
	// ErrAlreadyStarted: Start called twice.
	ErrAlreadyStarted = errors.New("sim: world already started")
	// ErrClosed: the world was closed.
	ErrClosed = errors.New("sim: world closed")
)

// Bounds on WorldConfig values, so a bad config fails clearly.
const (
	// MaxClockSkewPPM bounds WorldConfig.ClockSkewPPM (rates stay within
	// 0.5x..1.5x).
	MaxClockSkewPPM = RateOne / 2
	// MaxClockOffset bounds WorldConfig.ClockOffsetMax.
	MaxClockOffset = 365 * 24 * time.Hour
)

// WorldConfig configures a World. The zero value is an ideal world: instant
// lossless network, unskewed clocks that all read 0 at start, hash-only
// trace.
type WorldConfig struct {
	// Net is the default link config (Net.SetLink overrides per link).
	Net LinkConfig
	// ClockSkewPPM: each node's clock rate is drawn uniform in
	// [RateOne-ClockSkewPPM, RateOne+ClockSkewPPM] parts per million
	// (50_000 is 0.95x..1.05x).
	ClockSkewPPM int64
	// ClockOffsetMax: each node's clock reads a value drawn uniform in
	// [0, ClockOffsetMax] at global time 0, so no code can assume that
	// clocks of different nodes agree.
	ClockOffsetMax time.Duration
	// Trace chooses what the trace keeps besides its hash.
	Trace TraceConfig

	// osCryptoRand leaves crypto/rand.Reader alone (test-only: it shows
	// that without the hook raft runs do not replay).
	osCryptoRand bool
}

// DefaultWorldConfig returns a realistic fault-free world: 1ms links with
// 1ms jitter, clocks skewed up to ±5% with epochs up to an hour apart, and a
// 256-event trace ring for violation timelines.
func DefaultWorldConfig() WorldConfig {
	return WorldConfig{
		Net:            LinkConfig{Latency: time.Millisecond, Jitter: time.Millisecond},
		ClockSkewPPM:   50_000,
		ClockOffsetMax: time.Hour,
		Trace:          TraceConfig{Ring: 256},
	}
}

// Validate reports a config the world cannot use.
func (c WorldConfig) Validate() error {
	if err := c.Net.Validate(); err != nil {
		return err
	}
	if err := c.Trace.Validate(); err != nil {
		return err
	}
	if c.ClockSkewPPM < 0 || c.ClockSkewPPM > MaxClockSkewPPM {
		return fmt.Errorf("sim world config: ClockSkewPPM = %d, want [0, %d]: %w", c.ClockSkewPPM, MaxClockSkewPPM, ErrInvalidConfig)
	}
	if c.ClockOffsetMax < 0 || c.ClockOffsetMax > MaxClockOffset {
		return fmt.Errorf("sim world config: ClockOffsetMax = %v, want [0, %v]: %w", c.ClockOffsetMax, MaxClockOffset, ErrInvalidConfig)
	}
	return nil
}

// World is one simulation: a scheduler, the named random streams of one
// seed, a trace, a network and the processes of the nodes. It is
// single-threaded; drive it through Sched.
//
// Random streams, one per consumer so that adding a consumer never shifts
// another: "net" (the network), "clock/<id>" (clock rate and offset draws),
// "disk/<id>" (the node's disk), "node/<id>" (the node's env.Rand, kept
// across its incarnations), "crypto" (the crypto/rand.Reader hook). The
// harness takes its own streams from Streams with other names.
type World struct {
	seed    uint64
	cfg     WorldConfig
	streams *Streams
	sched   *Scheduler
	trace   *Trace
	net     *Net
	procs   map[env.NodeID]*Process
	ids     []env.NodeID // sorted

	started bool
	closed  bool
	restore func()
}

// NewWorld returns a world for seed with no nodes. It fails if cfg is
// invalid.
func NewWorld(seed uint64, cfg WorldConfig) (*World, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr, err := NewTrace(cfg.Trace)
	if err != nil {
		return nil, err
	}
	w := &World{
		seed:    seed,
		cfg:     cfg,
		streams: NewStreams(seed),
		sched:   NewScheduler(),
		trace:   tr,
		procs:   map[env.NodeID]*Process{},
	}
	w.net = newNet(w, w.streams.Stream("net"), cfg.Net)
	return w, nil
}

// AddNode adds node id with its boot function and disk config. Its clock
// rate and offset are drawn now from "clock/<id>". A node added before
// Start is booted by Start; one added after starts down (boot it with
// Restart).
func (w *World) AddNode(id env.NodeID, boot BootFunc, diskCfg DiskConfig) error {
	switch {
	case w.closed:
		return fmt.Errorf("sim: add node %d: %w", id, ErrClosed)
	case id == 0:
		return fmt.Errorf("sim: add node: id 0 is reserved: %w", ErrInvalidArgument)
	case boot == nil:
		return fmt.Errorf("sim: add node %d: nil BootFunc: %w", id, ErrInvalidArgument)
	}
	if _, ok := w.procs[id]; ok {
		return fmt.Errorf("sim: add node %d: %w", id, ErrDuplicateNode)
	}
	if err := diskCfg.Validate(); err != nil {
		return fmt.Errorf("sim: add node %d: %w: %w", id, ErrInvalidConfig, err)
	}
	name := strconv.FormatUint(id, 10)
	crng := w.streams.Stream("clock/" + name)
	skew := w.cfg.ClockSkewPPM
	rate := RateOne - skew + crng.Int64N(2*skew+1)
	offset := crng.Duration(0, w.cfg.ClockOffsetMax)
	p := &Process{
		w:       w,
		id:      id,
		boot:    boot,
		disk:    NewDisk(w.sched, w.streams.Stream("disk/"+name), diskCfg),
		clock:   newNodeClock(w.sched, rate, offset),
		rng:     w.streams.Stream("node/" + name),
		rate0:   rate,
		offset0: offset,
		diskCfg: diskCfg,
	}
	p.disk.onEvent = func(kind string, a, b, c, d int64) { w.event(id, kind, a, b, c, d) }
	w.procs[id] = p
	i, _ := slices.BinarySearch(w.ids, id)
	w.ids = slices.Insert(w.ids, i, id)
	return nil
}

// Start installs the seeded crypto/rand hook (from the "crypto" stream) and
// boots every node in id order. It returns the first boot error (the
// remaining nodes are not booted). Call Close when done, whether Start
// succeeded or not: it restores crypto/rand.Reader. Start panics if another
// World is started and not closed (see InstallCryptoRand).
func (w *World) Start() error {
	if w.closed {
		return fmt.Errorf("sim: start: %w", ErrClosed)
	}
	if w.started {
		return ErrAlreadyStarted
	}
	w.started = true
	if !w.cfg.osCryptoRand {
		w.restore = InstallCryptoRand(w.streams.Stream("crypto"))
	}
	for _, id := range w.ids {
		if err := w.procs[id].bootNow(); err != nil {
			return err
		}
	}
	return nil
}

// Close restores crypto/rand.Reader. It is idempotent. The world's state
// stays readable; running it further is a harness bug (and unseeded).
func (w *World) Close() {
	w.closed = true
	if w.restore != nil {
		w.restore()
		w.restore = nil
	}
}

// Seed returns the world's seed.
func (w *World) Seed() uint64 { return w.seed }

// Config returns the world's config.
func (w *World) Config() WorldConfig { return w.cfg }

// Sched returns the scheduler that drives the world.
func (w *World) Sched() *Scheduler { return w.sched }

// Now returns the global virtual time.
func (w *World) Now() time.Duration { return w.sched.Now() }

// Streams returns the seed's stream family; the harness takes its own
// streams from it under names the world does not use.
func (w *World) Streams() *Streams { return w.streams }

// Net returns the network.
func (w *World) Net() *Net { return w.net }

// Trace returns the trace.
func (w *World) Trace() *Trace { return w.trace }

// Nodes returns the node ids, sorted. The slice is a copy.
func (w *World) Nodes() []env.NodeID { return slices.Clone(w.ids) }

// Process returns node id's process, or nil.
func (w *World) Process(id env.NodeID) *Process { return w.procs[id] }

// Disk returns node id's disk, or nil.
func (w *World) Disk(id env.NodeID) *Disk {
	if p := w.procs[id]; p != nil {
		return p.disk
	}
	return nil
}

// Env returns the env of node id's running incarnation; ok is false if the
// node is unknown or down.
func (w *World) Env(id env.NodeID) (e env.Env, ok bool) {
	p := w.procs[id]
	if p == nil || p.state == StateDown {
		return env.Env{}, false
	}
	return p.env, true
}

// Emit adds a harness event to the trace, stamped with the current global
// time; node is 0 for events that belong to no node.
func (w *World) Emit(node env.NodeID, e env.Event) {
	w.trace.Add(TraceEvent{At: w.sched.Now(), Node: node, Kind: e.Kind, A: e.A, B: e.B, C: e.C, D: e.D, Text: e.Text})
}

// event adds one of the world's own events to the trace.
func (w *World) event(node env.NodeID, kind string, a, b, c, d int64) {
	w.trace.Add(TraceEvent{At: w.sched.Now(), Node: node, Kind: kind, A: a, B: b, C: c, D: d})
}

func (w *World) eventText(node env.NodeID, kind string, a, b, c, d int64, text string) {
	w.trace.Add(TraceEvent{At: w.sched.Now(), Node: node, Kind: kind, A: a, B: b, C: c, D: d, Text: text})
}

// NodeParams are the values drawn from the seed for one node, plus its
// disk config.
type NodeParams struct {
	ID           env.NodeID
	ClockRatePPM int64         // initial clock rate
	ClockOffset  time.Duration // the clock's reading at global time 0
	Disk         DiskConfig    // the disk config given to AddNode
}

// Params is everything that determines a world's run apart from the code
// and the harness: the seed, the config, and every value drawn from the
// seed when nodes were added. The CLI prints it.
type Params struct {
	Seed   uint64
	Config WorldConfig
	Nodes  []NodeParams
}

// Params returns the world's parameters.
func (w *World) Params() Params {
	ps := Params{Seed: w.seed, Config: w.cfg}
	for _, id := range w.ids {
		p := w.procs[id]
		ps.Nodes = append(ps.Nodes, NodeParams{ID: id, ClockRatePPM: p.rate0, ClockOffset: p.offset0, Disk: p.diskCfg})
	}
	return ps
}

// String renders the parameters, one item per line, stably.
func (p Params) String() string {
	var b strings.Builder
	c := p.Config
	fmt.Fprintf(&b, "seed %d\n", p.Seed)
	fmt.Fprintf(&b, "net %s\n", c.Net)
	fmt.Fprintf(&b, "clock skew ±%dppm offset<=%v\n", c.ClockSkewPPM, c.ClockOffsetMax)
	fmt.Fprintf(&b, "trace record=%v ring=%d\n", c.Trace.Record, c.Trace.Ring)
	for _, n := range p.Nodes {
		d := n.Disk
		fmt.Fprintf(&b, "node %d clock rate=%dppm offset=%v disk sync=[%v,%v] stall=%v[%v,%v] eio write=%v sync=%v torn=%v block=%d failed-sync=%v\n",
			n.ID, n.ClockRatePPM, n.ClockOffset, d.SyncMin, d.SyncMax, d.StallProb, d.StallMin, d.StallMax,
			d.WriteEIOProb, d.SyncEIOProb, d.TornKeepProb, d.BlockSize, d.FailedSync)
	}
	return b.String()
}
