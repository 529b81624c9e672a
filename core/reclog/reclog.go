package reclog

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"walraft/core/env"
)

// Errors. Test with errors.Is; the returned errors wrap them with context.
var (
	// ErrTooLarge: a payload exceeds Options.MaxRecordBytes (Append), or a
	// recovered record does (Open: the log was written with a larger
	// limit).
	ErrTooLarge = errors.New("reclog: record too large")
	// ErrFailed: a write, sync or directory sync failed; the log is
	// fail-stop until reopened.
	ErrFailed = errors.New("reclog: log failed")
	// ErrCorrupt: data that had been made durable is damaged. The error
	// names the segment file and byte offset.
	ErrCorrupt = errors.New("reclog: corrupt log")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("reclog: log closed")
	// ErrOutOfRange: a seq outside the records held.
	ErrOutOfRange = errors.New("reclog: seq out of range")
	// ErrInvalidOptions: Options that cannot be used.
	ErrInvalidOptions = errors.New("reclog: invalid options")
)

// Defaults and bounds of Options.
const (
	// DefaultSegmentBytes is the segment size used when Options.SegmentBytes
	// is 0.
	DefaultSegmentBytes = 64 << 20
	// DefaultMaxRecordBytes is the record limit used when
	// Options.MaxRecordBytes is 0.
	DefaultMaxRecordBytes = 4 << 20
	// MinSegmentBytes and MaxSegmentBytes bound Options.SegmentBytes.
	MinSegmentBytes = 1 << 10
	MaxSegmentBytes = 1 << 30
	// MaxMaxRecordBytes bounds Options.MaxRecordBytes.
	MaxMaxRecordBytes = 256 << 20
)

// Options for a record log; zero values get documented defaults.
type Options struct {
	// SegmentBytes: rotate to a new segment file when the current one
	// would exceed this (default 64 MiB, range [1 KiB, 1 GiB]).
	SegmentBytes int64
	// MaxRecordBytes: the largest payload Append accepts (default 4 MiB,
	// at most 256 MiB); larger gets ErrTooLarge.
	MaxRecordBytes int
}

// Validate reports options outside their ranges (zero means default).
func (o Options) Validate() error {
	switch {
	case o.SegmentBytes != 0 && (o.SegmentBytes < MinSegmentBytes || o.SegmentBytes > MaxSegmentBytes):
		return fmt.Errorf("%w: SegmentBytes %d outside [%d, %d]", ErrInvalidOptions, o.SegmentBytes, MinSegmentBytes, MaxSegmentBytes)
	case o.MaxRecordBytes < 0 || o.MaxRecordBytes > MaxMaxRecordBytes:
		return fmt.Errorf("%w: MaxRecordBytes %d outside [0, %d]", ErrInvalidOptions, o.MaxRecordBytes, MaxMaxRecordBytes)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.MaxRecordBytes == 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	return o
}

// segment is one segment file and its part of the index.
type segment struct {
	id      uint64
	name    string
	f       env.File
	baseSeq uint64
	basePos uint64
	// size is the logical size: the file offset where the next write goes.
	// It differs from the file's size only while a truncation of this
	// segment waits to run.
	size int64
	// starts[k] is the file offset of the first chunk of record baseSeq+k.
	starts []uint32
	// dirty: written or shrunk since the last file sync was issued.
	dirty bool
}

func (s *segment) next() uint64 { return s.baseSeq + uint64(len(s.starts)) }
func (s *segment) end() uint64  { return s.basePos + uint64(s.size) }

type opKind uint8

const (
	opSync opKind = iota // make everything written so far durable
	opCut                // durable truncation: remove segments, then shrink one
)

// op is one entry of the log's I/O queue. Ops run one at a time, in order.
type op struct {
	kind    opKind
	started bool
	// holds: appends issued while the op is queued are held in memory
	// (Log.pending) and written once it completed. Every opCut holds (a
	// truncation is durable before anything is written over it), and so
	// does recovery's first op (see Open).
	holds   bool
	waiters []func(error)
	// first backs waiters while there is only one, so the common
	// single-waiter sync costs no extra allocation.
	first [1]func(error)

	// opCut: segments to remove (phase 1), then target is shrunk to size
	// (phase 2); pos is the log position of the cut.
	remove []*segment
	target *segment
	size   int64
	pos    uint64

	// progress of the running phase
	phase       int
	outstanding int
	err         error
	syncTo      uint64 // opSync: position durable when it completes
	retries     int    // Bugs.RetryFailedSync: retries issued
}

// Log is a record log. It is not safe for concurrent use: call it from the
// owner's event loop only.
type Log struct {
	fs     env.FS
	prefix string
	opts   Options

	segs   []*segment // in order; the last is the active segment
	nextID uint64     // id of the next segment created

	// pending holds appends not yet written because a truncation (or
	// recovery's first sync) is waiting to become durable; they are
	// records [written(), next).
	pending [][]byte
	next    uint64

	// durable is the log position known durable: the mark written into
	// new chunks.
	durable uint64

	ops     []*op
	holds   int  // ops in ops with holds set: appends wait while > 0
	nsDirty bool // segments created or removed since the last SyncDir issued
	buf     []byte

	err    error // fail-stop error (wraps ErrFailed)
	closed bool

	bugs Bugs
}

// Bugs are deliberate defects for the harness's known-bad variants,
// reachable only through OpenWithBugs (never from Options). The zero value
// is the correct log.
type Bugs struct {
	// RetryFailedSync: when a sync fails, issue it again (up to
	// maxSyncRetries times) and, if a retry succeeds, treat the records as
	// durable instead of failing the log. Correct on a disk that keeps
	// failed blocks dirty; on Linux the retry succeeds without them
	// (fsyncgate), so acknowledged records are lost.
	RetryFailedSync bool
	// CutAtCorruption: recovery treats damage to synced data like a torn
	// tail: it cuts the log at the first bad record and carries on with
	// the shorter log, instead of failing with ErrCorrupt.
	CutAtCorruption bool
	// NoRecoveryRewrite: recovery only syncs the unproven tail it read
	// back, without writing it again first: pages a killed process's
	// failed fsync left clean are then never written, yet the sync
	// succeeds and later chunks mark them durable.
	NoRecoveryRewrite bool
	// CutKeepsDurableMark: a completed truncation keeps the durable mark
	// at its old, higher value (durable marks "only move forward"), so
	// the chunks written after a cut, until the next sync, claim bytes
	// past the cut durable, their own unsynced bytes included: a torn
	// crash that loses one of them and keeps a later one leaves what
	// recovery takes for damage to synced data.
	CutKeepsDurableMark bool
}

// maxSyncRetries bounds Bugs.RetryFailedSync's retries of one sync.
const maxSyncRetries = 3

// First returns the seq of the first record held.
func (l *Log) First() uint64 { return l.segs[0].baseSeq }

// Next returns the seq the next Append gets.
func (l *Log) Next() uint64 { return l.next }

// written returns the seq after the last record written to a file.
func (l *Log) written() uint64 { return l.active().next() }

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// Err returns a non-nil error (wrapping ErrFailed) once the log failed.
func (l *Log) Err() error { return l.err }

// Append frames and writes one record to the volatile image and returns its
// seq. While a truncation, or right after Open the recovery's first sync,
// waits to become durable the record is held in memory and written after
// it. An error wrapping ErrFailed means the log is now fail-stop.
func (l *Log) Append(payload []byte) (uint64, error) {
	return l.AppendBatch([][]byte{payload})
}

// AppendBatch appends payloads as consecutive records with one write per
// segment touched, and returns the seq of the first. ErrTooLarge and
// ErrClosed reject the whole batch; a write error makes the log fail-stop
// (ErrFailed) and may leave a prefix of the batch written. The log keeps no
// reference to payloads after the call: the caller may reuse them.
func (l *Log) AppendBatch(payloads [][]byte) (uint64, error) {
	if l.closed {
		return 0, ErrClosed
	}
	if l.err != nil {
		return 0, l.err
	}
	for _, p := range payloads {
		if len(p) > l.opts.MaxRecordBytes {
			return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(p), l.opts.MaxRecordBytes)
		}
	}
	first := l.next
	if l.holds > 0 {
		for _, p := range payloads {
			l.pending = append(l.pending, slices.Clone(p))
		}
		l.next += uint64(len(payloads))
		return first, nil
	}
	if err := l.write(payloads); err != nil {
		return 0, err
	}
	return first, nil
}

// write frames payloads as the records after written() and writes them,
// rotating segments as needed.
func (l *Log) write(payloads [][]byte) error {
	seg := l.active()
	seq := seg.next()
	buf := l.buf[:0]
	var starts []uint32
	for _, p := range payloads {
		off := seg.size + int64(len(buf))
		if len(seg.starts)+len(starts) > 0 && off+framedLen(off, len(p)) > l.opts.SegmentBytes {
			if err := l.flush(seg, buf, starts); err != nil {
				return err
			}
			var err error
			if seg, err = l.rotate(); err != nil {
				return err
			}
			buf, starts = buf[:0], starts[:0]
			buf = append(buf, encodeSegHeader(segHeader{id: seg.id, baseSeq: seg.baseSeq, basePos: seg.basePos})...)
			off = int64(len(buf))
		}
		var at int64
		buf, at = frame(buf, off, seq, l.durable, p)
		if at > maxFileOffset {
			panic(fmt.Sprintf("reclog: %s: record %d at offset %d beyond the index range", seg.name, seq, at))
		}
		starts = append(starts, uint32(at))
		seq++
	}
	err := l.flush(seg, buf, starts)
	if cap(buf) <= 4<<20 {
		l.buf = buf[:0] // reuse moderate buffers only
	}
	return err
}

// flush writes buf at the end of seg and indexes the records starting at
// starts. A failed write makes the log fail-stop.
func (l *Log) flush(seg *segment, buf []byte, starts []uint32) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := seg.f.Write(buf)
	seg.size += int64(n)
	seg.dirty = true
	if err == nil && n != len(buf) {
		err = fmt.Errorf("short write of %d of %d bytes: %w", n, len(buf), env.ErrIO)
	}
	if err != nil {
		return l.fail(fmt.Errorf("write %s: %w", seg.name, err))
	}
	seg.starts = append(seg.starts, starts...)
	l.next = max(l.next, seg.next())
	return nil
}

// rotate creates the next segment after the active one. The caller writes
// its header.
func (l *Log) rotate() (*segment, error) {
	prev := l.active()
	seg := &segment{
		id:      l.nextID,
		name:    segName(l.prefix, l.nextID),
		baseSeq: prev.next(),
		basePos: prev.end(),
	}
	f, err := l.fs.Create(seg.name)
	if err != nil {
		return nil, l.fail(fmt.Errorf("create %s: %w", seg.name, err))
	}
	l.nextID++
	seg.f = f
	l.segs = append(l.segs, seg)
	l.nsDirty = true
	return seg, nil
}

// fail makes the log fail-stop with cause and returns the fail-stop error.
func (l *Log) fail(cause error) error {
	if l.err == nil {
		l.err = fmt.Errorf("%w: %w", ErrFailed, cause)
	}
	return l.err
}

// later runs fn in a later event on the owner's loop. The log has no clock,
// so it borrows a completion from the FS: a directory sync, which only ever
// makes more durable.
func (l *Log) later(fn func()) {
	l.fs.SyncDir(func(error) { fn() })
}

// Sync makes every record appended before the call durable, then calls done
// (always later, never inside the call). An error wraps ErrFailed (the log
// is now fail-stop) or is ErrClosed.
func (l *Log) Sync(done func(error)) {
	if done == nil {
		panic("reclog: Sync with nil callback")
	}
	if l.closed || l.err != nil {
		err := l.stopErr()
		l.later(func() { done(err) })
		return
	}
	if n := len(l.ops); n > 0 && l.ops[n-1].kind == opSync && !l.ops[n-1].started {
		// Not issued yet: it will cover this call's records too.
		l.ops[n-1].waiters = append(l.ops[n-1].waiters, done)
		return
	}
	o := &op{kind: opSync}
	o.waiters = append(o.first[:0], done)
	l.enqueue(o)
}

// AfterQueued calls done once every I/O operation queued before the call
// (syncs, truncations, recovery's first sync) has completed, without
// issuing any of its own: with nil, or the log's fail-stop error (wrapping
// ErrFailed) or ErrClosed if it stopped meanwhile. Right after Open it
// reports when what recovery read back is durable: the recovered bytes may
// have been only in a page cache (a process killed with its machine up).
// done is always called later, never inside the call; with nothing queued
// that costs a directory sync.
func (l *Log) AfterQueued(done func(error)) {
	if done == nil {
		panic("reclog: AfterQueued with nil callback")
	}
	if l.closed || l.err != nil || len(l.ops) == 0 {
		err := l.stopErr()
		l.later(func() { done(err) })
		return
	}
	o := l.ops[len(l.ops)-1]
	o.waiters = append(o.waiters, done)
}

func (l *Log) stopErr() error {
	if l.closed {
		return ErrClosed
	}
	return l.err
}

// Truncate drops every record with seq >= seq. Next() == seq at once; done
// is called once the truncation is durable, and records appended after the
// call are written only after that. seq must be in [First(), Next()].
func (l *Log) Truncate(seq uint64, done func(error)) {
	if done == nil {
		panic("reclog: Truncate with nil callback")
	}
	switch {
	case l.closed || l.err != nil:
		err := l.stopErr()
		l.later(func() { done(err) })
		return
	case seq < l.First() || seq > l.next:
		err := fmt.Errorf("%w: truncate at %d, log holds [%d, %d)", ErrOutOfRange, seq, l.First(), l.next)
		l.later(func() { done(err) })
		return
	}
	if w := l.written(); seq >= w {
		// Only records still held in memory go: nothing on disk changes.
		// done still waits for the I/O queued before it, so Truncate
		// completions keep their order.
		l.pending = l.pending[:seq-w]
		l.next = seq
		if n := len(l.ops); n > 0 {
			l.ops[n-1].waiters = append(l.ops[n-1].waiters, done)
		} else {
			l.later(func() { done(nil) })
		}
		return
	}
	// Find the last segment whose first record is at or before seq: it is
	// shrunk to the start of record seq, and every later one removed.
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].baseSeq > seq }) - 1
	if i < 0 {
		panic(fmt.Sprintf("reclog: truncate at %d: no segment holds it (first %d)", seq, l.First()))
	}
	seg := l.segs[i]
	size := int64(segHeaderSize)
	if k := seq - seg.baseSeq; k < uint64(len(seg.starts)) {
		size = int64(seg.starts[k])
	} else {
		size = seg.size // seq is the first record of the next segment
	}
	o := &op{kind: opCut, holds: true, waiters: []func(error){done}, target: seg, size: size, pos: seg.basePos + uint64(size)}
	o.remove = slices.Clone(l.segs[i+1:])
	l.segs = l.segs[:i+1]
	seg.starts = seg.starts[:seq-seg.baseSeq]
	seg.size = size
	l.pending = nil
	l.next = seq
	l.enqueue(o)
}

// enqueue adds o to the I/O queue and starts it if it is first.
func (l *Log) enqueue(o *op) {
	if o.holds {
		l.holds++
	}
	l.ops = append(l.ops, o)
	l.runNext()
}

func (l *Log) runNext() {
	if len(l.ops) == 0 || l.ops[0].started {
		return
	}
	o := l.ops[0]
	o.started = true
	switch o.kind {
	case opSync:
		o.syncTo = l.active().end()
		l.issueSyncs(o, nil)
	case opCut:
		l.startCut(o)
	}
}

// issueSyncs issues a file sync of every dirty segment and of also (if not
// nil; otherwise of the active segment, so there is always a completion to
// wait for), plus a directory sync if the namespace changed.
func (l *Log) issueSyncs(o *op, also *segment) {
	if also == nil {
		also = l.active()
	}
	// also comes first and is always synced, even when a later Truncate
	// has since dropped it from the logical log (its file then goes in a
	// later op).
	files := []*segment{also}
	also.dirty = false
	for _, s := range l.segs {
		if s.dirty && s != also {
			files = append(files, s)
			s.dirty = false
		}
	}
	dir := l.nsDirty
	l.nsDirty = false
	o.outstanding = len(files)
	if dir {
		o.outstanding++
	}
	o.err = nil
	// Count first: completions are never synchronous, but counting before
	// issuing keeps the op correct even if one were.
	for _, s := range files {
		name := s.name
		s.f.Sync(func(err error) { l.ioDone(o, name, err) })
	}
	if dir {
		l.fs.SyncDir(func(err error) { l.ioDone(o, "directory", err) })
	}
}

// startCut runs phase 1 of a truncation: remove the segments past the cut
// and make their removal durable. Phase 2 (shrink and sync) follows.
func (l *Log) startCut(o *op) {
	if len(o.remove) == 0 {
		l.shrink(o)
		return
	}
	o.phase = 1
	for _, s := range o.remove {
		s.f.Close()
		if err := l.fs.Remove(s.name); err != nil && !errors.Is(err, env.ErrNotExist) {
			l.fail(fmt.Errorf("remove %s: %w", s.name, err))
		}
	}
	l.nsDirty = false
	o.outstanding = 1
	l.fs.SyncDir(func(err error) { l.ioDone(o, "directory", err) })
}

// shrink runs phase 2 of a truncation: shrink the target segment and sync.
func (l *Log) shrink(o *op) {
	o.phase = 2
	t := o.target
	if t.f.Size() != o.size {
		if err := t.f.Truncate(o.size); err != nil {
			l.fail(fmt.Errorf("truncate %s to %d: %w", t.name, o.size, err))
		}
		t.dirty = true
	}
	l.issueSyncs(o, t)
}

// ioDone is the completion of one sync belonging to o.
func (l *Log) ioDone(o *op, what string, err error) {
	if err != nil && o.err == nil {
		o.err = fmt.Errorf("sync %s: %w", what, err)
	}
	o.outstanding--
	if o.outstanding > 0 {
		return
	}
	if o.err != nil && o.kind == opSync && l.bugs.RetryFailedSync && o.retries < maxSyncRetries && l.err == nil && !l.closed {
		// The planted bug: retry the fsync and assume success.
		o.retries++
		for _, s := range l.segs {
			s.dirty = true
		}
		l.issueSyncs(o, nil)
		return
	}
	if o.kind == opCut && o.phase == 1 && o.err == nil && l.err == nil && !l.closed {
		l.shrink(o)
		return
	}
	l.finish(o)
}

// finish ends the running op: it records what became durable, writes held
// appends once no truncation is pending, answers the op's waiters, and
// starts the next op (or fails them all if the log stopped).
func (l *Log) finish(o *op) {
	if len(l.ops) == 0 || l.ops[0] != o {
		panic("reclog: an op finished that is not at the head of the queue")
	}
	// Shift rather than reslice: the queue is short, and keeping its start
	// lets enqueue reuse the capacity instead of reallocating.
	copy(l.ops, l.ops[1:])
	l.ops[len(l.ops)-1] = nil
	l.ops = l.ops[:len(l.ops)-1]
	if o.holds {
		l.holds--
	}
	if o.err != nil {
		l.fail(o.err)
	}
	if l.err == nil && !l.closed {
		switch o.kind {
		case opSync:
			l.durable = o.syncTo
		case opCut:
			if l.bugs.CutKeepsDurableMark {
				l.durable = max(l.durable, o.pos)
			} else {
				l.durable = o.pos
			}
		}
		if l.holds == 0 && len(l.pending) > 0 {
			p, first := l.pending, l.written()
			l.pending = nil
			if err := l.write(p); err != nil {
				// Fail-stop (recorded in l.err); what did not reach a file
				// stays readable from memory.
				l.pending = p[l.written()-first:]
			}
		}
	}
	res := l.stopErr()
	for _, w := range o.waiters {
		w(res)
	}
	if l.closed || l.err != nil {
		res := l.stopErr()
		for len(l.ops) > 0 && !l.ops[0].started {
			q := l.ops[0]
			l.ops = l.ops[1:]
			if q.holds {
				l.holds--
			}
			for _, w := range q.waiters {
				w(res)
			}
		}
		return
	}
	l.runNext()
}

// Read returns the payload of record seq (from the volatile image). The
// returned slice is the caller's.
func (l *Log) Read(seq uint64) ([]byte, error) { return l.ReadIn(seq, nil) }

// Arena lets several reads share allocations: a caller that reads many
// records at once (a fetch) takes their bytes from a few chunks instead of
// one allocation per record. Each payload is still the caller's (no two
// overlap); a chunk lives as long as any payload in it. The zero value is
// ready to use.
type Arena struct {
	// Hint is how many more payload bytes the caller expects to read
	// through the arena (0: unknown); chunks are not cut much bigger, so
	// a read that stops early wastes little.
	Hint int
	buf  []byte
	next int // size of the next chunk
}

// Arena chunks grow from arenaFirst to arenaMax bytes.
const (
	arenaFirst = 4 << 10
	arenaMax   = 64 << 10
)

// alloc returns n bytes of the arena (of a nil arena: of their own).
func (a *Arena) alloc(n int) []byte {
	if a == nil || n > arenaMax {
		return make([]byte, n)
	}
	if cap(a.buf)-len(a.buf) < n {
		// The first read gets exactly its size (a read of one record costs
		// what it did without an arena); chunks follow, growing, no bigger
		// than the hint allows (with room for chunk headers).
		size := n
		if a.buf != nil {
			a.next = min(max(2*a.next, arenaFirst), arenaMax)
			size = a.next
			if a.Hint > 0 {
				size = min(size, a.Hint+a.Hint/8+chunkHeaderSize)
			}
			size = max(size, n)
		}
		a.buf = make([]byte, 0, size)
	}
	p := a.buf[len(a.buf) : len(a.buf)+n : len(a.buf)+n]
	a.buf = a.buf[:len(a.buf)+n]
	return p
}

// ReadIn is Read taking the payload's memory from a (nil: an allocation of
// its own). It reads the disk exactly as Read does.
func (l *Log) ReadIn(seq uint64, a *Arena) ([]byte, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if seq < l.First() || seq >= l.next {
		return nil, fmt.Errorf("%w: read %d, log holds [%d, %d)", ErrOutOfRange, seq, l.First(), l.next)
	}
	if w := l.written(); seq >= w {
		return slices.Clone(l.pending[seq-w]), nil
	}
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].baseSeq > seq }) - 1
	seg := l.segs[i]
	k := seq - seg.baseSeq
	start := int64(seg.starts[k])
	end := seg.size
	if k+1 < uint64(len(seg.starts)) {
		end = int64(seg.starts[k+1])
	}
	return readRecord(seg, seq, start, end, l.opts.MaxRecordBytes, a)
}

// readRecord reads and verifies the record seq whose chunks lie in
// [start, end) of seg, into memory from a.
func readRecord(seg *segment, seq uint64, start, end int64, limit int, a *Arena) ([]byte, error) {
	span := a.alloc(int(end - start))
	if n, err := seg.f.ReadAt(span, start); n != len(span) {
		return nil, fmt.Errorf("reclog: read record %d from %s at %d: %w", seq, seg.name, start, err)
	}
	var out []byte
	off := start
	for i := 0; ; i++ {
		if rem := blockRemaining(off); rem < chunkHeaderSize {
			off += rem
		}
		lim := min(end, off+blockRemaining(off))
		if off >= lim {
			return nil, fmt.Errorf("%w: %s byte %d: record %d ends early", ErrCorrupt, seg.name, off, seq)
		}
		h, data, n, why, _ := decodeChunk(span[off-start : lim-start])
		if why == "" {
			switch {
			case h.seq != seq:
				why = "chunk of record " + fmt.Sprint(h.seq)
			case (i == 0) != (h.typ == chunkFull || h.typ == chunkFirst):
				why = "chunk type out of sequence"
			case len(out)+len(data) > limit:
				why = "record exceeds MaxRecordBytes"
			}
		}
		if why != "" {
			return nil, fmt.Errorf("%w: %s byte %d: record %d: %s", ErrCorrupt, seg.name, off, seq, why)
		}
		if h.typ == chunkFull {
			// span is this call's own buffer: hand out the payload in
			// place (capacity cut so an append cannot reach past it).
			return data[:len(data):len(data)], nil
		}
		out = append(out, data...)
		off += int64(n)
		if h.typ == chunkLast {
			return out, nil
		}
	}
}

// Scan calls fn for every record from seq from up to Next(), in order. It
// stops at, and returns, the first error of fn or of reading.
func (l *Log) Scan(from uint64, fn func(seq uint64, payload []byte) error) error {
	if l.closed {
		return ErrClosed
	}
	if from < l.First() || from > l.next {
		return fmt.Errorf("%w: scan from %d, log holds [%d, %d)", ErrOutOfRange, from, l.First(), l.next)
	}
	for seq := from; seq < l.next; seq++ {
		p, err := l.Read(seq)
		if err != nil {
			return err
		}
		if err := fn(seq, p); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the files. Pending Sync and Truncate callbacks complete
// with ErrClosed. A second Close returns ErrClosed.
func (l *Log) Close() error {
	if l.closed {
		return ErrClosed
	}
	l.closed = true
	var first error
	for _, s := range l.segs {
		if err := s.f.Close(); err != nil && first == nil && !errors.Is(err, env.ErrClosed) {
			first = fmt.Errorf("reclog: close %s: %w", s.name, err)
		}
	}
	return first
}
