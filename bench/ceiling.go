package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"walraft/core/env"
	"walraft/core/osenv"
)

// CeilingResult is what the disk allows with no replication code: raw
// group-commit appends with the run's producer count and record size.
type CeilingResult struct {
	// OneFile: one file; every producer acked when the fsync of the batch
	// holding its record completed.
	OneFile CeilingRun `json:"ceiling_one_file"`
	// Quorum: three files in three directories, each group-committing on
	// its own; a record is acked when two of the three have synced it.
	Quorum CeilingRun `json:"ceiling_quorum"`
	// WALThenQuorum: the shape of walraft's acks=all path with nothing
	// else: a record is group-committed to one file (the leader's WAL),
	// and only once that fsync completed does it go to three more files
	// (the Raft logs), acked when two of them have synced it. WAL first
	// means two fsyncs in series, so this, not Quorum, is the bound of
	// the design on this disk.
	WALThenQuorum CeilingRun `json:"ceiling_wal_then_quorum"`
}

// CeilingRun is one ceiling measurement.
type CeilingRun struct {
	// Shape names the stages: "1 file", "2 of 3 files", or
	// "1 file, then 2 of 3 files".
	Shape string `json:"shape"`
	// Files and Quorum describe the last stage.
	Files      int     `json:"files"`
	Quorum     int     `json:"quorum"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	Latency
	FsyncsPerSec float64 `json:"fsyncs_per_sec"`
	MeanBatch    float64 `json:"mean_batch"`
}

// RunCeiling measures the three ceilings with cfg's Producers, Size, Warmup,
// Duration and Dir (the other fields are ignored), one after the other.
func RunCeiling(ctx context.Context, cfg Config) (CeilingResult, error) {
	if err := cfg.Validate(); err != nil {
		return CeilingResult{}, err
	}
	defer cfg.setProcs()()
	var res CeilingResult
	var err error
	one, quorum := gcStage{files: 1, quorum: 1}, gcStage{files: 3, quorum: 2}
	if res.OneFile, err = runGroupCommit(ctx, cfg, one); err != nil {
		return res, err
	}
	if res.Quorum, err = runGroupCommit(ctx, cfg, quorum); err != nil {
		return res, err
	}
	if res.WALThenQuorum, err = runGroupCommit(ctx, cfg, one, quorum); err != nil {
		return res, err
	}
	return res, nil
}

// gcFile is one file of the raw group-commit loop. Loop only.
type gcFile struct {
	f       env.File
	buf     []byte // appended records not yet written
	bufEnd  uint64 // sequence number after the last record in buf
	syncing bool
	synced  uint64 // every record below this sequence number is durable
}

// gcStage is one stage of a ceiling: files group-committing files, a record
// passing the stage once quorum of them synced it.
type gcStage struct{ files, quorum int }

func (s gcStage) String() string {
	if s.files == 1 {
		return "1 file"
	}
	return fmt.Sprintf("%d of %d files", s.quorum, s.files)
}

// groupCommit is the raw loop of one stage: records get consecutive
// sequence numbers, each file writes everything pending with one write and
// one fsync while no fsync of its own is in flight, and a record passes
// once quorum files have synced it: it is acked, or appended to the next
// stage. Everything runs on one osenv.Loop, like a node.
type groupCommit struct {
	files   []*gcFile
	quorum  int
	then    *groupCommit // the next stage, nil for the last
	next    uint64
	waiters []gcWaiter // waiters[i] is record acked+i
	acked   uint64
	err     *error        // shared by every stage of a run
	fsyncs  *atomic.Int64 // shared by every stage of a run
	batches atomic.Int64  // syncs of files[0]
	records atomic.Int64  // records covered by them
}

// gcWaiter is a record waiting in a stage and its producer's channel.
type gcWaiter struct {
	rec  []byte
	done chan struct{}
}

func (g *groupCommit) append(rec []byte, done chan struct{}) {
	if *g.err != nil {
		return // the run is failing; the producer is released by abort
	}
	g.next++
	g.waiters = append(g.waiters, gcWaiter{rec: rec, done: done})
	for _, f := range g.files {
		f.buf = append(f.buf, rec...)
		f.bufEnd = g.next
		g.kick(f)
	}
}

// kick starts f's next write+fsync if it has pending records and no fsync
// in flight.
func (g *groupCommit) kick(f *gcFile) {
	if f.syncing || len(f.buf) == 0 || *g.err != nil {
		return
	}
	if _, err := f.f.Write(f.buf); err != nil {
		*g.err = err
		return
	}
	upto, n := f.bufEnd, f.bufEnd-f.synced
	f.buf = f.buf[:0] // the bytes are in the kernel now
	f.syncing = true
	g.fsyncs.Add(1)
	if f == g.files[0] {
		g.batches.Add(1)
		g.records.Add(int64(n))
	}
	f.f.Sync(func(err error) {
		f.syncing = false
		if err != nil {
			*g.err = err
			return
		}
		f.synced = upto
		g.release()
		g.kick(f)
	})
}

// release passes on every record that quorum files have synced.
func (g *groupCommit) release() {
	marks := make([]uint64, len(g.files))
	for i, f := range g.files {
		marks[i] = f.synced
	}
	slices.Sort(marks)
	durable := marks[len(marks)-g.quorum] // the quorum-th highest
	for g.acked < durable {
		w := g.waiters[0]
		g.waiters[0] = gcWaiter{}
		g.waiters = g.waiters[1:]
		g.acked++
		if g.then != nil {
			g.then.append(w.rec, w.done)
		} else {
			close(w.done)
		}
	}
}

// runGroupCommit measures the raw group-commit loop through stages, in
// series: a record enters the first and is acked when it passes the last.
func runGroupCommit(ctx context.Context, cfg Config, stages ...gcStage) (CeilingRun, error) {
	last := stages[len(stages)-1]
	run := CeilingRun{Files: last.files, Quorum: last.quorum}
	for i, st := range stages {
		if i > 0 {
			run.Shape += ", then "
		}
		run.Shape += st.String()
	}
	dir, err := os.MkdirTemp(cfg.Dir, "walraft-ceiling-")
	if err != nil {
		return run, fmt.Errorf("bench: ceiling: %w", err)
	}
	defer os.RemoveAll(dir)
	loop := osenv.NewLoop()
	defer loop.Close()

	var runErr error
	var fsyncs atomic.Int64
	var g, prev *groupCommit
	for si, st := range stages {
		sg := &groupCommit{quorum: st.quorum, err: &runErr, fsyncs: &fsyncs}
		for i := range st.files {
			fs, err := osenv.NewFS(filepath.Join(dir, fmt.Sprintf("s%d-f%d", si, i)), loop)
			if err != nil {
				return run, fmt.Errorf("bench: ceiling: %w", err)
			}
			f, err := fs.Create("log")
			if err != nil {
				return run, fmt.Errorf("bench: ceiling: %w", err)
			}
			defer f.Close()
			synced := make(chan error, 1)
			fs.SyncDir(func(err error) { synced <- err })
			if err := <-synced; err != nil {
				return run, fmt.Errorf("bench: ceiling: %w", err)
			}
			sg.files = append(sg.files, &gcFile{f: f})
		}
		if prev == nil {
			g = sg
		} else {
			prev.then = sg
		}
		prev = sg
	}

	var phase atomic.Int32
	abort := make(chan struct{})
	hists := make([]*histBox, cfg.Producers)
	var wg sync.WaitGroup
	for i := range hists {
		h := &histBox{hist: newHist()}
		hists[i] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(1); phase.Load() != phaseStop; seq++ {
				rec := makeRecord(uint64(i+1), seq, cfg.Size)
				done := make(chan struct{})
				sent := time.Now()
				loop.Post(func() { g.append(rec, done) })
				select {
				case <-done:
				case <-abort:
					return
				}
				if phase.Load() == phaseMeasure {
					recordLatency(h.hist, time.Since(sent))
					h.n++
				}
			}
		}()
	}
	sleep := func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	sleep(cfg.Warmup)
	var f0, b0, r0 int64
	loop.Do(func() { f0, b0, r0 = fsyncs.Load(), g.batches.Load(), g.records.Load() })
	start := time.Now()
	phase.Store(phaseMeasure)
	sleep(cfg.Duration)
	phase.Store(phaseStop)
	el := time.Since(start).Seconds()
	var f1, b1, r1 int64
	var gerr error
	loop.Do(func() { f1, b1, r1, gerr = fsyncs.Load(), g.batches.Load(), g.records.Load(), runErr })
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	if gerr != nil {
		// Producers wait for acks that will never come.
		close(abort)
		<-stopped
		return run, fmt.Errorf("bench: ceiling: %w", gerr)
	}
	select {
	case <-stopped:
	case <-time.After(drainWait):
		close(abort)
		<-stopped
	}
	hist := newHist()
	var n int64
	for _, h := range hists {
		hist.Merge(h.hist)
		n += h.n
	}
	run.MsgsPerSec = float64(n) / el
	run.Latency = summarize(hist)
	run.FsyncsPerSec = float64(f1-f0) / el
	if b1 > b0 {
		run.MeanBatch = float64(r1-r0) / float64(b1-b0)
	}
	return run, ctx.Err()
}

// histBox is one ceiling producer's histogram and count.
type histBox struct {
	hist *hdrhistogram.Histogram
	n    int64
}
