package sim

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"walraft/core/env"
)

// The simulated disk.
//
// Model. A Disk holds inodes. Each inode has a volatile image (what reads
// see) and a durable image (what survives a crash). The disk has two
// namespaces mapping names to inodes: the volatile one (what Create, Open,
// List and Remove see) and the durable one (the last namespace a successful
// SyncDir snapshotted). A crash rebuilds the volatile namespace from the
// durable one, so creations not yet dir-synced vanish and removals not yet
// dir-synced come back with the durable content their inode had.
//
// Memory. A WAL syncs after every batch, so a sync must not copy the whole
// file. Each inode tracks, at BlockSize granularity, the blocks written
// since the last Sync call ("unsnapped" blocks). A Sync call records only
// those blocks plus the current size in a delta; a successful completion
// applies the delta to the durable image. A delta's blocks are the
// volatile image's bytes at the call, which a file's writes (appends) do
// not change afterwards: the completion copies them from the volatile
// image, and only a Truncate, which can, copies the blocks of the pending
// deltas into buffers of their own first (materialize). Because syncs on one file
// complete in issue order, durable-after-sync-k equals the volatile image at
// call k. What a failed sync's delta becomes depends on
// DiskConfig.FailedSync. Under FailedSyncKeep (the kind model) it is folded
// into the next pending sync of the file (its blocks, trimmed to that
// sync's size, under that sync's own newer blocks), or back into the
// unsnapped set when no sync is pending, so the next successful sync still
// makes the whole call-time image durable. Under the Linux modes its blocks
// stop being dirty (dropFailed): FailedSyncDrop reverts their volatile
// content to the durable image, FailedSyncClean keeps it and records the
// blocks as lost. The blocks where the two images may differ are therefore
// always the unsnapped blocks, the blocks of pending deltas and the lost
// blocks; the first two are the candidate set for torn persistence at a
// crash (a lost block is never written).
//
// Both images are paged (image.go), so an append never copies the file.
// Once a sync has made a whole page durable and nothing has written to it
// since, the durable image shares the volatile image's page copy-on-write
// (settle), so a synced file is held once. Delta buffers and the pages the
// durable images give up are recycled (deltaPool, pagePool): none of this
// changes a byte either image holds, or any random draw.

// Errors specific to the simulated disk (the env sentinels cover the rest).
var (
	// ErrBadTruncate: Truncate to a negative size or beyond the current
	// size (Truncate only shrinks).
	ErrBadTruncate = errors.New("sim disk: truncate size out of range")
	// ErrBadWriteAt: WriteAt outside the file's current bytes.
	ErrBadWriteAt = errors.New("sim disk: writeat range out of the file")
	// ErrBadOffset: ReadAt with a negative offset.
	ErrBadOffset = errors.New("sim disk: negative offset")
)

// maxBlockSize bounds DiskConfig.BlockSize so a bad config cannot make the
// disk allocate huge blocks.
const maxBlockSize = 1 << 20

// maxDiskDelay bounds every configured duration, so a draw can neither
// overflow nor push completions past any useful simulated horizon.
const maxDiskDelay = 24 * time.Hour

// defaultBlockSize is the torn-persistence granularity when BlockSize is 0.
const defaultBlockSize = 512

// DiskConfig sets a disk's latency distribution and fault probabilities.
// The zero value is a valid instant, fault-free disk with 512-byte blocks.
type DiskConfig struct {
	// Sync latency is drawn uniform in [SyncMin, SyncMax]; with
	// probability StallProb a stall adds a duration uniform in
	// [StallMin, StallMax] (milliseconds to seconds). SyncDir uses the
	// same distribution.
	SyncMin, SyncMax   time.Duration
	StallProb          float64
	StallMin, StallMax time.Duration
	// WriteEIOProb: File.Write fails with env.ErrIO after appending a
	// seeded prefix of its buffer.
	WriteEIOProb float64
	// SyncEIOProb: File.Sync / FS.SyncDir completes with env.ErrIO and
	// makes nothing durable.
	SyncEIOProb float64
	// TornKeepProb: at a crash, each unsynced block (and an unsynced
	// shrink of the file) survives with this probability; 0 is a clean
	// crash that keeps exactly the durable image.
	TornKeepProb float64
	// BlockSize is the granularity of torn persistence (0 means 512).
	BlockSize int
	// FailedSync is what a failed File.Sync does to the blocks it was
	// asked to make durable (see FailedSyncMode). The zero value is the
	// kind model (FailedSyncKeep); Linux behaves as FailedSyncDrop or
	// FailedSyncClean. Omitted from JSON when zero, so that case files
	// written before it existed still decode (to the kind model).
	FailedSync FailedSyncMode `json:",omitempty"`
	// FailedSyncKeepProb (Linux modes only): each block of a failed sync
	// was written back before the device failed, and is durable, with this
	// probability; the rest drop or are marked clean as FailedSync says.
	// A failed fsync says only that some writeback failed, not that none
	// happened, so a record whose fsync failed may still be found on disk
	// after a restart. Zero (the default, omitted from JSON) persists
	// nothing, as the simulator did before.
	FailedSyncKeepProb float64 `json:",omitempty"`
}

// FailedSyncMode says what happens to the dirty blocks of a File.Sync that
// completes with an error.
//
// Linux (ext4, xfs; the 2018 "fsyncgate" findings) does not keep them
// dirty: after writeback fails the kernel either invalidates the pages (a
// later read sees what the device holds) or marks them clean, and in both
// cases the NEXT fsync of the file returns success without writing them.
// "Retry the fsync and assume success" therefore loses data on Linux,
// while the kind model makes it correct.
type FailedSyncMode uint8

// Failed-sync modes.
const (
	// FailedSyncKeep keeps the failed blocks dirty: the next successful
	// sync of the file makes them durable (kinder than Linux; the model
	// the simulator had first, kept for tests that rely on it).
	FailedSyncKeep FailedSyncMode = iota
	// FailedSyncDrop drops the failed blocks back to the durable image:
	// their volatile content reverts to what the durable image holds
	// (zero bytes past its end; the volatile size is unchanged), as when
	// the kernel invalidates the pages after a writeback error. A block
	// written again since the failed Sync call keeps its newer content.
	FailedSyncDrop
	// FailedSyncClean marks the failed blocks clean: reads still see the
	// new content, but it is never written unless the block is written
	// again; the next sync succeeds without it, and a crash loses it.
	FailedSyncClean
	failedSyncModes // number of modes, for validation
)

// String names the mode as options print it.
func (m FailedSyncMode) String() string {
	switch m {
	case FailedSyncKeep:
		return "keep"
	case FailedSyncDrop:
		return "linux-drop"
	case FailedSyncClean:
		return "linux-clean"
	}
	return fmt.Sprintf("FailedSyncMode(%d)", uint8(m))
}

// Linux reports whether the mode is one of the Linux behaviours.
func (m FailedSyncMode) Linux() bool { return m == FailedSyncDrop || m == FailedSyncClean }

// DefaultDiskConfig returns a fast, fault-free disk: syncs take 100us..1ms,
// no stalls, no EIO, clean crashes.
func DefaultDiskConfig() DiskConfig {
	return DiskConfig{
		SyncMin:   100 * time.Microsecond,
		SyncMax:   time.Millisecond,
		BlockSize: defaultBlockSize,
	}
}

// Validate reports a config the disk cannot use: negative or inverted
// durations, probabilities outside [0, 1], or a block size outside
// [0, 1 MiB], or a duration above 24h. Harness code that draws configs should call it; NewDisk and
// SetConfig panic on an invalid config because that is a harness bug.
func (c DiskConfig) Validate() error {
	probs := []struct {
		name string
		p    float64
	}{
		{"StallProb", c.StallProb},
		{"WriteEIOProb", c.WriteEIOProb},
		{"SyncEIOProb", c.SyncEIOProb},
		{"TornKeepProb", c.TornKeepProb},
		{"FailedSyncKeepProb", c.FailedSyncKeepProb},
	}
	for _, p := range probs {
		if math.IsNaN(p.p) || p.p < 0 || p.p > 1 {
			return fmt.Errorf("sim disk config: %s = %v, want a probability in [0, 1]", p.name, p.p)
		}
	}
	switch {
	case c.SyncMin < 0 || c.SyncMax < c.SyncMin || c.SyncMax > maxDiskDelay:
		return fmt.Errorf("sim disk config: sync latency [%v, %v] is not a valid range within [0, %v]", c.SyncMin, c.SyncMax, maxDiskDelay)
	case c.StallMin < 0 || c.StallMax < c.StallMin || c.StallMax > maxDiskDelay:
		return fmt.Errorf("sim disk config: stall [%v, %v] is not a valid range within [0, %v]", c.StallMin, c.StallMax, maxDiskDelay)
	case c.BlockSize < 0 || c.BlockSize > maxBlockSize:
		return fmt.Errorf("sim disk config: BlockSize %d out of range [0, %d]", c.BlockSize, maxBlockSize)
	case c.FailedSync >= failedSyncModes:
		return fmt.Errorf("sim disk config: unknown FailedSync mode %d", c.FailedSync)
	}
	return nil
}

// DiskStats counts what a disk did; every field is cumulative over the
// disk's life.
type DiskStats struct {
	Writes        int64 // File.Write calls that reached the disk
	BytesWritten  int64 // bytes appended by them (including partial EIO writes)
	WriteErrors   int64 // writes that returned an error (env.ErrIO or env.ErrNoSpace)
	Truncates     int64 // File.Truncate calls
	Syncs         int64 // File.Sync calls that reached the disk
	SyncsDone     int64 // File.Sync completions (success or error)
	SyncErrors    int64 // File.Sync completions with env.ErrIO
	SyncBytes     int64 // bytes sync snapshots cover (the blocks written since the previous Sync call)
	DirSyncs      int64 // FS.SyncDir calls that reached the disk
	DirSyncErrors int64 // FS.SyncDir completions with env.ErrIO
	Stalls        int64 // syncs (file or dir) that drew a stall
	Crashes       int64 // Crash calls
	SyncsLost     int64 // pending syncs (file or dir) cancelled by a crash
	TornKept      int64 // unsynced blocks kept at a crash
	TornLost      int64 // unsynced blocks lost at a crash
	Corruptions   int64 // successful CorruptDurable calls
	MaxSyncWait   time.Duration
	// Linux failed-sync semantics (FailedSyncDrop / FailedSyncClean):
	// blocks a failed sync dropped (reverted) or marked clean, never to be
	// written unless written again.
	SyncBlocksDropped int64
	// SyncBlocksKept: blocks of failed syncs written back before the
	// failure (DiskConfig.FailedSyncKeepProb), durable all the same.
	SyncBlocksKept int64
	NoSpaceErrors  int64 // writes that returned env.ErrNoSpace
	ReadErrors     int64 // reads that returned env.ErrIO
	Hangs          int64 // syncs issued in a hang window (their issuer blocked)
	Exits          int64 // ProcessExit calls: process deaths that kept the page cache
}

// Disk is one node's simulated disk. It survives process crashes; each
// process incarnation gets its own env.FS from FS. It is driven by the
// simulation's Scheduler and is not safe for concurrent use.
type Disk struct {
	sched *Scheduler
	rng   *Rand
	cfg   DiskConfig

	// gen is the incarnation of the volatile state; Crash bumps it, and a
	// sync op queued in an older gen never completes.
	gen uint64
	// views counts the FS views' incarnations: Crash and ProcessExit bump
	// it, and every FS view or handle from an older one is closed.
	views uint64
	// cold: the disk crashed (a power loss) and no FS has been handed out
	// since, so no page cache stands in front of the medium: every
	// volatile image is the durable one, and CorruptDurable damages both
	// (the next boot reads the damage).
	cold bool

	vol map[string]*diskInode // volatile namespace
	dur nsSnap                // durable namespace
	// durHints are indexes into dur of names looked up lately (durLookup).
	durHints [2]int
	// volNames are the names of vol, sorted, and volInos their files, kept
	// up to date as names come and go: a SyncDir's snapshot is a prefix of
	// both (see nsSnap), without copying or sorting anything. volShared
	// says a snapshot may share their arrays: a change anywhere but at the
	// end then copies them first (unshareVol).
	volNames  []string
	volInos   []*diskInode
	volShared bool
	// volSnapSeqs, when not nil, are the directories' counts of volatile
	// name changes (dirLog.volSeq) taken by a SyncDir since the volatile
	// namespace last changed, for the next SyncDirs to share (Create,
	// Remove and Crash drop them).
	volSnapSeqs map[*dirLog]uint64

	// Pending completions (file syncs and dir syncs), so a crash can cancel
	// them and a stall can move them in issue order (pendingInOrder sorts
	// them by issue id). A slice in no particular order, each op knowing
	// its index (diskOp.pidx): an insert and a removal per sync cost less
	// than in a map, and every reader either sorts or takes a maximum.
	pending []*diskOp
	nextOp  uint64

	dirQueue    []*diskOp     // pending SyncDirs, FIFO
	dirLastDone time.Duration // completion time of the last issued SyncDir
	// dirStallUntil: directory syncs complete no earlier than this
	// (StallDirSyncsUntil).
	dirStallUntil time.Duration

	stallUntil time.Duration // no sync completes before this global time
	// prefixStalls: syncs of files under a prefix complete no earlier
	// than its time (StallPrefixUntil).
	prefixStalls []prefixStall
	failSyncs    int           // FailNextSyncs budget
	failWrites   int           // FailNextWrites budget
	noSpace      int           // FailNextWritesNoSpace budget
	failReads    int           // FailNextReads budget
	hangUntil    time.Duration // syncs issued before this block their issuer (HangSyncsUntil)
	// FailNextSyncsUnder and FailNextWritesUnder budgets, in arming order.
	failSyncsUnder, failWritesUnder []prefixBudget
	// onEvent, if set, traces the disk's fault events (World sets it to
	// the node's trace): kind and four integers as in World.event.
	onEvent     func(kind string, a, b, c, d int64)
	stats       DiskStats
	nextInodeID uint64

	// freeOps are finished sync ops, for the next Sync and SyncDir calls
	// (see diskOp.finish).
	freeOps []*diskOp
	// Buffers of applied deltas, for the next snapshots (see deltaPool).
	pool deltaPool
	// Pages the durable images gave up to share the volatile ones (see
	// settle), for the next pages any image of the disk needs.
	pages pagePool

	// Disk events so far and the crash-point hook (diskevents.go).
	events uint64
	hook   DiskEventHook
	// durVer counts changes of the durable state (see DurableVersion).
	durVer uint64
	// dirVers holds, per directory prefix ("raft/", "wal/t-0/"), when the
	// file images and the names under it last changed, and which files
	// changed when (see dirLog, DurableSource.PrefixVersion and
	// DurableSource.ChangedNames). durSeqs are the directories' volatile
	// namespace counts (dirLog.volSeq) at the snapshot that is now the
	// durable namespace.
	dirVers map[string]*dirLog
	durSeqs map[*dirLog]uint64
}

// prefixStall is one StallPrefixUntil: syncs of files whose names start
// with prefix complete no earlier than until.
type prefixStall struct {
	prefix string
	until  time.Duration
}

// prefixStallUntil returns the latest stall time of the prefixes name has
// (0 if none).
func (d *Disk) prefixStallUntil(name string) time.Duration {
	var t time.Duration
	for _, ps := range d.prefixStalls {
		if strings.HasPrefix(name, ps.prefix) && ps.until > t {
			t = ps.until
		}
	}
	return t
}

// diskInode is a file's content, independent of the names that point at it.
type diskInode struct {
	id       uint64
	data     image    // volatile image
	durable  image    // durable image
	unsnap   []uint64 // block indices written since the last Sync call, kept sorted, unique
	queue    []*diskOp
	lastDone time.Duration // completion time of the last issued Sync
	removed  bool          // removed from the volatile namespace: handles are invalid
	// lost are blocks a failed sync marked clean (FailedSyncClean): the
	// volatile image holds data the durable image does not, and no sync
	// will write it until the block is written again. Sorted, unique.
	lost []uint64
	// durChanges lists the changes of the durable image (see
	// DurableChangedFrom), in version order.
	durChanges []durChange
	// name is the file's name and dirVers are the Disk.dirVers logs of
	// its directory prefixes (an inode has one name for its life: there
	// is no rename).
	name    string
	dirVers []*dirLog
}

// diskDelta is a sync snapshot relative to the previous Sync call: the
// file size at call time and every block written since (deltaBlock).
type diskDelta struct {
	size   int64
	blocks []deltaBlock // sorted by index

	// The buffers materialized blocks' data lives in (materialize), its
	// own and carried from failed syncs folded in. Once the delta is
	// applied (or folded into the unsnapped set) nothing refers to them
	// any more and they go back to the disk's pool.
	carried [][]byte
}

// deltaBlock is one block of a delta: its index and its content, cut at
// the delta's size (n bytes). The content is the volatile image's bytes
// [b*BlockSize, b*BlockSize+n) while data is nil: writes since the Sync
// call only append past them (a write to block b after the call makes it
// unsnapped, and the next delta holds the newer copy), and whatever else
// may change volatile bytes in place copies them into data first
// (materialize). written: writeBackSome made it durable already.
type deltaBlock struct {
	b       uint64
	n       int
	data    []byte
	written bool
}

// writeTo copies the block's content into the durable image dur (growing
// it, gaps zero, as needed), from data or else from the volatile image vol.
func (blk *deltaBlock) writeTo(dur, vol *image, blockSize int) {
	off := int64(blk.b) * int64(blockSize)
	if blk.data != nil {
		dur.WriteAt(blk.data, off)
		return
	}
	dur.CopyFrom(vol, off, blk.n)
}

// materialize copies the content of delta's blocks that still lives in
// ino's volatile image into a buffer of the delta's own, before the
// volatile bytes change in place.
func (d *Disk) materialize(ino *diskInode, delta *diskDelta) {
	var total int64
	for _, blk := range delta.blocks {
		if blk.data == nil && !blk.written {
			total += int64(blk.n)
		}
	}
	if total == 0 {
		return
	}
	buf := d.pool.getBuf(total)
	bs := int64(d.cfg.BlockSize)
	var off int64
	for i := range delta.blocks {
		blk := &delta.blocks[i]
		if blk.data != nil || blk.written {
			continue
		}
		end := off + int64(blk.n)
		blk.data = buf[off:end:end]
		ino.data.ReadAt(blk.data, int64(blk.b)*bs)
		off = end
	}
	delta.carried = append(delta.carried, buf)
}

// materializeQueued materializes the deltas of every pending sync of ino.
func (d *Disk) materializeQueued(ino *diskInode) {
	for _, op := range ino.queue {
		d.materialize(ino, &op.delta)
	}
}

// diskOp is a pending File.Sync or FS.SyncDir.
type diskOp struct {
	id     uint64
	pidx   int // index in Disk.pending while pending
	at     time.Duration
	item   Item   // the completion event
	gen    uint64 // the disk generation the completion was queued in
	d      *Disk
	err    error              // result decided at issue time (nil or wrapped ErrIO)
	mode   FailedSyncMode     // file sync: the failed-sync mode in force at issue time
	ino    *diskInode         // file sync: the inode
	name   string             // file sync: the file's name (StallPrefixUntil)
	delta  diskDelta          // file sync: its snapshot
	ns     nsSnap             // dir sync: namespace snapshot
	seqs   map[*dirLog]uint64 // dir sync: the directories' volSeq at the snapshot
	done   func(error)
	fs     *diskFS // the view that issued it: how the callback is delivered
	issued time.Duration
}

// NewDisk returns an empty disk whose randomness comes only from rng and
// whose completions are scheduled only on s. It panics if cfg is invalid
// (see DiskConfig.Validate).
func NewDisk(s *Scheduler, rng *Rand, cfg DiskConfig) *Disk {
	if s == nil || rng == nil {
		panic("sim: NewDisk needs a scheduler and a rand stream")
	}
	d := &Disk{
		sched: s,
		rng:   rng,
		vol:   map[string]*diskInode{},
	}
	d.SetConfig(cfg)
	return d
}

// SetConfig replaces the config; it applies to operations issued after the
// call (pending syncs keep their drawn completion time and result). It
// panics if cfg is invalid (see DiskConfig.Validate).
func (d *Disk) SetConfig(cfg DiskConfig) {
	if err := cfg.Validate(); err != nil {
		panic(err.Error())
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = defaultBlockSize
	}
	if d.cfg.BlockSize != 0 && cfg.BlockSize != d.cfg.BlockSize {
		// The unsnapped block sets and pending deltas are indexed in
		// blocks of the old size; re-indexing them is possible but
		// nothing needs it, so refuse instead of corrupting them.
		if d.hasUnsyncedState() {
			panic(fmt.Sprintf("sim: Disk.SetConfig cannot change BlockSize from %d to %d while files have unsynced data", d.cfg.BlockSize, cfg.BlockSize))
		}
	}
	d.cfg = cfg
}

// Unsynced reports whether a read may see what the durable state does not
// hold: a sync pending, a write not yet covered by a sync, a block a failed
// sync marked clean, or a name created or removed since the last SyncDir.
// After a ProcessExit it says whether the next incarnation reads more than
// the medium holds.
func (d *Disk) Unsynced() bool {
	if d.hasUnsyncedState() || len(d.vol) != len(d.dur.names) {
		return true
	}
	for i, name := range d.dur.names {
		if d.vol[name] != d.dur.inos[i] {
			return true
		}
	}
	for _, ino := range d.dur.inos {
		if len(ino.lost) > 0 {
			return true
		}
	}
	return false
}

func (d *Disk) hasUnsyncedState() bool {
	if len(d.pending) > 0 {
		return true
	}
	for _, ino := range d.vol {
		if len(ino.unsnap) > 0 {
			return true
		}
	}
	for _, ino := range d.dur.inos {
		if len(ino.unsnap) > 0 {
			return true
		}
	}
	return false
}

// Config returns the current config (BlockSize filled in).
func (d *Disk) Config() DiskConfig { return d.cfg }

// Stats returns the disk's counters.
func (d *Disk) Stats() DiskStats { return d.stats }

// FS returns the env.FS one process incarnation uses. Every completion
// callback (File.Sync, FS.SyncDir) is handed to deliver(fn) instead of being
// called directly; the process layer runs it on the process's event loop (or
// drops it after a crash). A nil deliver runs fn directly from the
// completion event. Durability is decided by the disk at completion time,
// independent of deliver. The FS and its files stop working (env.ErrClosed)
// at the next Crash or ProcessExit (a completion pending at a ProcessExit
// is still handed to deliver, which must drop it).
func (d *Disk) FS(deliver func(fn func())) env.FS {
	if deliver == nil {
		deliver = func(fn func()) { fn() }
	}
	d.cold = false
	return &diskFS{d: d, view: d.views, deliver: deliver}
}

// procFS is FS for the process layer: completions go to incarnation epoch
// of p through Process.dispatchEvent, as FS(func(fn func()) {
// p.dispatch(epoch, fn, nil) }) would, without a closure per completion.
func (d *Disk) procFS(p *Process, epoch uint64) env.FS {
	d.cold = false
	fs := &diskFS{d: d, view: d.views, p: p, epoch: epoch}
	fs.deliver = func(fn func()) { p.dispatch(epoch, fn, nil) }
	return fs
}

// Files returns the names in the volatile namespace, sorted.
func (d *Disk) Files() []string { return sortedNames(d.vol) }

// DurableFiles returns the names in the durable namespace, sorted: the
// files a crash now would leave.
func (d *Disk) DurableFiles() []string { return slices.Clone(d.dur.names) }

// DurableImage returns a copy of the durable bytes of name, looked up in the
// durable namespace; ok is false if a crash now would leave no such file.
func (d *Disk) DurableImage(name string) ([]byte, bool) {
	ino, ok := d.durLookup(name)
	if !ok {
		return nil, false
	}
	return ino.durable.Bytes(), true
}

// VolatileImage returns a copy of the volatile bytes of name (what a read
// sees now); ok is false if the name does not exist.
func (d *Disk) VolatileImage(name string) ([]byte, bool) {
	ino, ok := d.vol[name]
	if !ok {
		return nil, false
	}
	return ino.data.Bytes(), true
}

// PendingSyncs returns how many syncs (file and dir) have been issued and
// not completed.
func (d *Disk) PendingSyncs() int { return len(d.pending) }

// OldestPendingSync returns when the oldest sync still pending was issued
// and when it is due to complete (global time); ok is false when none is
// pending.
func (d *Disk) OldestPendingSync() (issued, due time.Duration, ok bool) {
	for _, op := range d.pending {
		if !ok || op.issued < issued {
			issued, due, ok = op.issued, op.at, true
		}
	}
	return issued, due, ok
}

// StallSyncsUntil makes every sync issued or pending complete no earlier
// than global time t. A later call with an earlier t does not shorten an
// earlier stall.
func (d *Disk) StallSyncsUntil(t time.Duration) {
	if t > d.stallUntil {
		d.stallUntil = t
	}
	// Move every pending op due at or before t to t, in issue order. Ops
	// due exactly at t are moved too so that ops of one file already at t
	// keep their issue order behind the moved ones (same time, fresh
	// sequence numbers in issue order).
	for _, op := range d.pendingInOrder() {
		if op.at > t {
			continue
		}
		op.item.Cancel(d.sched)
		op.at = t
		d.queue(op)
	}
	for _, op := range d.pending {
		if op.ino != nil && op.ino.lastDone < t {
			op.ino.lastDone = t
		}
	}
	if len(d.dirQueue) > 0 && d.dirLastDone < t {
		d.dirLastDone = t
	}
}

// StallDirSyncsUntil is StallSyncsUntil for directory syncs alone: those
// pending or issued before t complete no earlier than global time t, in
// their order, while file syncs go on (a directory's metadata stuck
// behind a journal commit, say). A log that syncs its directory before it
// issues the file syncs queued behind (a segment rotation, a removal) then
// has only a directory sync outstanding: a hung-disk check that watches
// file syncs alone sees nothing.
func (d *Disk) StallDirSyncsUntil(t time.Duration) {
	d.dirStallUntil = max(d.dirStallUntil, t)
	for _, op := range d.dirQueue { // the pending directory syncs, in order
		if op.at > t {
			continue
		}
		op.item.Cancel(d.sched)
		op.at = t
		d.queue(op)
	}
	if len(d.dirQueue) > 0 && d.dirLastDone < t {
		d.dirLastDone = t
	}
}

// StallPrefixUntil is StallSyncsUntil for the files whose names start with
// prefix alone: their syncs, pending or issued before t, complete no earlier
// than global time t, while other files' syncs and directory syncs go on
// (one log's device queue stuck, or its fsync behind a long writeback,
// while the node's other logs keep completing). A file's syncs keep their
// issue order.
func (d *Disk) StallPrefixUntil(prefix string, t time.Duration) {
	now := d.sched.Now()
	d.prefixStalls = slices.DeleteFunc(d.prefixStalls, func(ps prefixStall) bool { return ps.until <= now })
	d.prefixStalls = append(d.prefixStalls, prefixStall{prefix: prefix, until: t})
	for _, op := range d.pendingInOrder() {
		if op.ino == nil || op.at > t || !strings.HasPrefix(op.name, prefix) {
			continue
		}
		op.item.Cancel(d.sched)
		op.at = t
		d.queue(op)
		if op.ino.lastDone < t {
			op.ino.lastDone = t
		}
	}
}

// ClearFaults cancels injected faults that have not fired yet (pending
// FailNextSyncs and FailNextWrites counts, and a stall for syncs issued from
// now on): the liveness phase heals the disk with it. Syncs already delayed
// by a stall keep their completion time.
func (d *Disk) ClearFaults() {
	d.failSyncs, d.failWrites = 0, 0
	d.failSyncsUnder, d.failWritesUnder = nil, nil
	d.stallUntil = 0
	d.prefixStalls = nil
	d.dirStallUntil = 0
	d.noSpace, d.failReads, d.hangUntil = 0, 0, 0
}

// FailNextSyncs makes the next n syncs issued (File.Sync or FS.SyncDir)
// complete with env.ErrIO. It adds to any budget left from an earlier call.
func (d *Disk) FailNextSyncs(n int) {
	if n > 0 {
		d.failSyncs += n
	}
}

// prefixBudget is a fault budget for one log: the next n syncs (or writes)
// of files whose names start with prefix, or with dir the next n directory
// syncs.
type prefixBudget struct {
	prefix string
	dir    bool
	n      int
}

// FailNextSyncsUnder is FailNextSyncs for one log: the next n File.Syncs
// of files whose names start with prefix complete with env.ErrIO, while
// other files' syncs and directory syncs go on; prefix "" with dir set
// fails the next n FS.SyncDir calls instead. A fault aimed at one log
// (the WAL's background sync, the Raft log's) needs no timing. A FailNextSyncs
// budget is consumed first.
func (d *Disk) FailNextSyncsUnder(prefix string, dir bool, n int) {
	if n > 0 {
		d.failSyncsUnder = append(d.failSyncsUnder, prefixBudget{prefix, dir, n})
	}
}

// FailNextWritesUnder is FailNextWrites for the files whose names start
// with prefix. A FailNextWrites budget is consumed first.
func (d *Disk) FailNextWritesUnder(prefix string, n int) {
	if n > 0 {
		d.failWritesUnder = append(d.failWritesUnder, prefixBudget{prefix: prefix, n: n})
	}
}

// takeBudget consumes one unit of the first budget in bs that covers name
// (dir: a directory sync) and reports whether there was one. Spent budgets
// leave the list.
func takeBudget(bs *[]prefixBudget, name string, dir bool) bool {
	for i, b := range *bs {
		if b.dir != dir || (!dir && !strings.HasPrefix(name, b.prefix)) {
			continue
		}
		if (*bs)[i].n--; (*bs)[i].n == 0 {
			*bs = slices.Delete(*bs, i, i+1)
		}
		return true
	}
	return false
}

// FailNextWrites makes the next n File.Write calls fail with env.ErrIO. It
// adds to any budget left from an earlier call.
func (d *Disk) FailNextWrites(n int) {
	if n > 0 {
		d.failWrites += n
	}
}

// FailNextWritesNoSpace makes the next n File.Write calls fail with
// env.ErrNoSpace (ENOSPC) after storing a seeded prefix of their buffer, as
// write(2) does when the file system fills up mid-write. It adds to any
// budget left from an earlier call. A pending FailNextWrites (EIO) budget
// is consumed first.
func (d *Disk) FailNextWritesNoSpace(n int) {
	if n > 0 {
		d.noSpace += n
	}
}

// FailNextReads makes the next n File.ReadAt calls fail with env.ErrIO
// (reading nothing): a medium error on read, which recovery must report
// rather than take for the end of the data. It adds to any budget left.
func (d *Disk) FailNextReads(n int) {
	if n > 0 {
		d.failReads += n
	}
}

// ClearReadFaults cancels a FailNextReads budget that has not fired (the
// harness aims read errors at a recovery and disarms them once it is over).
func (d *Disk) ClearReadFaults() { d.failReads = 0 }

// HangSyncsUntil makes the disk hang until global time t: every sync
// pending or issued before t completes no earlier than t (as
// StallSyncsUntil), and a sync (file or dir) issued before t also blocks
// the process that issued it until the sync completes: its event loop
// runs nothing (no timers, no messages, no posted work) meanwhile, as a
// thread blocked in fsync(2) would not. A disk whose FS was not made by
// the process layer (Disk.FS) only delays. A later call with an earlier t
// does not shorten an earlier hang.
func (d *Disk) HangSyncsUntil(t time.Duration) {
	d.StallSyncsUntil(t)
	if t > d.hangUntil {
		d.hangUntil = t
	}
}

// Hanging reports whether a sync issued now would block its issuer.
func (d *Disk) Hanging() bool { return d.sched.Now() < d.hangUntil }

// hang blocks the process that issued op until op completes, if the disk
// is hanging.
func (d *Disk) hang(fs *diskFS, op *diskOp) {
	if d.sched.Now() >= d.hangUntil || fs.p == nil {
		return
	}
	d.stats.Hangs++
	fs.p.blockUntil(fs.epoch, op.at)
}

// traceEvent traces a disk fault event if a tracer is attached.
func (d *Disk) traceEvent(kind string, a, b, c, e int64) {
	if d.onEvent != nil {
		d.onEvent(kind, a, b, c, e)
	}
}

// CorruptDurable flips n bytes of the durable image of name starting at off
// (each XORed with a seeded non-zero mask), clipped to the image: latent
// corruption of synced data, outside the normal fault budget. It returns
// false if the file is not in the durable namespace or off is not inside
// its durable image.
//
// Whether reads see the damage depends on the page cache. While an
// incarnation runs (an FS was handed out since the last Crash) the volatile
// image is untouched, as a cached page hides damage to the medium below it:
// the damage shows after the next crash. Between a Crash (a power loss)
// and the next FS there is no page cache: the volatile image is the durable
// one, and the next boot reads the damaged bytes.
func (d *Disk) CorruptDurable(name string, off int64, n int) bool {
	ino, ok := d.durLookup(name)
	if !ok || off < 0 || off >= ino.durable.Len() || n <= 0 {
		return false
	}
	cold := d.cold && d.vol[name] == ino
	if cold && ino.data.Len() != ino.durable.Len() {
		panic(fmt.Sprintf("sim: CorruptDurable(%q): volatile size %d differs from durable size %d on a disk no FS has used since its crash", name, ino.data.Len(), ino.durable.Len()))
	}
	end := min(off+int64(n), ino.durable.Len())
	if cold {
		d.materializeQueued(ino) // none pending after a crash; kept for the invariant
	}
	for i := off; i < end; i++ {
		mask := byte(1 + d.rng.IntN(255))
		ino.durable.XorByte(i, mask)
		if cold {
			ino.data.XorByte(i, mask)
		}
	}
	d.durableChanged(ino, off)
	d.stats.Corruptions++
	return true
}

// Crash discards volatile state. Each file in the durable namespace becomes
// its durable image plus, when TornKeepProb > 0, a seeded subset of its
// unsynced blocks (torn and out-of-order persistence: block k+1 may survive
// while block k does not; a surviving block past the durable end extends
// the file, gaps are zero bytes; an unsynced shrink survives with the same
// probability). Creations not yet made durable by SyncDir vanish, removals
// not yet SyncDir'ed come back with their durable content. Pending syncs
// never complete and make nothing durable; every FS and handle from before
// the crash returns env.ErrClosed from then on.
func (d *Disk) Crash() {
	d.stats.Crashes++
	d.gen++
	d.views++
	for _, op := range d.pendingInOrder() {
		op.item.Cancel(d.sched)
		d.stats.SyncsLost++
	}
	clear(d.pending)
	d.pending = d.pending[:0]
	d.dirQueue = nil
	d.dirLastDone = 0
	// In name order: the torn draws must not depend on map order.
	for _, ino := range d.dur.inos {
		d.tear(ino)
		// Copy-on-write: the two images share pages until either writes.
		ino.data = ino.durable.Clone()
		ino.unsnap = nil
		ino.lost = nil
		ino.queue = nil
		ino.lastDone = 0
		ino.removed = false
	}
	d.vol = make(map[string]*diskInode, len(d.dur.names))
	for i, name := range d.dur.names {
		d.vol[name] = d.dur.inos[i]
	}
	d.volNames, d.volInos = slices.Clone(d.dur.names), slices.Clone(d.dur.inos)
	d.volShared, d.volSnapSeqs = false, nil
	for _, dl := range d.dirVers { // order-free: each log on its own
		if dl.volSeq != d.durSeqs[dl] {
			// The volatile names under it went back to the durable ones.
			dl.volEvent(nil)
		}
	}
	d.cold = true
}

// ProcessExit is what the disk sees when the process using it dies but the
// machine does not (kill -9, a panic, a supervisor's restart after a
// fail-stop): the kernel and its page cache survive. Every FS view and
// handle handed out before is closed (env.ErrClosed), as after Crash. The
// rest stays:
//
//   - unsynced writes stay in the page cache: the next incarnation reads
//     them, and they become durable only when a later sync covers them (a
//     later Crash loses or tears them as any unsynced write);
//   - syncs in flight still complete, durably or with their error, since
//     the kernel finishes the writeback an fsync started; the process
//     layer drops their callbacks (nobody is left to hear them);
//   - blocks a failed sync marked clean (FailedSyncClean) stay readable and
//     clean: a sync by the next incarnation skips them, so a process that
//     reads its log back after a failed fsync and syncs it has not made it
//     durable (fsyncgate across a restart; only writing the blocks again
//     does).
//
// Nothing is drawn from the disk's random stream, and no page cache goes
// cold: CorruptDurable still damages only the durable image.
func (d *Disk) ProcessExit() {
	d.stats.Exits++
	d.views++
}

// tear folds a seeded subset of ino's unsynced changes into its durable
// image.
func (d *Disk) tear(ino *diskInode) {
	p := d.cfg.TornKeepProb
	cands := slices.Clone(ino.unsnap)
	for _, op := range ino.queue {
		for _, blk := range op.delta.blocks {
			cands = append(cands, blk.b)
		}
	}
	slices.Sort(cands)
	cands = slices.Compact(cands)
	bs := int64(d.cfg.BlockSize)
	size := ino.data.Len()
	// Blocks at or past the volatile end were cut by a truncate; there is
	// no data to persist for them.
	n := 0
	for _, b := range cands {
		if int64(b)*bs < size {
			cands[n] = b
			n++
		}
	}
	cands = cands[:n]
	if p <= 0 {
		d.stats.TornLost += int64(len(cands))
		return
	}
	if size < ino.durable.Len() && d.rng.Chance(p) {
		d.durableChanged(ino, size)
		ino.durable.Truncate(size)
	}
	buf := make([]byte, bs)
	for _, b := range cands {
		if !d.rng.Chance(p) {
			d.stats.TornLost++
			continue
		}
		d.stats.TornKept++
		start := int64(b) * bs
		d.durableChanged(ino, min(start, ino.durable.Len()))
		end := min(start+bs, size)
		blk := buf[:end-start]
		ino.data.ReadAt(blk, start)
		// A block written back is the whole page: past a shrunk file's
		// end it holds zeros (a truncate zeroes the partial block's
		// tail), not the old bytes, even when the crash keeps the old,
		// longer size.
		if tail := min(start+bs, ino.durable.Len()); tail > end {
			blk = buf[:tail-start]
			clear(blk[end-start:])
		}
		ino.durable.WriteAt(blk, start)
	}
}

// unpend removes op from the pending set (the last op takes its slot).
func (d *Disk) unpend(op *diskOp) {
	last := len(d.pending) - 1
	if op.pidx > last || d.pending[op.pidx] != op {
		panic(fmt.Sprintf("sim disk: sync op %d is not pending", op.id))
	}
	if op.pidx != last {
		d.pending[op.pidx] = d.pending[last]
		d.pending[op.pidx].pidx = op.pidx
	}
	d.pending[last] = nil
	d.pending = d.pending[:last]
}

func (d *Disk) pendingInOrder() []*diskOp {
	ops := make([]*diskOp, 0, len(d.pending))
	for _, op := range d.pending {
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, b *diskOp) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	return ops
}

// nsSnap is a namespace as a SyncDir snapshots it and the durable
// namespace holds it: the names, sorted, and inos[i] the file of
// names[i]. A snapshot is never modified. It is a prefix of the disk's
// volatile name lists at the SyncDir call, sharing their arrays, with
// its capacity cut at its length: names created after it at the end of
// the lists go past what it can see, and any other change of the lists
// copies them first (Disk.unshareVol). A log creates its segments in
// name order, so the log whose directory sorts last copies nothing; the
// others' new segments land inside the lists and copy two flat slices,
// still far cheaper than the map and name list every SyncDir used to
// clone.
type nsSnap struct {
	names []string
	inos  []*diskInode
}

// lookup returns the index of name.
func (ns nsSnap) lookup(name string) (int, bool) {
	return slices.BinarySearch(ns.names, name)
}

// durLookup returns the file of name in the durable namespace. The oracle
// looks up the same few names (each log's last segment) over and over:
// the indexes of the last two names found are tried first (checked
// against the names, so they need no upkeep when the namespace changes).
func (d *Disk) durLookup(name string) (*diskInode, bool) {
	for _, i := range d.durHints {
		if i < len(d.dur.names) && d.dur.names[i] == name {
			return d.dur.inos[i], true
		}
	}
	i, ok := d.dur.lookup(name)
	if !ok {
		return nil, false
	}
	d.durHints[1], d.durHints[0] = d.durHints[0], i
	return d.dur.inos[i], true
}

// unshareVol gives the volatile name lists arrays of their own if a
// snapshot may share theirs, before a change a snapshot would see.
func (d *Disk) unshareVol() {
	if d.volShared {
		d.volNames, d.volInos = slices.Clone(d.volNames), slices.Clone(d.volInos)
		d.volShared = false
	}
}

func sortedNames(m map[string]*diskInode) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// drawSync draws a sync's latency and result, consuming the fault budgets.
// Draw order is fixed (latency, stall, error) so a seed replays.
func (d *Disk) drawSync(op, name string) (time.Duration, error) {
	lat := d.rng.Duration(d.cfg.SyncMin, d.cfg.SyncMax)
	if d.rng.Chance(d.cfg.StallProb) {
		lat += d.rng.Duration(d.cfg.StallMin, d.cfg.StallMax)
		d.stats.Stalls++
	}
	var err error
	if d.failSyncs > 0 {
		d.failSyncs--
		err = fmt.Errorf("sim disk: %s %q: %w", op, name, env.ErrIO)
	} else if len(d.failSyncsUnder) > 0 && takeBudget(&d.failSyncsUnder, name, op == "syncdir") {
		// Checked before the EIO draw, and only when armed, so runs
		// without it draw exactly as before.
		err = fmt.Errorf("sim disk: %s %q: %w", op, name, env.ErrIO)
	} else if d.rng.Chance(d.cfg.SyncEIOProb) {
		err = fmt.Errorf("sim disk: %s %q: %w", op, name, env.ErrIO)
	}
	return lat, err
}

// schedule registers op to complete at max(after, now+lat, stallUntil).
func (d *Disk) schedule(op *diskOp, after, lat time.Duration) time.Duration {
	at := max(after, d.sched.Now()+lat, d.stallUntil, d.hangUntil)
	d.nextOp++
	op.id = d.nextOp
	op.at = at
	op.issued = d.sched.Now()
	op.pidx = len(d.pending)
	d.pending = append(d.pending, op)
	d.queue(op)
	return at
}

// queue puts op's completion in the scheduler at op.at.
func (d *Disk) queue(op *diskOp) {
	op.d, op.gen = d, d.gen
	d.sched.schedule(&op.item, op.at, op)
}

// fire is the op's completion event.
func (op *diskOp) fire() {
	d := op.d
	if op.gen != d.gen {
		panic(fmt.Sprintf("sim disk: sync op %d from generation %d completed in generation %d", op.id, op.gen, d.gen))
	}
	d.complete(op)
}

// run calls the op's callback on the issuing process's event loop.
func (op *diskOp) run() {
	done, err := op.done, op.err
	op.finish()
	done(err)
}

// drop: the process that issued the op has crashed; nobody hears of it.
func (op *diskOp) drop() { op.finish() }

// newOp returns a zero op, recycled when one is free.
func (d *Disk) newOp() *diskOp {
	if n := len(d.freeOps); n > 0 {
		op := d.freeOps[n-1]
		d.freeOps[n-1] = nil
		d.freeOps = d.freeOps[:n-1]
		return op
	}
	return &diskOp{}
}

// finish recycles an op whose completion has been delivered or dropped:
// complete took it off every queue and the pending set, its event has run
// and its delta went back to the pool or on to the next sync, so nothing
// refers to it any more. (Ops a crash cancels are not recycled.) Every
// field is cleared, so a recycled op is the zero op newOp promises.
func (op *diskOp) finish() {
	d := op.d
	*op = diskOp{}
	if d != nil {
		d.freeOps = append(d.freeOps, op)
	}
}

// popOp removes q[0], shifting the rest down so the slice keeps its
// capacity for the next append (these queues are short).
func popOp(q []*diskOp) []*diskOp {
	copy(q, q[1:])
	q[len(q)-1] = nil
	return q[:len(q)-1]
}

func (d *Disk) complete(op *diskOp) {
	d.unpend(op)
	if w := d.sched.Now() - op.issued; w > d.stats.MaxSyncWait {
		d.stats.MaxSyncWait = w
	}
	if op.ino != nil {
		ino := op.ino
		if len(ino.queue) == 0 || ino.queue[0] != op {
			panic(fmt.Sprintf("sim disk: file sync op %d completed out of issue order", op.id))
		}
		ino.queue = popOp(ino.queue)
		d.stats.SyncsDone++
		if op.err == nil {
			if lo := deltaLow(&ino.durable, &op.delta, d.cfg.BlockSize); lo >= 0 {
				d.durableChanged(ino, lo)
			}
			applyDelta(&ino.durable, &ino.data, &op.delta, d.cfg.BlockSize)
			ino.unlose(&op.delta)
			d.settle(ino, &op.delta)
			d.pool.release(&op.delta)
		} else {
			d.stats.SyncErrors++
			switch op.mode {
			case FailedSyncDrop, FailedSyncClean:
				d.dropFailed(ino, &op.delta, op.mode, d.writeBackSome(ino, &op.delta))
			default:
				d.carryFailed(ino, &op.delta)
			}
		}
	} else {
		if len(d.dirQueue) == 0 || d.dirQueue[0] != op {
			panic(fmt.Sprintf("sim disk: dir sync op %d completed out of issue order", op.id))
		}
		d.dirQueue = popOp(d.dirQueue)
		if op.err == nil {
			d.dur = op.ns
			d.durVer++
			for _, dl := range d.dirVers { // order-free: each log on its own
				dl.durableNames(d.durSeqs[dl], op.seqs[dl], d.durVer)
			}
			d.durSeqs = op.seqs
		} else {
			d.stats.DirSyncErrors++
		}
	}
	if op.ino != nil {
		d.event(DiskEventSyncDone)
	} else {
		d.event(DiskEventSyncDirDone)
	}
	if fs := op.fs; fs.p != nil {
		fs.p.dispatchEvent(fs.epoch, op)
	} else {
		done, err := op.done, op.err
		op.finish()
		fs.deliver(func() { done(err) })
	}
}

// applyDelta makes dur the call-time image described by delta on top of the
// previous snapshot (the blocks not materialized read from vol, the
// volatile image).
func applyDelta(dur, vol *image, delta *diskDelta, blockSize int) {
	if delta.size < dur.Len() {
		dur.Truncate(delta.size)
	} else if delta.size > dur.Len() {
		dur.extend(delta.size)
	}
	for i := range delta.blocks {
		delta.blocks[i].writeTo(dur, vol, blockSize)
	}
}

// settle lets the durable image of ino share the volatile image's pages
// that the sync of delta (just applied) made equal, so a synced file is held
// once, not twice: the durable copy goes back to the disk's page pool.
//
// Right after the sync the durable image is the volatile image as it was at
// the Sync call. Every byte written since is in a block of the unsnapped
// set or of a later pending delta, and a truncate since either cut the
// volatile image below the page or was followed by writes that are. So a
// page that is whole in both images and has no such block holds the same
// bytes in both. Only the pages delta touched can have changed.
func (d *Disk) settle(ino *diskInode, delta *diskDelta) {
	bs := int64(d.cfg.BlockSize)
	limit := min(ino.durable.Len(), ino.data.Len()) / pageSize // whole pages of both
	done := -1
	for _, blk := range delta.blocks {
		start := int64(blk.b) * bs
		for pg := int(start / pageSize); pg <= int((start+bs-1)/pageSize); pg++ {
			if pg <= done || int64(pg) >= limit {
				continue
			}
			done = pg
			if d.writtenSince(ino, int64(pg)*pageSize, int64(pg+1)*pageSize) {
				continue
			}
			if old := ino.durable.adopt(pg, &ino.data); old != nil {
				d.pages.put(old)
			}
		}
	}
}

// writtenSince reports whether a block overlapping bytes [start, end) of
// ino is unsnapped or in a pending delta.
func (d *Disk) writtenSince(ino *diskInode, start, end int64) bool {
	bs := int64(d.cfg.BlockSize)
	lo, hi := uint64(start/bs), uint64((end-1)/bs)
	if i, _ := slices.BinarySearch(ino.unsnap, lo); i < len(ino.unsnap) && ino.unsnap[i] <= hi {
		return true
	}
	if i, _ := slices.BinarySearch(ino.lost, lo); i < len(ino.lost) && ino.lost[i] <= hi {
		return true
	}
	for _, op := range ino.queue {
		blocks := op.delta.blocks
		i, _ := slices.BinarySearchFunc(blocks, lo, func(e deltaBlock, b uint64) int { return cmp.Compare(e.b, b) })
		if i < len(blocks) && blocks[i].b <= hi {
			return true
		}
	}
	return false
}

// carryFailed keeps a failed sync's blocks unsynced: it folds them under the
// next pending sync of the file, or back into the unsnapped set.
func (d *Disk) carryFailed(ino *diskInode, failed *diskDelta) {
	if len(ino.queue) == 0 {
		// The volatile image holds the newest content of these blocks; the
		// next Sync call copies it.
		for _, blk := range failed.blocks {
			ino.unsnap = insertSorted(ino.unsnap, blk.b)
		}
		d.pool.release(failed)
		return
	}
	next := &ino.queue[0].delta
	bs := int64(d.cfg.BlockSize)
	var blocks []deltaBlock
	i, j := 0, 0
	for i < len(failed.blocks) || j < len(next.blocks) {
		switch {
		case j < len(next.blocks) && (i >= len(failed.blocks) || next.blocks[j].b <= failed.blocks[i].b):
			// The newer snapshot wins; a block in both is the newer copy.
			if i < len(failed.blocks) && failed.blocks[i].b == next.blocks[j].b {
				i++
			}
			blocks = append(blocks, next.blocks[j])
			j++
		default:
			blk := failed.blocks[i]
			start := int64(blk.b) * bs
			if start < next.size {
				if start+int64(blk.n) > next.size {
					blk.n = int(next.size - start)
					if blk.data != nil {
						blk.data = blk.data[:blk.n]
					}
				}
				blocks = append(blocks, blk)
			}
			i++
		}
	}
	// The merged list replaces both block lists; the failed delta's data
	// now lives on in next, so next owns its buffers too.
	d.pool.putBlocks(next.blocks)
	d.pool.putBlocks(failed.blocks)
	next.blocks = blocks
	next.carried = append(next.carried, failed.carried...)
	*failed = diskDelta{}
}

// dropFailed applies Linux's semantics to a failed sync's blocks (see
// FailedSyncMode): they stop being dirty and no later sync writes them.
// Blocks written again since the failed Sync call (unsnapped, or in a later
// pending delta) are left alone: their newer content is dirty and a later
// sync writes the whole block. Of the others, FailedSyncDrop reverts the
// volatile content to the durable image (zero bytes past its end) and
// FailedSyncClean keeps the volatile content and records the block as lost
// (volatile and durable differ there, with no sync to come).
func (d *Disk) dropFailed(ino *diskInode, failed *diskDelta, mode FailedSyncMode, kept int64) {
	bs := int64(d.cfg.BlockSize)
	var n int64
	for _, blk := range failed.blocks {
		if blk.written {
			continue // written back before the failure (writeBackSome)
		}
		if d.rewritten(ino, blk.b) {
			continue
		}
		start := int64(blk.b) * bs
		end := min(start+bs, ino.data.Len())
		if start >= end {
			continue // cut by a truncate since: nothing of it left to read
		}
		n++
		if mode == FailedSyncClean {
			ino.lost = insertSorted(ino.lost, blk.b)
			continue
		}
		buf := make([]byte, end-start)
		if dl := ino.durable.Len(); start < dl {
			ino.durable.ReadAt(buf[:min(end, dl)-start], start)
		}
		ino.data.WriteAt(buf, start)
	}
	d.stats.SyncBlocksDropped += n
	d.traceEvent("disk.sync_dropped", int64(mode), n, int64(len(failed.blocks)), kept)
	d.pool.release(failed)
}

// writeBackSome makes a seeded subset of a failed sync's blocks durable
// (DiskConfig.FailedSyncKeepProb): the writeback that reached the device
// before it failed. A kept block's data is written into the durable image
// (extending it, gaps zero, as a torn crash does) and marked written in
// the delta, so dropFailed leaves it alone. It returns how many blocks it
// kept. With a zero probability it draws nothing.
func (d *Disk) writeBackSome(ino *diskInode, failed *diskDelta) int64 {
	p := d.cfg.FailedSyncKeepProb
	if p <= 0 {
		return 0
	}
	bs := int64(d.cfg.BlockSize)
	var kept int64
	for i, blk := range failed.blocks {
		if !d.rng.Chance(p) {
			continue
		}
		start := int64(blk.b) * bs
		d.durableChanged(ino, min(start, ino.durable.Len()))
		blk.writeTo(&ino.durable, &ino.data, d.cfg.BlockSize)
		failed.blocks[i].written = true
		if j, ok := slices.BinarySearch(ino.lost, blk.b); ok {
			ino.lost = slices.Delete(ino.lost, j, j+1) // durable after all
		}
		kept++
	}
	d.stats.SyncBlocksKept += kept
	return kept
}

// rewritten reports whether block b of ino was written since the last
// Sync call or is in a pending delta (a newer copy is on its way).
func (d *Disk) rewritten(ino *diskInode, b uint64) bool {
	if _, ok := slices.BinarySearch(ino.unsnap, b); ok {
		return true
	}
	for _, op := range ino.queue {
		if _, ok := slices.BinarySearchFunc(op.delta.blocks, b, func(e deltaBlock, b uint64) int { return cmp.Compare(e.b, b) }); ok {
			return true
		}
	}
	return false
}

// unlose forgets the lost blocks a successful sync of delta just wrote.
func (ino *diskInode) unlose(delta *diskDelta) {
	if len(ino.lost) == 0 {
		return
	}
	ino.lost = slices.DeleteFunc(ino.lost, func(b uint64) bool {
		_, ok := slices.BinarySearchFunc(delta.blocks, b, func(e deltaBlock, b uint64) int { return cmp.Compare(e.b, b) })
		return ok
	})
}

func insertSorted(s []uint64, b uint64) []uint64 {
	i, found := slices.BinarySearch(s, b)
	if found {
		return s
	}
	return slices.Insert(s, i, b)
}

// markDirty records that bytes [off, end) of ino changed since the last
// Sync call.
func (d *Disk) markDirty(ino *diskInode, off, end int64) {
	if end <= off {
		return
	}
	bs := int64(d.cfg.BlockSize)
	for b := uint64(off / bs); int64(b)*bs < end; b++ {
		// Appends touch the highest blocks: the fast path avoids a search.
		if n := len(ino.unsnap); n == 0 || ino.unsnap[n-1] < b {
			ino.unsnap = append(ino.unsnap, b)
			continue
		}
		ino.unsnap = insertSorted(ino.unsnap, b)
	}
}

// snapshot fills delta with the delta of a Sync call and resets the
// unsnapped set.
func (d *Disk) snapshot(ino *diskInode, delta *diskDelta) {
	bs := int64(d.cfg.BlockSize)
	size := ino.data.Len()
	*delta = diskDelta{size: size}
	// Blocks past the end were cut by a truncate; the size carries that.
	var total int64
	nb := 0
	for _, b := range ino.unsnap {
		start := int64(b) * bs
		if start >= size {
			break
		}
		total += min(start+bs, size) - start
		nb++
	}
	if nb > 0 {
		delta.blocks = d.pool.getBlocks(nb)
		for i, b := range ino.unsnap[:nb] {
			start := int64(b) * bs
			delta.blocks[i] = deltaBlock{b: b, n: int(min(start+bs, size) - start)}
		}
	}
	d.stats.SyncBytes += total
	ino.unsnap = ino.unsnap[:0]
}

// diskFS is one incarnation's view of a Disk.
type diskFS struct {
	d       *Disk
	view    uint64 // Disk.views when it was handed out
	deliver func(func())
	// p and epoch, when p is set, replace deliver: completions go to that
	// incarnation's event loop as event objects, without a closure each.
	p     *Process
	epoch uint64
}

var _ env.FS = (*diskFS)(nil)

func (fs *diskFS) live() bool { return fs.view == fs.d.views }

// Create implements env.FS.
func (fs *diskFS) Create(name string) (env.File, error) {
	if !fs.live() {
		return nil, fmt.Errorf("sim disk: create %q: %w", name, env.ErrClosed)
	}
	d := fs.d
	if _, ok := d.vol[name]; ok {
		return nil, fmt.Errorf("sim disk: create %q: %w", name, env.ErrExist)
	}
	d.nextInodeID++
	ino := &diskInode{id: d.nextInodeID, name: name, dirVers: d.dirLogs(name)}
	ino.data.pool, ino.durable.pool = &d.pages, &d.pages
	d.vol[name] = ino
	d.volSnapSeqs = nil
	for _, dl := range ino.dirVers {
		dl.volEvent(ino)
	}
	i, _ := slices.BinarySearch(d.volNames, name)
	if i < len(d.volNames) {
		d.unshareVol() // the insert moves names a snapshot may see
	}
	d.volNames = slices.Insert(d.volNames, i, name)
	d.volInos = slices.Insert(d.volInos, i, ino)
	f := &diskFile{fs: fs, ino: ino, name: name}
	d.event(DiskEventCreate)
	return f, nil
}

// Open implements env.FS.
func (fs *diskFS) Open(name string) (env.File, error) {
	if !fs.live() {
		return nil, fmt.Errorf("sim disk: open %q: %w", name, env.ErrClosed)
	}
	ino, ok := fs.d.vol[name]
	if !ok {
		return nil, fmt.Errorf("sim disk: open %q: %w", name, env.ErrNotExist)
	}
	return &diskFile{fs: fs, ino: ino, name: name}, nil
}

// List implements env.FS.
func (fs *diskFS) List(prefix string) ([]string, error) {
	if !fs.live() {
		return nil, fmt.Errorf("sim disk: list %q: %w", prefix, env.ErrClosed)
	}
	var out []string
	for _, name := range fs.d.volNames {
		if len(name) >= len(prefix) && name[:len(prefix)] == prefix {
			out = append(out, name)
		}
	}
	return out, nil
}

// Remove implements env.FS.
func (fs *diskFS) Remove(name string) error {
	if !fs.live() {
		return fmt.Errorf("sim disk: remove %q: %w", name, env.ErrClosed)
	}
	ino, ok := fs.d.vol[name]
	if !ok {
		return fmt.Errorf("sim disk: remove %q: %w", name, env.ErrNotExist)
	}
	ino.removed = true
	delete(fs.d.vol, name)
	fs.d.volSnapSeqs = nil
	for _, dl := range ino.dirVers {
		dl.volEvent(nil)
	}
	if i, ok := slices.BinarySearch(fs.d.volNames, name); ok {
		fs.d.unshareVol()
		fs.d.volNames = slices.Delete(fs.d.volNames, i, i+1)
		fs.d.volInos = slices.Delete(fs.d.volInos, i, i+1)
	}
	fs.d.event(DiskEventRemove)
	return nil
}

// SyncDir implements env.FS.
func (fs *diskFS) SyncDir(done func(error)) {
	if done == nil {
		panic("sim disk: SyncDir with nil callback")
	}
	d := fs.d
	if !fs.live() {
		fs.failLater(done, fmt.Errorf("sim disk: syncdir: %w", env.ErrClosed))
		return
	}
	d.stats.DirSyncs++
	lat, err := d.drawSync("syncdir", "")
	op := d.newOp()
	if d.volSnapSeqs == nil {
		d.volSnapSeqs = make(map[*dirLog]uint64, len(d.dirVers))
		for _, dl := range d.dirVers { // order-free: fills a map
			d.volSnapSeqs[dl] = dl.volSeq
		}
	}
	n := len(d.volNames)
	d.volShared = true
	op.err, op.ns, op.seqs, op.done, op.fs = err, nsSnap{names: d.volNames[:n:n], inos: d.volInos[:n:n]}, d.volSnapSeqs, done, fs
	d.dirLastDone = d.schedule(op, max(d.dirLastDone, d.dirStallUntil), lat)
	d.dirQueue = append(d.dirQueue, op)
	d.hang(fs, op)
	d.event(DiskEventSyncDir)
}

// failLater delivers err to done from a fresh event: callbacks never run
// inside the call that registered them.
func (fs *diskFS) failLater(done func(error), err error) {
	deliver := fs.deliver
	fs.d.sched.After(0, func() { deliver(func() { done(err) }) })
}

// diskFile is an open handle.
type diskFile struct {
	fs     *diskFS
	ino    *diskInode
	name   string
	closed bool
}

var _ env.File = (*diskFile)(nil)

// check returns env.ErrClosed (wrapped) if the handle is closed, its file
// was removed, or its incarnation crashed.
func (f *diskFile) check(op string) error {
	if f.closed || f.ino.removed || !f.fs.live() {
		return fmt.Errorf("sim disk: %s %q: %w", op, f.name, env.ErrClosed)
	}
	return nil
}

// Name implements env.File.
func (f *diskFile) Name() string { return f.name }

// Size implements env.File. A handle from before a crash reports 0: the
// file it named may now hold another incarnation's content.
func (f *diskFile) Size() int64 {
	if !f.fs.live() {
		return 0
	}
	return f.ino.data.Len()
}

// ReadAt implements env.File.
func (f *diskFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("sim disk: read %q at %d: %w", f.name, off, ErrBadOffset)
	}
	if d := f.fs.d; d.failReads > 0 {
		d.failReads--
		d.stats.ReadErrors++
		d.traceEvent("disk.read_eio", off, int64(len(p)), 0, 0)
		return 0, fmt.Errorf("sim disk: read %q at %d: %w", f.name, off, env.ErrIO)
	}
	data := &f.ino.data
	if off >= data.Len() {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := data.ReadAt(p, off)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// drawWrite draws a write's fate, consuming the fault budgets in a fixed
// order (EIO budget, ENOSPC budget when noSpace is allowed, EIO draw) so a
// seed replays: how many of its n bytes are stored and its error. A failed
// write may have stored a prefix (a short write before the error), for
// ENOSPC too: write(2) fills what space is left.
func (d *Disk) drawWrite(op, name string, n int, noSpace bool) (int, error) {
	d.stats.Writes++
	var err error
	if d.failWrites > 0 {
		d.failWrites--
		err = fmt.Errorf("sim disk: %s %q: %w", op, name, env.ErrIO)
	} else if len(d.failWritesUnder) > 0 && takeBudget(&d.failWritesUnder, name, false) {
		err = fmt.Errorf("sim disk: %s %q: %w", op, name, env.ErrIO)
	} else if noSpace && d.noSpace > 0 {
		// Checked after the EIO budget and before the EIO draw, and only
		// when armed, so runs without ENOSPC draw exactly as before.
		d.noSpace--
		d.stats.NoSpaceErrors++
		err = fmt.Errorf("sim disk: %s %q: %w", op, name, env.ErrNoSpace)
		d.traceEvent("disk.enospc", int64(n), 0, 0, 0)
	} else if d.rng.Chance(d.cfg.WriteEIOProb) {
		err = fmt.Errorf("sim disk: %s %q: %w", op, name, env.ErrIO)
	}
	if err != nil {
		d.stats.WriteErrors++
		n = d.rng.IntN(n + 1)
	}
	return n, err
}

// Write implements env.File.
func (f *diskFile) Write(p []byte) (int, error) {
	if err := f.check("write"); err != nil {
		return 0, err
	}
	d := f.fs.d
	n, err := d.drawWrite("write", f.name, len(p), true)
	ino := f.ino
	off := ino.data.Len()
	ino.data.Append(p[:n])
	d.markDirty(ino, off, off+int64(n))
	d.stats.BytesWritten += int64(n)
	d.event(DiskEventWrite)
	return n, err
}

// WriteAt implements env.File: the bytes overwritten are dirty, so the
// next Sync writes them (a block a failed sync marked clean included). It
// fails as Write does (the EIO budget and draw; no ENOSPC: it allocates
// nothing), keeping a seeded prefix of p.
func (f *diskFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.check("writeat"); err != nil {
		return 0, err
	}
	ino := f.ino
	if off < 0 || off+int64(len(p)) > ino.data.Len() {
		return 0, fmt.Errorf("sim disk: writeat %q [%d, %d) (size %d): %w", f.name, off, off+int64(len(p)), ino.data.Len(), ErrBadWriteAt)
	}
	d := f.fs.d
	n, err := d.drawWrite("writeat", f.name, len(p), false)
	// Pending syncs copy their blocks from the volatile image when they
	// complete: copy out what they still read from it before it changes.
	d.materializeQueued(ino)
	ino.data.WriteAt(p[:n], off)
	d.markDirty(ino, off, off+int64(n))
	d.stats.BytesWritten += int64(n)
	d.event(DiskEventWrite)
	return n, err
}

// Truncate implements env.File.
func (f *diskFile) Truncate(size int64) error {
	if err := f.check("truncate"); err != nil {
		return err
	}
	ino := f.ino
	if size < 0 || size > ino.data.Len() {
		return fmt.Errorf("sim disk: truncate %q to %d (size %d): %w", f.name, size, ino.data.Len(), ErrBadTruncate)
	}
	f.fs.d.stats.Truncates++
	// The durable image never aliases the volatile pages in a writable way
	// (shared pages are copy-on-write), so this cannot change it; the
	// pending deltas' blocks still in the volatile image are copied out
	// first (the bytes cut may be written again).
	f.fs.d.materializeQueued(ino)
	ino.data.Truncate(size)
	f.fs.d.event(DiskEventTruncate)
	return nil
}

// Sync implements env.File.
func (f *diskFile) Sync(done func(error)) {
	if done == nil {
		panic("sim disk: Sync with nil callback")
	}
	if err := f.check("sync"); err != nil {
		f.fs.failLater(done, err)
		return
	}
	d := f.fs.d
	d.stats.Syncs++
	ino := f.ino
	lat, err := d.drawSync("sync", f.name)
	op := d.newOp()
	op.err, op.ino, op.done, op.fs, op.mode, op.name = err, ino, done, f.fs, d.cfg.FailedSync, f.name
	d.snapshot(ino, &op.delta)
	after := ino.lastDone
	if len(d.prefixStalls) > 0 {
		after = max(after, d.prefixStallUntil(f.name))
	}
	ino.lastDone = d.schedule(op, after, lat)
	ino.queue = append(ino.queue, op)
	d.hang(f.fs, op)
	d.event(DiskEventSync)
}

// Close implements env.File. Pending syncs still complete.
func (f *diskFile) Close() error {
	if f.closed || !f.fs.live() {
		return fmt.Errorf("sim disk: close %q: %w", f.name, env.ErrClosed)
	}
	f.closed = true
	return nil
}

// deltaPool recycles the buffers of sync snapshots. Every sync copies the
// blocks written since the previous one into a fresh buffer that is garbage
// as soon as the sync completes, thousands of times per simulated second;
// reusing them takes that churn off the allocator and the GC. The buffers
// are fully overwritten before use, so reuse changes no content.
type deltaPool struct {
	bufs   [poolClasses][][]byte       // by size class (bufClass)
	blocks [poolClasses][][]deltaBlock // by capacity
}

// poolClasses bounds the pooled sizes: buffers up to 2^(poolClasses-1)
// KiB and block lists up to poolClasses-1 entries; bigger ones are left to
// the GC.
const poolClasses = 8

// bufClass returns the class of a buffer of n bytes: the smallest c with
// n <= 1 KiB << c.
func bufClass(n int64) int {
	c := 0
	for n > 1<<(10+c) {
		c++
	}
	return c
}

// getBuf returns a buffer of n bytes (its content is garbage).
func (p *deltaPool) getBuf(n int64) []byte {
	c := bufClass(n)
	if c >= poolClasses {
		return make([]byte, n)
	}
	if l := p.bufs[c]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		p.bufs[c] = l[:len(l)-1]
		return b[:n]
	}
	return make([]byte, n, 1<<(10+c))
}

// putBuf takes b back (ignored unless it came from getBuf's pooled sizes).
func (p *deltaPool) putBuf(b []byte) {
	c := bufClass(int64(cap(b)))
	if c < poolClasses && cap(b) == 1<<(10+c) {
		p.bufs[c] = append(p.bufs[c], b[:0])
	}
}

// getBlocks returns a block list of length n (its content is garbage).
func (p *deltaPool) getBlocks(n int) []deltaBlock {
	if n < poolClasses {
		if l := p.blocks[n]; len(l) > 0 {
			b := l[len(l)-1]
			l[len(l)-1] = nil
			p.blocks[n] = l[:len(l)-1]
			return b[:n]
		}
	}
	return make([]deltaBlock, n)
}

// putBlocks takes a block list back, dropping its references to data.
func (p *deltaPool) putBlocks(b []deltaBlock) {
	if c := cap(b); c > 0 && c < poolClasses {
		clear(b[:c])
		p.blocks[c] = append(p.blocks[c], b[:0])
	}
}

// release takes back every buffer of a delta that is finished with and
// clears it.
func (p *deltaPool) release(delta *diskDelta) {
	p.putBlocks(delta.blocks)
	for _, b := range delta.carried {
		p.putBuf(b)
	}
	*delta = diskDelta{}
}
