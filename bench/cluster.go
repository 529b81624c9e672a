package bench

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"walraft/core/env"
	"walraft/core/node"
	"walraft/core/osenv"
)

// ErrNoLeader is returned when no node accepts produce within the wait.
var ErrNoLeader = errors.New("bench: no leader")

// member is one running node with its real environment.
type member struct {
	id     uint64
	loop   *osenv.Loop
	fs     *CountingFS
	tr     *osenv.Transport // nil in standalone mode
	tracer *nodeTracer
	gate   *osenv.SyncGate // holds the node's fsyncs (Config.StallLeaderDiskAfter)
	node   *node.Node      // set and used on the loop only

	alive atomic.Bool
	dead  chan struct{} // closed when the member is killed or shut down
	once  sync.Once
}

// do runs fn with the node on its loop and waits. It reports false when the
// member is gone (killed or shut down), in which case fn may not have run.
func (m *member) do(fn func(n *node.Node)) bool {
	if !m.alive.Load() {
		return false
	}
	ran := false
	m.loop.Do(func() {
		if m.node != nil {
			fn(m.node)
			ran = true
		}
	})
	return ran
}

// status returns the node's status; ok is false when the member is gone.
func (m *member) status() (st node.Status, ok bool) {
	ok = m.do(func(n *node.Node) { st = n.Status() })
	return st, ok
}

// accepts reports whether the member accepts produce now.
func (m *member) accepts() bool {
	st, ok := m.status()
	return ok && st.Failed == nil && st.Gate && (st.Role == node.RoleLeader || st.Role == node.RoleStandalone)
}

// stop ends the member. With crash, the loop stops without the node running
// again and the files are closed without a sync (a killed process); without
// it, the node is closed on its loop first.
func (m *member) stop(crash bool) {
	m.once.Do(func() {
		if !crash {
			m.loop.Do(func() {
				if m.node != nil {
					m.node.Close()
				}
			})
		}
		m.alive.Store(false)
		close(m.dead)
		// The loop runs what is already queued and exits; later posts (a
		// producer's request, an fsync completion, a timer) are dropped,
		// so the node never runs again.
		m.loop.Close()
		if m.tr != nil {
			m.tr.Close()
		}
		m.fs.CloseAll()
	})
}

// nopNet is the network of a standalone node, which never sends.
type nopNet struct{}

func (nopNet) Send(env.NodeID, []byte) {}

// cluster is the set of members of one run.
type cluster struct {
	cfg     Config
	members []*member     // members[i].id == i+1
	path    *pathRecorder // Config.CriticalPath: nil when off

	mu     sync.Mutex
	lead   *member
	polled time.Time
}

// startCluster starts cfg.nodeCount() nodes with their files under dir/n<id>.
func startCluster(cfg Config, dir string) (*cluster, error) {
	c := &cluster{cfg: cfg}
	n := cfg.nodeCount()
	if cfg.CriticalPath {
		c.path = newPathRecorder()
	}
	peers := make([]uint64, n)
	for i := range peers {
		peers[i] = uint64(i + 1)
	}
	fail := func(err error) (*cluster, error) {
		c.shutdown()
		return nil, err
	}
	for _, id := range peers {
		m := &member{id: id, loop: osenv.NewLoop(), dead: make(chan struct{}), gate: &osenv.SyncGate{},
			tracer: newNodeTracer(n == 1, n > 1 && cfg.Partitions == 1)}
		m.tracer.path, m.tracer.id = c.path, id
		m.alive.Store(true)
		c.members = append(c.members, m)
		fs, err := osenv.NewFSWithGate(filepath.Join(dir, fmt.Sprintf("n%d", id)), m.loop, m.gate)
		if err != nil {
			return fail(fmt.Errorf("bench: node %d: %w", id, err))
		}
		m.fs = NewCountingFS(fs)
		m.fs.path, m.fs.id = c.path, id
		if n > 1 {
			m.tr, err = osenv.NewTransport(osenv.TransportConfig{ID: id, Listen: "127.0.0.1:0"}, m.loop,
				func(from env.NodeID, msg []byte) {
					if m.node != nil { // on the loop, like every use of m.node
						c.path.message(m.id, from, msg, true)
						m.node.Receive(from, msg)
					}
				})
			if err != nil {
				return fail(fmt.Errorf("bench: node %d: %w", id, err))
			}
		}
	}
	// Every listener is up: tell each transport where the others are.
	for _, a := range c.members {
		for _, b := range c.members {
			if a != b {
				a.tr.SetPeer(b.id, b.tr.Addr())
			}
		}
	}
	for _, m := range c.members {
		var net env.Network = nopNet{}
		if m.tr != nil {
			net = m.tr
			if c.path != nil {
				net = pathNet{Network: m.tr, path: c.path, id: m.id}
			}
		}
		e := osenv.NewEnv(m.loop, m.fs, net, osenv.WallSeed()+m.id, m.tracer)
		ncfg := node.Config{
			ID:     m.id,
			Peers:  peers,
			Topics: []node.TopicConfig{{Name: Topic, Partitions: int32(cfg.Partitions)}},
			Path:   cfg.Path,
		}
		cfg.raftTiming(&ncfg)
		if cfg.Tune != nil {
			cfg.Tune(&ncfg)
		}
		var err error
		m.loop.Do(func() { m.node, err = node.New(ncfg, e) })
		if err != nil {
			return fail(fmt.Errorf("bench: start node %d: %w", m.id, err))
		}
	}
	return c, nil
}

// leader returns the member that accepts produce, or nil if none does now.
// A cached answer is reused unless it is stale (the caller just got
// ErrNotLeader from it, or it was killed); rediscovery asks every live node
// for its status, at most once a millisecond however many producers ask.
func (c *cluster) leader(stale *member) *member {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.lead; l != nil && l != stale && l.alive.Load() {
		return l
	}
	if time.Since(c.polled) < time.Millisecond {
		return nil
	}
	c.lead = nil
	for _, m := range c.members {
		if m.accepts() {
			c.lead = m
			break
		}
	}
	c.polled = time.Now()
	return c.lead
}

// member returns the live member with the given id, or nil.
func (c *cluster) member(id uint64) *member {
	if id == 0 || id > uint64(len(c.members)) {
		return nil
	}
	m := c.members[id-1]
	if !m.alive.Load() {
		return nil
	}
	return m
}

// waitLeader polls until a member accepts produce or timeout passes.
func (c *cluster) waitLeader(timeout time.Duration) (*member, error) {
	deadline := time.Now().Add(timeout)
	for {
		if l := c.leader(nil); l != nil {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w after %v", ErrNoLeader, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// counters is a snapshot of the cluster's counters.
type counters struct {
	syncs, batches, records int64
	writes, flushes         int64   // file writes and transport flushes, every node
	queue, walSync, raft    sumSnap // leader stages
	walFsync, logFsync      sumSnap // File.Sync durations
}

type sumSnap struct {
	n int64
	d time.Duration
}

func (a sumSnap) plus(s *timeSum) sumSnap {
	n, d := s.snapshot()
	return sumSnap{a.n + n, a.d + d}
}

// meanMs is the mean of the durations added between a and b, in ms.
func meanMs(a, b sumSnap) float64 {
	if b.n <= a.n {
		return 0
	}
	return float64(b.d-a.d) / float64(b.n-a.n) / float64(time.Millisecond)
}

// counters sums the counters over every member, killed ones included
// (their counters stopped when they died).
func (c *cluster) counters() counters {
	var k counters
	for _, m := range c.members {
		k.syncs += m.fs.Syncs() + m.fs.DirSyncs()
		k.writes += m.fs.Writes()
		if m.tr != nil {
			k.flushes += int64(m.tr.Stats().Flushes)
		}
		k.batches += m.tracer.batches.Load()
		k.records += m.tracer.records.Load()
		k.queue = k.queue.plus(&m.tracer.queue)
		k.walSync = k.walSync.plus(&m.tracer.walSync)
		k.raft = k.raft.plus(&m.tracer.raft)
		k.walFsync = k.walFsync.plus(&m.fs.walSync)
		k.logFsync = k.logFsync.plus(&m.fs.logSync)
	}
	return k
}

// shutdown closes every member still running.
func (c *cluster) shutdown() {
	for _, m := range c.members {
		if m.fs == nil { // failed before its FS existed
			m.alive.Store(false)
			m.loop.Close()
			continue
		}
		m.stop(false)
	}
}

// pathNet notes the Raft messages a node sends (Config.CriticalPath).
type pathNet struct {
	env.Network
	path *pathRecorder
	id   uint64
}

// Send implements env.Network.
func (p pathNet) Send(to env.NodeID, msg []byte) {
	p.path.message(p.id, to, msg, false)
	p.Network.Send(to, msg)
}
