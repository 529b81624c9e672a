// Package wal is walraft's group-commit write-ahead log, one per partition.
//
// Producers Append records; the WAL assigns their offsets at once, queues
// them, and writes and fsyncs them in batches: at most one write+fsync is in
// flight, and everything that arrives meanwhile waits and goes into the
// next batch. When a batch's fsync completes, the WAL answers its appends
// (done(nil), in offset order: what acks=1 waits for), then emits one
// BatchNotice for the batch (what the Raft proposer turns into one
// proposal), then cuts the next batch.
//
// # Storage
//
// The WAL stores its records in a reclog record log (see core/reclog for the
// framing, checksums and crash recovery), one reclog record per Kafka
// record, so that Truncate can cut at any offset (the legacy path moves the
// HWM one record at a time, so a truncation may fall inside a batch). A
// reclog record is (format version 2)
//
//	[0]     format version (2)
//	[1:9)   the record's offset, int64 little-endian
//	[9:13)  rest: how many records of the same Append follow this one,
//	        uint32 little-endian (0: the Append's last record)
//	[13:)   the record's bytes
//
// Version 1 records ([0] = 1, no rest field, the bytes from [9:)) are still
// read, each as an Append of its own, so a log written before the change
// opens after it.
//
// # Atomic appends
//
// An Append is all or nothing across crashes: a produce request's records
// are one Kafka record batch. The reclog keeps a prefix of the records
// written (a torn crash keeps any prefix of the unsynced ones), so only the
// last recovered Append can be incomplete, and its last recovered record
// then has rest > 0. Open drops such an Append (trace wal.open.partial) by
// truncating the log at its first record. That never drops synced data: a
// batch holds whole Appends and is synced whole, and Truncate (below)
// rewrites the part of an Append it keeps as an Append of its own.
//
// Offsets are contiguous and the reclog numbers its records contiguously,
// so offset = seq + a constant fixed at Open (0 until retention exists): the
// reclog's index is the offset index, at 4 bytes per record. Open checks the
// first and last recovered records against that mapping and every Read
// checks the records it returns, so a record never surfaces at the wrong
// offset.
//
// # Failures
//
// A failed write or fsync is fail-stop: every append of the failed batch and
// every queued append completes with an error wrapping ErrFailed (the
// records may or may not be on disk: the outcome is unknown), Err returns
// it, and Append fails until the WAL is reopened, which recovers what is
// durable. The fsync is never retried.
//
// # Truncation
//
// Truncate(off) drops every record at or beyond off at once (End() == off).
// Appends not yet durable that hold such records fail with ErrTruncated; an
// append that straddles off fails too, but its records below off stay in
// the log (they are written like any other, with no one waiting for them,
// and noticed unless a notice covered them already: a straddling append
// that was durable is rewritten, not noticed twice). If the batch in flight
// is cut, its notice covers only what is left of it. The reclog makes the truncation durable before it writes any
// later record.
//
// # Deferred appends
//
// AppendDeferred is for records that need no fsync of their own because
// another durable log holds them: the records a node's state machine
// writes when it applies a committed Raft entry, which recovery rewrites
// from the Raft log (core/node/pipeline.go). A batch made only of deferred
// appends is answered (and noticed) once it is written, without an fsync; a batch holding any ordinary Append is fsynced as usual, and its
// fsync covers every deferred record written before it. Deferred records
// are synced in the background once Config.DeferredSyncBytes of them
// have accumulated, which bounds what recovery has to rewrite (etcd syncs
// its applied state the same way, in periodic backend commits, with its
// Raft log as the record of the rest), and at the latest
// Config.DeferredSyncInterval after the first of them was written, so a
// WAL left idle ends durable. A background fsync that fails is
// fail-stop like any other. DurableEnd counts deferred records only once a
// fsync covered them.
//
// # Notices
//
// A notice covers exactly the records written by its batch, whoever
// appended them: a batch may mix appends of several callers.
//
// # Trace events
//
// Events go to env.Tracer; A is always the partition and Text the topic.
//
//	wal.open       B=start C=end (recovered)
//	wal.open.partial B=offset C=recovered end   an incomplete Append dropped
//	wal.recovered  B=durable end                  recovery's first sync completed
//	wal.batch      B=base C=last D=records        a batch was cut and written
//	wal.sync.done  B=base C=last D=batch seq      its fsync completed
//	wal.deferred   B=base C=last D=batch seq      a batch of deferred appends was written: answered, no fsync
//	wal.mixed      B=base C=last D=deferred appends  the batch being fsynced also holds deferred appends (its fsync covers them)
//	wal.bgsync     B=durable end C=end to sync    a background fsync of deferred appends started
//	wal.bgsync.done B=durable end C=end synced    it completed
//	wal.fail       B=base C=last D=appends failed fail-stop (B=C=-1 if no batch)
//	wal.trunc      B=offset C=previous end D=appends failed
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"walraft/core/env"
	"walraft/core/reclog"
)

// Errors. Test with errors.Is; returned errors wrap them with context.
var (
	// ErrTooLarge: a record exceeds Config.MaxRecordBytes, or one append
	// exceeds Config.MaxPendingBytes (it could never be queued).
	ErrTooLarge = errors.New("wal: too large")
	// ErrBackpressure: accepting the append would queue more than
	// Config.MaxPendingBytes; retry later.
	ErrBackpressure = errors.New("wal: too many bytes queued")
	// ErrFailed: a write or fsync failed. The WAL is fail-stop until
	// reopened; the records of the failed appends may or may not be on
	// disk.
	ErrFailed = errors.New("wal: storage failed")
	// ErrTruncated: Truncate dropped the append's records before their
	// fsync completed.
	ErrTruncated = errors.New("wal: truncated before durable")
	// ErrClosed: the WAL was closed.
	ErrClosed = errors.New("wal: closed")
	// ErrCorrupt: the log holds damaged durable data or a record at the
	// wrong offset.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrOutOfRange: an offset outside [Start, End].
	ErrOutOfRange = errors.New("wal: offset out of range")
	// ErrInvalidConfig: a Config that cannot be used.
	ErrInvalidConfig = errors.New("wal: invalid config")
)

// Config defaults.
const (
	DefaultMaxBatchBytes   = 1 << 20
	DefaultMaxBatchRecords = 4096
	DefaultSegmentBytes    = 64 << 20
	DefaultMaxRecordBytes  = 1 << 20
	DefaultMaxPendingBytes = 64 << 20

	DefaultDeferredSyncInterval = 100 * time.Millisecond
)

// recHeader is the size of the WAL's header inside each reclog record
// (version 2); recHeaderV1 that of version 1.
const (
	recHeader   = 13
	recHeaderV1 = 9
)

// recVersion is the WAL record format version written; recVersionV1 is
// still read.
const (
	recVersion   = 2
	recVersionV1 = 1
)

// Bugs are deliberate mistakes the simulation harness must catch (its
// known-bad variants). They are reachable only through OpenWithBugs, which
// only node.NewWithBugs calls. The zero value is the correct WAL.
type Bugs struct {
	// NoCutAfterSync: when a batch's fsync completes, appends that queued
	// meanwhile are not cut into the next batch; they wait until another
	// Append arrives (a lost wakeup).
	NoCutAfterSync bool
	// KeepPartialAppend: Open keeps an Append whose last records a torn
	// crash lost (the format-1 behaviour: the first records of a request
	// survive without the rest).
	KeepPartialAppend bool
	// CutAtCorruption: recovery cuts the log at damaged synced data and
	// carries on (reclog.Bugs).
	CutAtCorruption bool
	// RetryFailedSync: a failed fsync is retried and, if the retry
	// succeeds, the batch is taken as durable (reclog.Bugs) instead of the
	// WAL failing: the fsyncgate mistake.
	RetryFailedSync bool
	// JoinInflightSync: while a batch's fsync is in flight the next batch
	// is cut and written, and the older fsync's completion answers both
	// (a sync that "completes" on an fsync issued before the write).
	JoinInflightSync bool
	// IgnoreSyncError: a failed fsync is treated as a successful one.
	IgnoreSyncError bool
	// BgSyncCoversQueued: a background fsync of deferred records is taken
	// to cover every record appended (End), the queued ones not yet
	// written included, instead of those written when it was issued.
	BgSyncCoversQueued bool
	// DurableAtOpen: Open reports every recovered record durable at once
	// (DurableEnd == End), before recovery's first sync.
	DurableAtOpen bool
	// NoRecoveryRewrite: the reclog's recovery syncs its unproven tail
	// without writing it again (reclog.Bugs).
	NoRecoveryRewrite bool
	// CutKeepsDurableMark: the reclog's truncation keeps its old durable
	// mark (reclog.Bugs).
	CutKeepsDurableMark bool
}

// Config configures a WAL. Zero values get the documented defaults.
type Config struct {
	// MaxBatchBytes cuts a batch at this many payload bytes (default
	// 1 MiB). An append larger than it forms a batch of its own.
	MaxBatchBytes int
	// MaxBatchRecords cuts a batch at this many records (default 4096).
	MaxBatchRecords int
	// Linger is how long (on the node's clock) an idle WAL waits for more
	// appends before cutting a batch (default 0: cut in the next event).
	// A batch that reaches MaxBatchBytes or MaxBatchRecords is cut at once.
	Linger time.Duration
	// SegmentBytes is the reclog segment size (default 64 MiB).
	SegmentBytes int64
	// MaxRecordBytes is the largest single record (default 1 MiB);
	// larger gets ErrTooLarge.
	MaxRecordBytes int
	// MaxPendingBytes bounds the bytes queued but not yet written (default
	// 64 MiB); beyond it Append returns ErrBackpressure.
	MaxPendingBytes int
	// DeferredSyncBytes is how many payload bytes of deferred appends
	// (AppendDeferred) may wait for a fsync before the WAL issues one in
	// the background (default SegmentBytes).
	DeferredSyncBytes int64
	// DeferredSyncInterval is how long (on the node's clock) a deferred
	// record may wait for a fsync before the WAL issues one in the
	// background (default 100 ms, etcd's backend commit interval).
	DeferredSyncInterval time.Duration
}

// Validate reports a Config that cannot be used (zero fields are fine: they
// get defaults).
func (c Config) Validate() error {
	switch {
	case c.MaxBatchBytes < 0:
		return fmt.Errorf("%w: MaxBatchBytes %d < 0", ErrInvalidConfig, c.MaxBatchBytes)
	case c.MaxBatchRecords < 0:
		return fmt.Errorf("%w: MaxBatchRecords %d < 0", ErrInvalidConfig, c.MaxBatchRecords)
	case c.Linger < 0:
		return fmt.Errorf("%w: Linger %v < 0", ErrInvalidConfig, c.Linger)
	case c.MaxRecordBytes < 0 || c.MaxRecordBytes > reclog.MaxMaxRecordBytes-recHeader:
		return fmt.Errorf("%w: MaxRecordBytes %d outside [0, %d]", ErrInvalidConfig, c.MaxRecordBytes, reclog.MaxMaxRecordBytes-recHeader)
	case c.MaxPendingBytes < 0:
		return fmt.Errorf("%w: MaxPendingBytes %d < 0", ErrInvalidConfig, c.MaxPendingBytes)
	case c.DeferredSyncBytes < 0:
		return fmt.Errorf("%w: DeferredSyncBytes %d < 0", ErrInvalidConfig, c.DeferredSyncBytes)
	case c.DeferredSyncInterval < 0:
		return fmt.Errorf("%w: DeferredSyncInterval %v < 0", ErrInvalidConfig, c.DeferredSyncInterval)
	}
	if err := (reclog.Options{SegmentBytes: c.SegmentBytes}).Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.MaxBatchRecords == 0 {
		c.MaxBatchRecords = DefaultMaxBatchRecords
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if c.DeferredSyncBytes == 0 {
		c.DeferredSyncBytes = c.SegmentBytes
	}
	if c.DeferredSyncInterval == 0 {
		c.DeferredSyncInterval = DefaultDeferredSyncInterval
	}
	return c
}

// BatchNotice is emitted once per batch, after its appends were answered,
// in offset order: after the batch's fsync completed or, for a batch made
// only of deferred appends (AppendDeferred), after its write.
type BatchNotice struct {
	Topic      string
	Partition  int32
	Base, Last int64    // offsets of the first and last record of the batch
	Records    [][]byte // the batch's record payloads, in offset order (len == Last-Base+1)
	Seq        uint64   // batch sequence number within this WAL instance (for traces)
}

// unit is one Append: its records go into one batch together.
type unit struct {
	base  int64
	recs  [][]byte
	bytes int
	done  func(error) // nil for the surviving prefix of a truncated append
	// deferred: appended with AppendDeferred (answered without a fsync
	// when its whole batch is deferred).
	deferred bool
}

func (u *unit) end() int64 { return u.base + int64(len(u.recs)) }

// batch is the batch in flight: written, fsync pending.
type batch struct {
	seq       uint64
	base, end int64 // records [base, end); end shrinks if Truncate cuts into it
	units     []*unit
	recs      [][]byte
}

// WAL is one partition's group-commit write-ahead log. It is not safe for
// concurrent use: call it from the node's event loop only.
type WAL struct {
	env       env.Env
	tracer    env.Tracer
	cfg       Config
	topic     string
	partition int32
	onNotice  func(BatchNotice)
	onWrite   func(BatchNotice) // see OnWrite; nil unless set
	log       *reclog.Log
	delta     int64 // offset of reclog seq s is s + delta

	end        int64 // next offset to assign
	durableEnd int64 // end of the fsynced prefix
	// recoveredEnd is the end of the records Open recovered (lowered by
	// Truncate), durable once recovery's first sync completes; recovering
	// until then, and onRecovered is told when it ends.
	recoveredEnd int64
	recovering   bool
	onRecovered  func(error)
	// noticedEnd is the end of the records notices have covered: a
	// truncation inside an append rewrites the part it keeps, and those
	// records, noticed once already, must not be noticed again (the node
	// would propose them twice).
	noticedEnd int64
	written    int64 // offsets below it were handed to the reclog

	queue      []*unit // appends not yet written, in offset order
	queueBytes int
	queueRecs  int

	inflight   *batch
	held       bool      // HoldCuts: no batch is cut while set
	cutQueued  bool      // a cut event is scheduled
	linger     env.Timer // the pending linger timer
	completing bool      // answering a completed batch's appends
	clip       int64     // while completing: lowest offset truncated since
	batchSeq   uint64

	// unsynced counts payload bytes of deferred batches written since the
	// last fsync was issued; bg is the background fsync in flight, if any.
	unsynced   int64
	bg         *bgSync
	syncWanted int64     // SyncDeferred: records below it should become durable
	bgTimer    env.Timer // DeferredSyncInterval, armed while deferred records wait

	// scratch and scratchPayloads are cut's buffers for the framed
	// records of a batch, reused from one batch to the next: the reclog
	// copies what it is handed (package reclog, AppendBatch).
	scratch         []byte
	scratchPayloads [][]byte

	failed error
	closed bool
	bugs   Bugs
}

// maxScratch bounds the batch buffer cut keeps for the next batch, so that
// one huge batch does not pin its buffer for the WAL's lifetime.
const maxScratch = 4 << 20

// bgSync is a background fsync of deferred records: when it completes,
// the records below end are durable (Truncate lowers end).
type bgSync struct{ end int64 }

// Open recovers the partition log in files under dir (via reclog) and
// returns it ready to append at the recovered end. onNotice may be nil.
//
// Records recovered are not reported durable at once: after a process
// killed with its machine up they may sit only in the page cache (or in
// pages a failed fsync left clean, which the reclog writes again). The
// WAL is recovering (Recovering) until the reclog's first sync, queued
// before any later batch's, completes; DurableEnd then moves from Start to
// the recovered end and OnRecovered's callback runs. Open fails with
// ErrCorrupt if data that had been synced is damaged, and with ErrTooLarge
// if a record exceeds cfg.MaxRecordBytes.
func Open(e env.Env, dir, topic string, partition int32, cfg Config, onNotice func(BatchNotice)) (*WAL, error) {
	return OpenWithBugs(e, dir, topic, partition, cfg, onNotice, Bugs{})
}

// OpenWithBugs is Open with known-bad behaviour switched on. It exists for
// the harness's variants only.
func OpenWithBugs(e env.Env, dir, topic string, partition int32, cfg Config, onNotice func(BatchNotice), bugs Bugs) (*WAL, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if e.FS == nil || e.Clock == nil {
		return nil, fmt.Errorf("%w: env needs FS and Clock", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	tracer := e.Tracer
	if tracer == nil {
		tracer = env.NopTracer{}
	}
	log, err := reclog.OpenWithBugs(e.FS, dir, reclog.Options{SegmentBytes: cfg.SegmentBytes, MaxRecordBytes: cfg.MaxRecordBytes + recHeader},
		reclog.Bugs{RetryFailedSync: bugs.RetryFailedSync, CutAtCorruption: bugs.CutAtCorruption, NoRecoveryRewrite: bugs.NoRecoveryRewrite, CutKeepsDurableMark: bugs.CutKeepsDurableMark})
	if err != nil {
		switch {
		case errors.Is(err, reclog.ErrCorrupt):
			return nil, fmt.Errorf("%w: %s/%d: %w", ErrCorrupt, topic, partition, err)
		case errors.Is(err, reclog.ErrTooLarge):
			return nil, fmt.Errorf("%w: %s/%d: a recovered record exceeds MaxRecordBytes: %w", ErrTooLarge, topic, partition, err)
		}
		return nil, fmt.Errorf("wal %s/%d: %w", topic, partition, err)
	}
	w := &WAL{env: e, tracer: tracer, cfg: cfg, topic: topic, partition: partition, onNotice: onNotice, log: log, bugs: bugs}
	w.delta = int64(log.First())
	if log.Next() > log.First() {
		// The first record fixes the offset mapping; the last confirms it.
		for _, seq := range []uint64{log.First(), log.Next() - 1} {
			p, err := log.Read(seq)
			if err == nil {
				var off int64
				if off, _, _, err = decodeRecord(p); err == nil && seq == log.First() {
					w.delta = off - int64(seq)
				} else if err == nil && off != int64(seq)+w.delta {
					err = fmt.Errorf("%w: record %d holds offset %d, want %d", ErrCorrupt, seq, off, int64(seq)+w.delta)
				}
			}
			if err != nil {
				log.Close()
				if errors.Is(err, reclog.ErrCorrupt) {
					err = fmt.Errorf("%w: %w", ErrCorrupt, err)
				}
				return nil, fmt.Errorf("wal %s/%d: %w", topic, partition, err)
			}
		}
	}
	next := log.Next()
	if !bugs.KeepPartialAppend {
		start, err := appendStart(log, next)
		if err != nil {
			log.Close()
			return nil, fmt.Errorf("wal %s/%d: %w", topic, partition, err)
		}
		if start < next {
			// A torn crash kept the first records of an Append and lost
			// the rest: drop them (durably, before any later write).
			w.trace("wal.open.partial", int64(start)+w.delta, int64(next)+w.delta, 0)
			log.Truncate(start, func(err error) {
				if err != nil && !errors.Is(err, reclog.ErrClosed) {
					w.fail(err)
				}
			})
			next = start
		}
	}
	w.end = int64(next) + w.delta
	w.written, w.noticedEnd = w.end, w.end
	w.durableEnd, w.recoveredEnd, w.recovering = w.Start(), w.end, true
	if bugs.DurableAtOpen {
		w.durableEnd = w.end
	}
	log.AfterQueued(w.recovered)
	w.trace("wal.open", w.Start(), w.end, 0)
	return w, nil
}

// recovered ends recovery: the reclog's first sync (and a cut of a torn
// Append queued with it) completed, so the records Open recovered are
// durable, or the log failed.
func (w *WAL) recovered(err error) {
	w.recovering = false
	if err == nil && !w.closed {
		w.durableEnd = max(w.durableEnd, w.recoveredEnd)
		w.trace("wal.recovered", w.durableEnd, 0, 0)
	}
	if w.onRecovered != nil {
		w.onRecovered(err)
	}
}

// Recovering reports whether the records Open recovered are still waiting
// for their first sync (see Open).
func (w *WAL) Recovering() bool { return w.recovering }

// OnRecovered registers f to be called once, from the WAL's own event,
// when recovery's first sync completes: with nil (DurableEnd now covers
// the recovered records) or the error that failed the log (wrapping
// reclog.ErrFailed, or reclog.ErrClosed after Close). If recovery has
// ended already, f is not called; check Recovering first. Call it right
// after Open.
func (w *WAL) OnRecovered(f func(error)) { w.onRecovered = f }

// appendStart returns where the Append holding record end-1 starts when
// that Append is incomplete (record end-1 has rest > 0), and end when it
// is complete: the records from the returned seq to end are what a torn
// crash left of one Append.
func appendStart(log *reclog.Log, end uint64) (uint64, error) {
	seq := end
	for seq > log.First() {
		p, err := log.Read(seq - 1)
		var rest uint32
		if err == nil {
			_, rest, _, err = decodeRecord(p)
		}
		if err != nil {
			if errors.Is(err, reclog.ErrCorrupt) && !errors.Is(err, ErrCorrupt) {
				err = fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
			return 0, err
		}
		if rest == 0 {
			return seq, nil // record seq-1 closes its Append
		}
		seq--
	}
	return seq, nil
}

// decodeRecord splits a reclog record into its offset, the number of
// records of its Append that follow it, and the Kafka record.
func decodeRecord(p []byte) (int64, uint32, []byte, error) {
	if len(p) < 1 {
		return 0, 0, nil, fmt.Errorf("%w: empty record", ErrCorrupt)
	}
	switch p[0] {
	case recVersion:
		if len(p) >= recHeader {
			return int64(binary.LittleEndian.Uint64(p[1:9])), binary.LittleEndian.Uint32(p[9:13]), p[recHeader:], nil
		}
	case recVersionV1:
		if len(p) >= recHeaderV1 {
			return int64(binary.LittleEndian.Uint64(p[1:9])), 0, p[recHeaderV1:], nil
		}
	default:
		return 0, 0, nil, fmt.Errorf("%w: unknown record format version %d", ErrCorrupt, p[0])
	}
	return 0, 0, nil, fmt.Errorf("%w: record of %d bytes is shorter than its header", ErrCorrupt, len(p))
}

func (w *WAL) trace(kind string, b, c, d int64) {
	w.tracer.Trace(env.Event{Kind: kind, A: int64(w.partition), B: b, C: c, D: d, Text: w.topic})
}

// Start returns the first offset held.
func (w *WAL) Start() int64 { return int64(w.log.First()) + w.delta }

// End returns the next offset to assign (queued, unsynced records
// included).
func (w *WAL) End() int64 { return w.end }

// DurableEnd returns the end of the fsynced prefix (what a standalone HWM
// follows). It never exceeds End.
func (w *WAL) DurableEnd() int64 { return w.durableEnd }

// Err returns the fail-stop error (wrapping ErrFailed), if any, including
// a failure of the reclog's own I/O (a recovery sync or a truncation) that
// no append has run into yet.
func (w *WAL) Err() error {
	if w.failed == nil && !w.closed {
		if err := w.log.Err(); err != nil {
			return fmt.Errorf("%w: %s/%d: %w", ErrFailed, w.topic, w.partition, err)
		}
	}
	return w.failed
}

// Append enqueues records as one unit (never split across batches).
// Offsets [base, base+len(records)) are assigned now, contiguous and
// unique. done (which may be nil) is called exactly once, later: with nil
// after the fsync of the batch holding these records completed, or with an
// error wrapping ErrFailed (write or fsync failed), ErrTruncated (Truncate
// dropped some of them first) or ErrClosed. An append of zero records
// completes after the next batch's fsync. Append itself returns an error,
// and never calls done, for ErrTooLarge, ErrBackpressure, a fail-stopped
// WAL and ErrClosed. The WAL keeps the record slices (it does not copy
// them); callers must not modify them.
func (w *WAL) Append(records [][]byte, done func(err error)) (int64, error) {
	return w.append(records, done, false)
}

// AppendDeferred is Append for records another durable log already holds
// (see Deferred appends): done(nil) comes once they are written, without
// waiting for an fsync, unless they share a batch with an ordinary Append.
// Errors and the other rules are Append's.
func (w *WAL) AppendDeferred(records [][]byte, done func(err error)) (int64, error) {
	return w.append(records, done, true)
}

func (w *WAL) append(records [][]byte, done func(err error), deferred bool) (int64, error) {
	w.checkLog()
	switch {
	case w.closed:
		return 0, ErrClosed
	case w.failed != nil:
		return 0, w.failed
	}
	n := 0
	for _, r := range records {
		if len(r) > w.cfg.MaxRecordBytes {
			return 0, fmt.Errorf("%w: record of %d bytes, limit %d", ErrTooLarge, len(r), w.cfg.MaxRecordBytes)
		}
		n += len(r)
	}
	switch {
	case n > w.cfg.MaxPendingBytes:
		return 0, fmt.Errorf("%w: append of %d bytes exceeds MaxPendingBytes %d", ErrTooLarge, n, w.cfg.MaxPendingBytes)
	case w.queueBytes+n > w.cfg.MaxPendingBytes:
		return 0, fmt.Errorf("%w: %d bytes queued, limit %d", ErrBackpressure, w.queueBytes, w.cfg.MaxPendingBytes)
	}
	u := &unit{base: w.end, recs: records, bytes: n, done: done, deferred: deferred}
	w.end += int64(len(records))
	w.queue = append(w.queue, u)
	w.queueBytes += n
	w.queueRecs += len(records)
	w.kick()
	return u.base, nil
}

// HoldCuts, while on, keeps the WAL from cutting a batch: appends queue
// and are cut into one batch once it is turned off. The owner must turn it
// off again. The pipelined leader holds its WALs while its Raft-log sync
// runs: its acks=-1 appends need no WAL fsync (core/node/pipeline.go), and
// that sync, not a WAL fsync, then gathers them into batches.
func (w *WAL) HoldCuts(on bool) {
	if w.held == on {
		return
	}
	w.held = on
	if !on {
		w.kick()
	}
}

// kick arranges for a batch to be cut if the WAL is idle.
func (w *WAL) kick() {
	if (w.inflight != nil && !w.bugs.JoinInflightSync) || w.held || w.completing || w.cutQueued || w.failed != nil || w.closed || len(w.queue) == 0 {
		return
	}
	full := w.queueBytes >= w.cfg.MaxBatchBytes || w.queueRecs >= w.cfg.MaxBatchRecords
	if w.cfg.Linger > 0 && !full {
		if w.linger == nil {
			w.linger = w.env.Clock.AfterFunc(w.cfg.Linger, w.cutEvent)
		}
		return
	}
	if w.linger != nil {
		w.linger.Stop()
		w.linger = nil
	}
	// Cut in an event of its own: appends issued in this event join the
	// batch, and done is never called inside Append.
	w.cutQueued = true
	w.env.Clock.AfterFunc(0, w.cutEvent)
}

func (w *WAL) cutEvent() {
	w.cutQueued = false
	if w.linger != nil {
		w.linger.Stop()
		w.linger = nil
	}
	if (w.inflight == nil || w.bugs.JoinInflightSync) && !w.held && !w.completing && w.failed == nil && !w.closed && len(w.queue) > 0 {
		w.cut()
	}
}

// cut takes whole appends from the queue into a batch, writes it and
// starts its fsync.
func (w *WAL) cut() {
	var bytes, recs, k int
	for k < len(w.queue) {
		u := w.queue[k]
		if k > 0 && (bytes+u.bytes > w.cfg.MaxBatchBytes || recs+len(u.recs) > w.cfg.MaxBatchRecords) {
			break
		}
		bytes += u.bytes
		recs += len(u.recs)
		k++
	}
	units := w.queue[:k:k]
	w.queue = w.queue[k:]
	w.queueBytes -= bytes
	w.queueRecs -= recs
	w.batchSeq++
	b := &batch{seq: w.batchSeq, base: units[0].base, end: units[len(units)-1].end(), units: units}
	b.recs = make([][]byte, 0, recs)
	payloads := w.scratchPayloads[:0]
	buf := w.scratch[:0]
	if need := recs*recHeader + bytes; cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	off := b.base
	for _, u := range units {
		for i, r := range u.recs {
			start := len(buf)
			buf = append(buf, recVersion)
			buf = binary.LittleEndian.AppendUint64(buf, uint64(off))
			buf = binary.LittleEndian.AppendUint32(buf, uint32(len(u.recs)-1-i))
			buf = append(buf, r...)
			payloads = append(payloads, buf[start:len(buf):len(buf)])
			b.recs = append(b.recs, r)
			off++
		}
	}
	prev := w.inflight
	w.inflight = b
	w.written = b.end
	w.trace("wal.batch", b.base, b.end-1, int64(recs))
	seq, err := w.log.AppendBatch(payloads)
	if cap(buf) <= maxScratch {
		w.scratch, w.scratchPayloads = buf[:0], payloads[:0]
	}
	if err != nil {
		w.fail(err)
		return
	}
	if int64(seq)+w.delta != b.base && len(payloads) > 0 {
		panic(fmt.Sprintf("wal %s/%d: batch at offset %d got reclog seq %d (delta %d)", w.topic, w.partition, b.base, seq, w.delta))
	}
	if prev != nil && w.bugs.JoinInflightSync {
		// The known-bad variant: the batch rides on the fsync in flight,
		// which was issued before it was written.
		prev.end, prev.units, prev.recs = b.end, append(prev.units, b.units...), append(prev.recs, b.recs...)
		w.inflight = prev
		return
	}
	deferred := countDeferred(units)
	if deferred == len(units) {
		w.unsynced += int64(bytes)
		w.env.Clock.AfterFunc(0, func() { w.deferredWritten(b) })
	} else {
		if deferred > 0 {
			w.trace("wal.mixed", b.base, b.end-1, int64(deferred))
		}
		w.unsynced = 0 // this fsync covers every deferred record written
		w.log.Sync(func(err error) { w.synced(b, err) })
	}
	if w.onWrite != nil && b.end > b.base && w.failed == nil && !w.closed {
		w.onWrite(BatchNotice{Topic: w.topic, Partition: w.partition, Base: b.base, Last: b.end - 1, Records: b.recs, Seq: b.seq})
	}
}

// OnWrite registers f to be called once per batch, when the batch has been
// handed to the record log and its fsync has started, before the fsync
// completes: the pipelined produce path proposes the batch to Raft here, so
// the fsync and the replication overlap. The notice covers the whole batch
// as written (Truncate may cut it later; the post-fsync notice then covers
// what is left). f runs inside the WAL's own event and may call Truncate,
// but not Append. A batch whose write failed gets no call (its appends fail
// with ErrFailed). Call OnWrite before the first Append.
func (w *WAL) OnWrite(f func(BatchNotice)) { w.onWrite = f }

// synced is the completion of b's fsync.
func (w *WAL) synced(b *batch, err error) {
	if w.inflight != b || w.closed {
		return // closed (or failed) meanwhile: its appends were answered
	}
	if err != nil && !w.bugs.IgnoreSyncError {
		w.fail(err)
		return
	}
	w.inflight = nil
	// Every record below b.base belongs to an earlier batch, complete
	// before b was cut, so [.., b.end) is durable now; b.end was lowered by
	// any truncation since.
	w.durableEnd = max(w.durableEnd, b.end)
	w.trace("wal.sync.done", b.base, b.end-1, int64(b.seq))
	w.complete(b)
}

// countDeferred counts the units appended with AppendDeferred (all of
// them: a batch answered without an fsync).
func countDeferred(units []*unit) int {
	n := 0
	for _, u := range units {
		if u.deferred {
			n++
		}
	}
	return n
}

// deferredWritten completes a batch of deferred appends once written, with
// no fsync; a background fsync starts when enough have gathered.
func (w *WAL) deferredWritten(b *batch) {
	if w.inflight != b || w.closed || w.failed != nil {
		return // closed or failed meanwhile: its appends were answered
	}
	w.inflight = nil
	w.trace("wal.deferred", b.base, b.end-1, int64(b.seq))
	w.maybeSyncDeferred()
	if w.bgTimer == nil && w.durableEnd < w.written {
		w.bgTimer = w.env.Clock.AfterFunc(w.cfg.DeferredSyncInterval, func() {
			w.bgTimer = nil
			w.SyncDeferred()
		})
	}
	w.complete(b)
}

// SyncDeferred asks for every record appended so far to become durable
// soon, deferred ones included: a background fsync is issued once they are
// written, unless an ordinary batch's fsync covers them first. A node calls
// it when it starts to lead, so that its WAL's durable end reaches its
// log end without waiting for Config.DeferredSyncBytes.
func (w *WAL) SyncDeferred() {
	w.syncWanted = max(w.syncWanted, w.end)
	w.maybeSyncDeferred()
}

// maybeSyncDeferred issues a background fsync of the records written so
// far when deferred ones have gathered past Config.DeferredSyncBytes or
// SyncDeferred asked for records now written. One runs at a time. Its
// failure is fail-stop (DESIGN.md 3.5).
func (w *WAL) maybeSyncDeferred() {
	if w.bg != nil || w.failed != nil || w.closed || w.durableEnd >= w.written {
		return
	}
	wanted := w.syncWanted > w.durableEnd && w.written >= w.syncWanted
	if w.unsynced < w.cfg.DeferredSyncBytes && !wanted {
		return
	}
	bg := &bgSync{end: w.written}
	if w.bugs.BgSyncCoversQueued {
		bg.end = w.end
	}
	w.bg, w.unsynced = bg, 0
	w.trace("wal.bgsync", w.durableEnd, bg.end, 0)
	w.log.Sync(func(err error) {
		if w.bg == bg {
			w.bg = nil
		}
		if w.closed || w.failed != nil {
			return
		}
		if err != nil && !w.bugs.IgnoreSyncError {
			w.fail(err)
			return
		}
		w.durableEnd = max(w.durableEnd, bg.end)
		w.trace("wal.bgsync.done", w.durableEnd, bg.end, 0)
		w.maybeSyncDeferred()
	})
}

func (w *WAL) stopBgTimer() {
	if w.bgTimer != nil {
		w.bgTimer.Stop()
		w.bgTimer = nil
	}
}

// complete answers b's appends in offset order, emits b's notice, then
// cuts the next batch.
func (w *WAL) complete(b *batch) {
	w.completing, w.clip = true, b.end
	for _, u := range b.units {
		if u.done != nil {
			u.done(nil)
		}
	}
	w.completing = false
	if end, base := min(b.end, w.clip), max(b.base, w.noticedEnd); end > base && w.onNotice != nil && !w.closed {
		w.noticedEnd = end
		w.onNotice(BatchNotice{Topic: w.topic, Partition: w.partition, Base: base, Last: end - 1, Records: b.recs[base-b.base : end-b.base], Seq: b.seq})
	}
	if w.bugs.NoCutAfterSync {
		return
	}
	if w.inflight == nil && !w.held && w.failed == nil && !w.closed && len(w.queue) > 0 {
		w.cut()
	}
}

// checkLog makes the WAL fail-stop if its reclog failed on its own (a sync
// it issued for recovery or a truncation failed), before the WAL acts on a
// log that no longer takes writes.
func (w *WAL) checkLog() {
	if err := w.log.Err(); err != nil && w.failed == nil && !w.closed {
		w.fail(err)
	}
}

// fail makes the WAL fail-stop: the batch in flight and every queued append
// complete with an error wrapping ErrFailed, in offset order, in an event of
// their own (fail may run inside Append or Truncate).
func (w *WAL) fail(cause error) {
	if w.failed != nil {
		return
	}
	w.failed = fmt.Errorf("%w: %s/%d: %w", ErrFailed, w.topic, w.partition, cause)
	var units []*unit
	base, last := int64(-1), int64(-1)
	if b := w.inflight; b != nil {
		units = append(units, b.units...)
		base, last = b.base, b.end-1
	}
	units = append(units, w.queue...)
	// Offsets stay assigned (End does not move back) and readable: records
	// the reclog never took (a failed write) stay in memory, read-only.
	w.written = min(w.written, int64(w.log.Next())+w.delta)
	var keep []*unit
	for _, u := range units {
		if u.end() > w.written {
			keep = append(keep, &unit{base: u.base, recs: u.recs})
		}
	}
	w.inflight, w.queue, w.queueBytes, w.queueRecs = nil, keep, 0, 0
	if w.linger != nil {
		w.linger.Stop()
		w.linger = nil
	}
	w.stopBgTimer()
	w.trace("wal.fail", base, last, int64(len(units)))
	if len(units) > 0 {
		err := w.failed
		w.env.Clock.AfterFunc(0, func() {
			for _, u := range units {
				if u.done != nil {
					u.done(err)
				}
			}
		})
	}
}

// Truncate drops every record with offset >= off, off in [Start, End].
// End() == off immediately; appends queued or in flight with records at or
// beyond off complete with ErrTruncated (an append that straddles off
// fails, while its records below off stay in the log); the truncation is
// durable before any later append is written; done (which may be nil)
// reports its result later: nil, or an error wrapping ErrFailed,
// ErrOutOfRange or ErrClosed.
func (w *WAL) Truncate(off int64, done func(error)) {
	if done == nil {
		done = func(error) {}
	}
	w.checkLog()
	var err error
	switch {
	case w.closed:
		err = ErrClosed
	case w.failed != nil:
		err = w.failed
	case off < w.Start() || off > w.end:
		err = fmt.Errorf("%w: truncate at %d, log holds [%d, %d]", ErrOutOfRange, off, w.Start(), w.end)
	}
	if err != nil {
		w.env.Clock.AfterFunc(0, func() { done(err) })
		return
	}
	oldEnd := w.end
	// An Append already handed to the reclog that straddles off keeps its
	// records below off, rewritten as an Append of their own: the reclog is
	// cut at the Append's start (cut), so it never holds an incomplete
	// Append that recovery would drop (see Atomic appends).
	cut, kept := w.straddler(off)
	var dropped []*unit
	// Queued appends: drop those at or beyond off; a straddling one fails
	// but its records below off remain, as an append nobody waits for.
	keep := sort.Search(len(w.queue), func(i int) bool { return w.queue[i].end() > off })
	if keep < len(w.queue) {
		dropped = append(dropped, w.queue[keep:]...)
		w.queue = w.queue[:keep]
		if u := dropped[0]; u.base < off {
			w.queue = append(w.queue, &unit{base: u.base, recs: u.recs[:off-u.base]})
		}
		w.queueBytes, w.queueRecs = 0, 0
		for _, u := range w.queue {
			u.bytes = 0
			for _, r := range u.recs {
				u.bytes += len(r)
			}
			w.queueBytes += u.bytes
			w.queueRecs += len(u.recs)
		}
	}
	// The batch in flight: the same, its notice shrinks to what is left.
	if b := w.inflight; b != nil && b.end > off {
		k := sort.Search(len(b.units), func(i int) bool { return b.units[i].end() > off })
		dropped = append(b.units[k:len(b.units):len(b.units)], dropped...)
		b.units = b.units[:k]
		b.end = max(min(b.end, cut), 0)
		b.base = min(b.base, b.end)
		b.recs = b.recs[:b.end-b.base]
	}
	if w.completing {
		w.clip = min(w.clip, cut)
	}
	if kept != nil {
		// Every queued Append lies at or beyond written >= off: dropped.
		w.queue = append([]*unit{kept}, w.queue...)
		w.queueBytes += kept.bytes
		w.queueRecs += len(kept.recs)
	}
	w.end = off
	w.durableEnd = min(w.durableEnd, cut)
	w.recoveredEnd = min(w.recoveredEnd, cut)
	if w.bg != nil {
		w.bg.end = min(w.bg.end, cut)
	}
	w.syncWanted = min(w.syncWanted, off)
	w.noticedEnd = min(w.noticedEnd, off)
	w.written = min(w.written, cut)
	w.trace("wal.trunc", off, oldEnd, int64(len(dropped)))
	// Records still in memory only need no disk change, but reclog orders
	// the completion after its earlier I/O either way.
	seq := min(uint64(cut-w.delta), w.log.Next())
	w.log.Truncate(seq, func(err error) {
		if err != nil && !errors.Is(err, reclog.ErrClosed) {
			w.fail(err)
			err = w.failed
		} else if err != nil {
			err = ErrClosed
		}
		done(err)
	})
	if len(dropped) > 0 {
		w.env.Clock.AfterFunc(0, func() {
			for _, u := range dropped {
				if u.done != nil {
					u.done(fmt.Errorf("%w: offsets [%d, %d) cut at %d", ErrTruncated, u.base, u.end(), off))
				}
			}
		})
	}
	if kept != nil {
		w.kick()
	}
}

// straddler finds an Append already handed to the reclog that holds
// record off-1 and continues at off. It returns where the reclog must be
// cut (that Append's first offset, or off when there is none) and the
// Append's records below off as an unwritten unit nobody waits for (nil
// when there is none). If the records cannot be read back, the cut stays at
// off: the WAL then keeps them as they are (recovery may drop them after a
// crash, as it would a torn Append).
func (w *WAL) straddler(off int64) (int64, *unit) {
	if off <= w.Start() || off > w.written {
		return off, nil
	}
	start, err := appendStart(w.log, uint64(off-w.delta))
	if err != nil || int64(start)+w.delta >= off {
		return off, nil
	}
	u := &unit{base: int64(start) + w.delta}
	for seq := start; int64(seq)+w.delta < off; seq++ {
		p, err := w.log.Read(seq)
		var r []byte
		if err == nil {
			_, _, r, err = decodeRecord(p)
		}
		if err != nil {
			return off, nil
		}
		u.recs = append(u.recs, r)
		u.bytes += len(r)
	}
	return u.base, u
}

// Read returns consecutive records starting at offset: at least one if
// offset < End() (even if it exceeds maxBytes), stopping before maxBytes
// would be exceeded. It reads the volatile image (callers bound it by the
// HWM themselves). An offset outside [Start, End] is ErrOutOfRange; End
// gives no records.
func (w *WAL) Read(offset int64, maxBytes int) ([][]byte, error) {
	if w.closed {
		return nil, ErrClosed
	}
	if offset < w.Start() || offset > w.end {
		return nil, fmt.Errorf("%w: read at %d, log holds [%d, %d]", ErrOutOfRange, offset, w.Start(), w.end)
	}
	var out [][]byte
	var arena reclog.Arena // the records share a few allocations
	size := 0
	add := func(r []byte) bool {
		if len(out) > 0 && size+len(r) > maxBytes {
			return false
		}
		out = append(out, r)
		size += len(r)
		return true
	}
	for ; offset < w.written; offset++ {
		arena.Hint = maxBytes - size
		p, err := w.log.ReadIn(uint64(offset-w.delta), &arena)
		if err != nil {
			if errors.Is(err, reclog.ErrCorrupt) {
				err = fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
			return out, fmt.Errorf("wal %s/%d: read %d: %w", w.topic, w.partition, offset, err)
		}
		at, _, r, err := decodeRecord(p)
		if err == nil && at != offset {
			err = fmt.Errorf("%w: record at offset %d claims offset %d", ErrCorrupt, offset, at)
		}
		if err != nil {
			return out, fmt.Errorf("wal %s/%d: %w", w.topic, w.partition, err)
		}
		if !add(r) {
			return out, nil
		}
	}
	i := sort.Search(len(w.queue), func(i int) bool { return w.queue[i].end() > offset })
	for ; i < len(w.queue); i++ {
		u := w.queue[i]
		for _, r := range u.recs[offset-u.base:] {
			if !add(r) {
				return out, nil
			}
			offset++
		}
	}
	return out, nil
}

// Close stops the WAL: appends queued or in flight complete with ErrClosed
// (their records may or may not become durable), and the files are
// released. A second Close returns ErrClosed.
func (w *WAL) Close() error {
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	if w.linger != nil {
		w.linger.Stop()
		w.linger = nil
	}
	w.stopBgTimer()
	var units []*unit
	if w.inflight != nil {
		units = append(units, w.inflight.units...)
	}
	units = append(units, w.queue...)
	w.inflight, w.queue = nil, nil
	if len(units) > 0 {
		w.env.Clock.AfterFunc(0, func() {
			for _, u := range units {
				if u.done != nil {
					u.done(ErrClosed)
				}
			}
		})
	}
	return w.log.Close()
}
