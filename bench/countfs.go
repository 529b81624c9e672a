package bench

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"walraft/core/env"
	"walraft/core/node"
)

// CountingFS wraps an env.FS and counts the durability requests made through
// it: File.Sync calls and FS.SyncDir calls. It also remembers every open
// handle so a killed node's files can be closed without a sync.
//
// The counts are requests, not fsync system calls: osenv merges Syncs of one
// handle that queue up while an fsync runs. The core issues at most one
// Sync in flight per WAL and per Raft log, so in practice the two agree.
// It is safe for concurrent use; the counters may be read from any
// goroutine while the node runs.
type CountingFS struct {
	env.FS
	// path and id, when path is set, note the node's Raft-log syncs for
	// Config.CriticalPath.
	path *pathRecorder
	id   uint64

	syncs    atomic.Int64
	dirSyncs atomic.Int64
	writes   atomic.Int64 // File.Write calls (each is one write system call in osenv)
	// walSync and logSync time File.Sync from call to completion, for
	// files whose name starts with "wal/" and for the rest (the Raft log).
	walSync, logSync timeSum

	mu   sync.Mutex
	open map[*countingFile]struct{}
}

var (
	_ env.FS   = (*CountingFS)(nil)
	_ env.File = (*countingFile)(nil)
)

// NewCountingFS wraps fs.
func NewCountingFS(fs env.FS) *CountingFS {
	return &CountingFS{FS: fs, open: map[*countingFile]struct{}{}}
}

// Syncs returns how many File.Sync calls were made on files of this FS.
func (c *CountingFS) Syncs() int64 { return c.syncs.Load() }

// Writes returns how many File.Write calls were made on files of this FS.
func (c *CountingFS) Writes() int64 { return c.writes.Load() }

// DirSyncs returns how many SyncDir calls were made.
func (c *CountingFS) DirSyncs() int64 { return c.dirSyncs.Load() }

// Create implements env.FS.
func (c *CountingFS) Create(name string) (env.File, error) {
	f, err := c.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return c.track(f), nil
}

// Open implements env.FS.
func (c *CountingFS) Open(name string) (env.File, error) {
	f, err := c.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return c.track(f), nil
}

// SyncDir implements env.FS.
func (c *CountingFS) SyncDir(done func(error)) {
	c.dirSyncs.Add(1)
	c.FS.SyncDir(done)
}

func (c *CountingFS) track(f env.File) *countingFile {
	cf := &countingFile{File: f, fs: c}
	c.mu.Lock()
	c.open[cf] = struct{}{}
	c.mu.Unlock()
	return cf
}

// CloseAll closes every handle still open, without syncing, and reports
// how many it closed. It models a crashed process's descriptors going away:
// what was written stays in the page cache, what was not synced is not
// synced by this call.
func (c *CountingFS) CloseAll() int {
	c.mu.Lock()
	files := make([]*countingFile, 0, len(c.open))
	for f := range c.open {
		files = append(files, f)
	}
	clear(c.open)
	c.mu.Unlock()
	for _, f := range files {
		f.File.Close() // a removed file's handle is already closed: ignore
	}
	return len(files)
}

type countingFile struct {
	env.File
	fs *CountingFS
}

func (f *countingFile) Sync(done func(error)) {
	f.fs.syncs.Add(1)
	sum := &f.fs.logSync
	if strings.HasPrefix(f.Name(), "wal/") {
		sum = &f.fs.walSync
	}
	start := time.Now()
	name := f.Name()
	f.fs.path.file(f.fs.id, name, false)
	f.File.Sync(func(err error) {
		f.fs.path.file(f.fs.id, name, true)
		sum.add(time.Since(start))
		done(err)
	})
}

func (f *countingFile) Write(p []byte) (int, error) {
	f.fs.writes.Add(1)
	return f.File.Write(p)
}

func (f *countingFile) Close() error {
	f.fs.mu.Lock()
	delete(f.fs.open, f)
	f.fs.mu.Unlock()
	return f.File.Close()
}

// nodeTracer is a node's env.Tracer. It counts the WAL batches the node
// made while it led (or ran standalone), and times the stages of the
// leader's produce path per batch. The node traces (see core/node and
// core/wal):
//
//	raft.role   A=new role
//	produce     A=partition B=base            a request was appended
//	wal.batch   A=partition B=base C=last     a WAL batch was cut and written
//	wal.notice  A=partition B=base C=last     its fsync completed
//	propose     A=partition B=base            it was proposed to Raft
//	apply       C=base D=result (0 applied)   an entry was applied
//	apply.legacy  the same for a canonical (one-record) entry
//
// Batches a follower writes while applying entries are not counted: the
// mean batch size is about the leader's group commit. The Raft stage is
// timed only with one partition (apply does not name the partition).
//
// Trace runs on the node's loop; the counters are read from other
// goroutines.
type nodeTracer struct {
	standalone bool
	timeRaft   bool
	path       *pathRecorder // Config.CriticalPath: nil when off
	id         uint64

	leading bool                   // loop only
	waiting map[int64][]stamp      // loop only: produce times by partition, in offset order
	cuts    map[[2]int64]time.Time // loop only: batch cut times by partition and base
	props   map[int64]time.Time    // loop only: propose times by base

	batches atomic.Int64
	records atomic.Int64
	queue   timeSum // oldest request's produce -> its batch is cut
	walSync timeSum // batch cut -> fsync done (wal.notice)
	raft    timeSum // propose -> applied on the leader
}

type stamp struct {
	base int64
	at   time.Time
}

// maxTracked bounds the tracer's maps if events it expects never come
// (a batch truncated away, a proposal dropped).
const maxTracked = 1 << 16

func newNodeTracer(standalone, timeRaft bool) *nodeTracer {
	return &nodeTracer{standalone: standalone, timeRaft: timeRaft,
		waiting: map[int64][]stamp{}, cuts: map[[2]int64]time.Time{}, props: map[int64]time.Time{}}
}

// Trace implements env.Tracer.
func (t *nodeTracer) Trace(e env.Event) {
	if t.path != nil {
		switch {
		case e.Kind == "propose":
			t.path.add(t.id, 0, pePropose, uint64(e.B))
		case e.Kind == "apply" && e.D == 0:
			t.path.add2(t.id, 0, peApply, uint64(e.A), uint64(e.C))
		}
	}
	if e.Kind == "raft.role" {
		t.leading = node.Role(e.A) == node.RoleLeader
		clear(t.waiting)
		clear(t.cuts)
		clear(t.props)
		return
	}
	if !t.standalone && !t.leading {
		return
	}
	switch e.Kind {
	case "produce":
		if w := t.waiting[e.A]; len(w) < maxTracked {
			t.waiting[e.A] = append(w, stamp{e.B, time.Now()})
		}
	case "wal.batch":
		w := t.waiting[e.A]
		i := 0
		for i < len(w) && w[i].base <= e.C {
			i++
		}
		if i > 0 {
			t.queue.add(time.Since(w[0].at))
		}
		t.waiting[e.A] = append(w[:0], w[i:]...)
		if len(t.cuts) < maxTracked {
			t.cuts[[2]int64{e.A, e.B}] = time.Now()
		}
	case "wal.notice":
		t.batches.Add(1)
		t.records.Add(e.C - e.B + 1)
		k := [2]int64{e.A, e.B}
		if cut, ok := t.cuts[k]; ok {
			t.walSync.add(time.Since(cut))
			delete(t.cuts, k)
		}
	case "propose":
		if t.timeRaft && len(t.props) < maxTracked {
			if _, dup := t.props[e.B]; !dup { // legacy: one proposal per record, same base
				t.props[e.B] = time.Now()
			}
		}
	case "apply", "apply.legacy":
		if at, ok := t.props[e.C]; ok && e.D == 0 {
			t.raft.add(time.Since(at))
			delete(t.props, e.C)
		}
	}
}

// timeSum accumulates durations; safe for concurrent use.
type timeSum struct {
	n, ns atomic.Int64
}

func (s *timeSum) add(d time.Duration) {
	s.n.Add(1)
	s.ns.Add(int64(d))
}

// snapshot returns the count and total so far.
func (s *timeSum) snapshot() (int64, time.Duration) {
	return s.n.Load(), time.Duration(s.ns.Load())
}
