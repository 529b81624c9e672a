package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"walraft/core/node"
)

// progressEvery is how often Config.Progress is called in the window.
const progressEvery = time.Second

// Timing of the run's phases outside the measured window.
const (
	// leaderWait bounds the wait for the first leader and for the leader
	// verification reads from.
	leaderWait = 15 * time.Second
	// drainWait bounds how long producers wait, after the window, for the
	// reply to the request they have in flight. A request abandoned then is
	// not counted as acknowledged.
	drainWait = 10 * time.Second
	// hwmWait is how long verification waits for the HWM to stop moving
	// before it reads: acks=0 and acks=1 records are acknowledged before
	// they commit.
	hwmWait = 3 * time.Second
	// retryBackoff is the pause after an error other than ErrNotLeader
	// and after a failed leader lookup.
	retryBackoff = time.Millisecond
)

// Phases of a run, as the producers see them.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// runState is what the producers share.
type runState struct {
	cfg    Config
	c      *cluster
	phase  atomic.Int32
	killed atomic.Bool
	// killedAt and firstAck (UnixNano) time the failover: from the kill to
	// the first request acknowledged after it.
	killedAt, firstAck atomic.Int64
	acks               ackClock      // gaps and the stall drill (stall.go)
	abort              chan struct{} // closed when producers must drop what is in flight
}

// producer is one closed-loop producer.
type producer struct {
	id   uint64
	part int32
	seq  uint64
	hist *hdrhistogram.Histogram

	acks      []ack
	measured  int64 // acknowledged inside the window
	afterKill int64 // acknowledged after the leader was killed
	failed    int64 // requests that ended in an error other than ErrNotLeader
	redirects int64 // ErrNotLeader answers
	bounced   int   // ErrNotLeader answers in a row
}

// Run runs one benchmark (see the package doc) and returns its result. On
// ctx cancellation the window ends early; the result so far, verified, is
// returned with ctx.Err().
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	defer cfg.setProcs()()
	dir, err := os.MkdirTemp(cfg.Dir, "walraft-bench-")
	if err != nil {
		return Result{}, fmt.Errorf("bench: make run directory: %w", err)
	}
	defer os.RemoveAll(dir)

	c, err := startCluster(cfg, dir)
	if err != nil {
		return Result{}, err
	}
	res, err := runOn(ctx, cfg, c)
	c.shutdown()
	if err != nil && !errors.Is(err, ctx.Err()) {
		return res, err
	}
	if cfg.Ceiling && ctx.Err() == nil {
		ceil, cerr := RunCeiling(ctx, cfg)
		if cerr != nil {
			return res, cerr
		}
		res.setCeiling(ceil)
	}
	return res, err
}

// runOn drives the producers against a started cluster and verifies.
func runOn(ctx context.Context, cfg Config, c *cluster) (Result, error) {
	lead, err := c.waitLeader(leaderWait)
	if err != nil {
		return Result{}, err
	}
	if cfg.Mode == ModeCluster {
		cfg.logf("bench: node %d leads", lead.id) // a standalone node has no one to lead
	}

	st := &runState{cfg: cfg, c: c, abort: make(chan struct{})}
	prods := make([]*producer, cfg.Producers)
	var wg sync.WaitGroup
	for i := range prods {
		p := &producer{id: uint64(i + 1), part: int32(i % cfg.Partitions), hist: newHist()}
		prods[i] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.produce(p)
		}()
	}

	sleep := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	res := Result{
		Mode: cfg.Mode, Nodes: cfg.nodeCount(), Acks: cfg.Acks.String(), Path: cfg.Path.String(),
		Producers: cfg.Producers, Size: cfg.Size, Partitions: cfg.Partitions,
	}
	ok := sleep(cfg.Warmup)
	k0, p0 := c.counters(), takeProcSnap()
	start := time.Now()
	st.acks.start(start)
	st.phase.Store(phaseMeasure)
	c.path.setOn(true)
	if ok && cfg.StallLeaderDiskAfter > 0 {
		if ok = sleep(cfg.StallLeaderDiskAfter); ok {
			if l := c.leader(nil); l != nil {
				cfg.logf("bench: holding leader %d's fsyncs for %v", l.id, cfg.StallFor)
				st.acks.stalled.Store(l.id)
				st.acks.stalledAt.Store(time.Now().UnixNano())
				l.gate.Hold(cfg.StallFor)
				res.KilledLeader = l.id // NewLeader is reported against it
			} else {
				cfg.logf("bench: no leader to stall")
			}
		}
	}
	if ok && cfg.KillLeaderAfter > 0 {
		if ok = sleep(cfg.KillLeaderAfter); ok {
			if l := c.leader(nil); l != nil {
				cfg.logf("bench: killing leader %d", l.id)
				st.killedAt.Store(time.Now().UnixNano())
				st.killed.Store(true)
				l.stop(true)
				res.KilledLeader = l.id
			} else {
				cfg.logf("bench: no leader to kill")
			}
		}
	}
	for ok && time.Since(start) < cfg.Duration {
		// With a Progress callback, wake every progressEvery to report the
		// records written so far; otherwise sleep out the window.
		left := cfg.Duration - time.Since(start)
		if cfg.Progress != nil {
			left = min(left, progressEvery)
		}
		ok = sleep(left)
		if cfg.Progress != nil {
			cfg.Progress(c.counters().records-k0.records, time.Since(start))
		}
	}
	st.phase.Store(phaseStop)
	c.path.setOn(false)
	elapsed := time.Since(start)
	st.acks.close(time.Now())
	k1, p1 := c.counters(), takeProcSnap()

	// Let every producer collect the reply it waits for, within bounds.
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(drainWait):
		close(st.abort)
		<-stopped
	}

	hist := newHist()
	acks := make([][]ack, cfg.Partitions)
	var measured int64
	for _, p := range prods {
		hist.Merge(p.hist)
		acks[p.part] = append(acks[p.part], p.acks...)
		res.Acked += int64(len(p.acks))
		res.AckedAfterKill += p.afterKill
		res.Failed += p.failed
		res.Redirects += p.redirects
		measured += p.measured
	}
	secs := elapsed.Seconds()
	res.Seconds = secs
	res.MsgsPerSec = float64(measured) / secs
	res.MBPerSec = res.MsgsPerSec * float64(cfg.Size) / 1e6
	res.Latency = summarize(hist)
	res.Hist = hist
	res.FsyncsPerSec = float64(k1.syncs-k0.syncs) / secs
	res.Cost = costOf(p0, p1, k0, k1, measured, elapsed)
	if b := k1.batches - k0.batches; b > 0 {
		res.MeanBatch = float64(k1.records-k0.records) / float64(b)
	}
	res.Stages = Stages{
		QueueMs: meanMs(k0.queue, k1.queue), WALMs: meanMs(k0.walSync, k1.walSync), RaftMs: meanMs(k0.raft, k1.raft),
		WALFsyncMs: meanMs(k0.walFsync, k1.walFsync), LogFsyncMs: meanMs(k0.logFsync, k1.logFsync),
	}
	if l := c.acceptingLeader(); l != nil && l.id != res.KilledLeader && res.KilledLeader != 0 {
		res.NewLeader = l.id
	}
	if f := st.firstAck.Load(); f != 0 {
		res.FailoverMs = float64(f-st.killedAt.Load()) / float64(time.Millisecond)
	}
	st.acks.report(&res, start)
	if c.path != nil {
		ids := make([]uint64, len(c.members))
		for i, m := range c.members {
			ids[i] = m.id
		}
		cp := c.path.analyze(lead.id, ids)
		res.CriticalPath = &cp
	}
	if res.StalledLeader != 0 {
		res.KilledLeader = 0 // stalled, not killed
	}
	if err := verify(cfg, c, acks, &res); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

// produce is one producer's loop: one request in flight, to the leader,
// until the window ends.
func (st *runState) produce(p *producer) {
	cfg := st.cfg
	var target *member
	for st.phase.Load() != phaseStop {
		if target == nil || !target.alive.Load() {
			if target = st.c.leader(target); target == nil {
				time.Sleep(retryBackoff)
				continue
			}
		}
		m := target
		p.seq++
		seq := p.seq
		req := node.ProduceRequest{Topic: Topic, Partition: p.part, Acks: cfg.Acks,
			Records: [][]byte{makeRecord(p.id, seq, cfg.Size)}}
		// A channel per request: a reply that comes after the producer gave
		// up on it (its node was killed) must not answer a later request.
		reply := make(chan node.ProduceResponse, 1)
		sent := time.Now()
		m.loop.Post(func() {
			m.node.Produce(req, func(r node.ProduceResponse) { reply <- r })
		})
		var r node.ProduceResponse
		select {
		case r = <-reply:
		case <-m.dead:
			p.failed++ // indeterminate: the node died with it
			target = nil
			continue
		case <-st.abort:
			return
		}
		if !errors.Is(r.Err, node.ErrNotLeader) {
			p.bounced = 0
		}
		switch {
		case r.Err == nil:
			if st.phase.Load() == phaseMeasure {
				recordLatency(p.hist, time.Since(sent))
				p.measured++
				st.acks.ack(time.Now(), m.id)
			}
			if st.killed.Load() {
				p.afterKill++
				st.firstAck.CompareAndSwap(0, time.Now().UnixNano())
			}
			p.acks = append(p.acks, ack{off: r.BaseOffset, producer: p.id, seq: seq})
		case errors.Is(r.Err, node.ErrNotLeader):
			p.redirects++
			p.bounced++
			if p.bounced > 1 {
				// Hints went round without reaching a leader whose gate
				// is open (an election, or a new leader that has not
				// applied an entry of its term yet): do not spin.
				time.Sleep(retryBackoff)
			}
			if h := st.c.member(r.LeaderHint); h != nil && h != m {
				target = h
				continue
			}
			if target = st.c.leader(m); target == nil {
				time.Sleep(retryBackoff)
			}
		default:
			p.failed++
			time.Sleep(retryBackoff)
		}
	}
}

// verify reads every acknowledged record back from the leader.
func verify(cfg Config, c *cluster, acks [][]ack, res *Result) error {
	l, err := c.waitLeader(leaderWait)
	if err != nil {
		return fmt.Errorf("bench: verify: %w", err)
	}
	for part, pa := range acks {
		if len(pa) == 0 {
			continue
		}
		var maxOff int64
		for _, a := range pa {
			maxOff = max(maxOff, a.off)
		}
		waitHWM(l, int32(part), maxOff+1)
		fetch := func(off int64, maxBytes int) ([]node.Record, int64, error) {
			var resp node.FetchResponse
			if !l.do(func(n *node.Node) {
				resp = n.Fetch(node.FetchRequest{Topic: Topic, Partition: int32(part), Offset: off, MaxBytes: maxBytes})
			}) {
				return nil, 0, fmt.Errorf("leader %d is gone", l.id)
			}
			return resp.Records, resp.HWM, resp.Err
		}
		v, err := verifyPartition(pa, cfg.Size, fetch)
		res.Verified += v.verified
		res.Lost += v.lost
		res.LostSamples = append(res.LostSamples, v.samples...)
		if err != nil {
			return err
		}
	}
	cfg.logf("bench: verified %d, lost %d (read from node %d)", res.Verified, res.Lost, l.id)
	return nil
}

// waitHWM waits until the partition's HWM on m reaches want, or has not
// moved for hwmWait.
func waitHWM(m *member, part int32, want int64) {
	last, since := int64(-1), time.Now()
	for {
		var hwm int64
		ok := m.do(func(n *node.Node) {
			if ps, found := n.PartitionStatus(Topic, part); found {
				hwm = ps.HWM
			}
		})
		if !ok || hwm >= want {
			return
		}
		if hwm != last {
			last, since = hwm, time.Now()
		} else if time.Since(since) > hwmWait {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}
