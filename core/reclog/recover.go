package reclog

import (
	"errors"
	"fmt"
	"io"

	"walraft/core/env"
)

// Open recovers the log stored in files named dir+"/..." on fs: it reads
// every segment in order, verifies every checksum, keeps the longest valid
// prefix, cuts a torn tail (the cut is made durable before any new record
// is written over it), and reports damage to data that had been synced as
// ErrCorrupt (see the package documentation for how the two are told
// apart). Reads are synchronous; Open returns without waiting for any
// callback. An empty or missing log starts a new one.
func Open(fs env.FS, dir string, opts Options) (*Log, error) {
	return OpenWithBugs(fs, dir, opts, Bugs{})
}

// OpenWithBugs is Open with known-bad variants switched on, for the
// harness's self-test only (see Bugs).
func OpenWithBugs(fs env.FS, dir string, opts Options, bugs Bugs) (*Log, error) {
	if fs == nil {
		return nil, fmt.Errorf("%w: nil FS", ErrInvalidOptions)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	l := &Log{fs: fs, prefix: dir + "/", opts: opts.withDefaults(), nextID: 1, bugs: bugs}
	if dir == "" {
		l.prefix = ""
	}
	r := &recovery{l: l, bugs: bugs}
	if err := r.run(); err != nil {
		for _, s := range r.files {
			if s.f != nil {
				s.f.Close()
			}
		}
		return nil, fmt.Errorf("reclog: open %q: %w", dir, err)
	}
	return l, nil
}

// recovery is the state of one Open.
type recovery struct {
	l     *Log
	files []*segment // every segment file found, in id order
	buf   [blockSize]byte
	// maxMark is the largest durable mark among the chunks kept: a
	// position proven durable.
	maxMark uint64
	bugs    Bugs
}

// badSpot is where recovery found the first invalid data.
type badSpot struct {
	file int    // index in files
	off  int64  // offset in the file
	pos  uint64 // log position (for the durable-mark test)
	why  string
	// cutSize is the size the file keeps if this is a torn tail: the end
	// of its last complete record. Unused for a bad header (off == 0).
	cutSize int64
	// next is the offset in the same file where the search for a proving
	// chunk starts: right after the bad chunk when its header verified (its
	// length is genuine), else the next block boundary.
	next int64
	// tooLarge: not damage but a record longer than MaxRecordBytes (its
	// chunks verify); cutSize is the record's offset.
	tooLarge bool
}

func (r *recovery) run() error {
	l := r.l
	names, err := l.fs.List(l.prefix)
	if err != nil {
		return err
	}
	for _, name := range names {
		id, ok := parseSegName(l.prefix, name)
		if !ok {
			continue
		}
		f, err := l.fs.Open(name)
		if err != nil {
			return err
		}
		r.files = append(r.files, &segment{id: id, name: name, f: f})
		l.nextID = max(l.nextID, id+1)
	}
	bad, err := r.scan()
	if err != nil {
		return err
	}
	if bad == nil {
		if len(r.files) == 0 {
			return r.fresh(nil)
		}
		l.segs = r.files
		l.next = l.active().next()
		l.durable = r.maxMark
		if err := r.markUnsynced(); err != nil {
			return err
		}
		// Recovered bytes may still be only in a page cache (a process
		// crash keeps it): sync them before the mark claims them durable.
		l.enqueue(recoverySync())
		return nil
	}
	if proof, err := r.findProof(bad); err != nil {
		return err
	} else if proof != "" && !r.bugs.CutAtCorruption {
		return fmt.Errorf("%w: %s byte %d: %s; %s", ErrCorrupt, r.files[bad.file].name, bad.off, bad.why, proof)
	}
	return r.cutTail(bad)
}

// scan validates the segments in order and indexes their records. It
// returns the first bad spot (nil if the whole log is valid) or an I/O
// error.
func (r *recovery) scan() (*badSpot, error) {
	var expSeq, expPos uint64
	for i, s := range r.files {
		size := s.f.Size()
		hdr := r.buf[:segHeaderSize]
		why := ""
		if n, err := s.f.ReadAt(hdr, 0); n < segHeaderSize {
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("read %s: %w", s.name, err)
			}
			why = "segment header missing or short"
		}
		var h segHeader
		if why == "" {
			h, why = decodeSegHeader(hdr)
		}
		switch {
		case why != "":
		case h.id != s.id:
			why = fmt.Sprintf("segment header names segment %d", h.id)
		case i > 0 && (h.baseSeq != expSeq || h.basePos != expPos):
			why = fmt.Sprintf("segment starts at record %d position %d, previous segment ends at record %d position %d", h.baseSeq, h.basePos, expSeq, expPos)
		}
		if why != "" {
			return &badSpot{file: i, off: 0, pos: expPos, why: why, next: segHeaderSize}, nil
		}
		s.baseSeq, s.basePos = h.baseSeq, h.basePos
		bad, err := r.scanChunks(i, s, size)
		if bad != nil || err != nil {
			return bad, err
		}
		expSeq, expPos = s.next(), s.end()
	}
	return nil, nil
}

// scanChunks parses the chunks of segment s (file index i) after its
// header, filling its index. It stops at the first invalid chunk.
func (r *recovery) scanChunks(i int, s *segment, size int64) (*badSpot, error) {
	bad, err := walkChunks(s.f, s.name, &r.buf, s.basePos, s.baseSeq, segHeaderSize, size, r.l.opts.MaxRecordBytes,
		func(h chunkHeader, _ []byte, recStart, _ int64, _ int) {
			r.maxMark = max(r.maxMark, h.mark)
			if h.typ == chunkFull || h.typ == chunkLast {
				s.starts = append(s.starts, uint32(recStart))
			}
		})
	switch {
	case err != nil:
		return nil, err
	case bad == nil:
		s.size = size
		return nil, nil
	case bad.tooLarge:
		// Checksummed, so not torn: the log was written with a larger
		// limit. Cutting it would lose data; refuse instead.
		return nil, fmt.Errorf("%w: %s byte %d: record %d is longer than MaxRecordBytes %d",
			ErrTooLarge, s.name, bad.cutSize, s.next(), r.l.opts.MaxRecordBytes)
	}
	bad.file = i
	return bad, nil
}

// chunkProblem checks a chunk whose header and data verified against its
// place in the log: it must belong to record seq, continue the record in
// progress (inRecord) or start a new one, and carry a durable mark no
// further than its own log position pos. It returns "" or the reason.
func chunkProblem(h chunkHeader, seq uint64, inRecord bool, pos uint64) string {
	switch {
	case h.seq != seq:
		return fmt.Sprintf("chunk of record %d where record %d was expected", h.seq, seq)
	case inRecord && (h.typ == chunkFull || h.typ == chunkFirst):
		return "new record starts before the previous one ended"
	case !inRecord && (h.typ == chunkMiddle || h.typ == chunkLast):
		return "continuation chunk without a first chunk"
	case h.mark > pos:
		return fmt.Sprintf("durable mark %d beyond the chunk's own position %d", h.mark, pos)
	}
	return ""
}

// findProof searches everything after bad for a chunk header whose
// durable mark shows bad.pos had been synced. It returns a description of
// the proving chunk, or "" if there is none.
//
// Only genuine headers count: the search starts from positions known to
// hold one (block boundaries, the first chunk after a segment header, the
// chunk after a bad chunk whose header verified) and follows lengths from
// verified headers only, so bytes inside a payload are never taken for a
// header. A verified header is enough: its mark is what the writer knew
// when it wrote the chunk, whether or not the chunk's data survived.
func (r *recovery) findProof(bad *badSpot) (string, error) {
	for i := bad.file; i < len(r.files); i++ {
		s := r.files[i]
		size := s.f.Size()
		from := int64(segHeaderSize)
		if i == bad.file {
			from = bad.next
		}
		for b := from - from%blockSize; b < size && b <= maxFileOffset; b += blockSize {
			n, err := s.f.ReadAt(r.buf[:min(blockSize, size-b)], b)
			if err != nil && !errors.Is(err, io.EOF) {
				return "", fmt.Errorf("read %s at %d: %w", s.name, b, err)
			}
			blk := r.buf[:n]
			for off := max(b, from) - b; off < int64(n) && blockSize-off >= chunkHeaderSize; {
				h, why := decodeChunkHeader(blk[off:])
				if why != "" {
					break
				}
				if h.mark > bad.pos {
					return fmt.Sprintf("the chunk of record %d at %s byte %d was written after a sync covering position %d, past the bad spot at position %d",
						h.seq, s.name, b+off, h.mark, bad.pos), nil
				}
				off += chunkHeaderSize + int64(h.n)
			}
		}
	}
	return "", nil
}

// recoverySync returns recovery's first sync when no cut is needed. It
// holds appends until it completes, as a cut does.
//
// Recovery reads through the page cache, and after a process restart with
// the machine up that cache may hold a truncation the previous process
// issued but never saw become durable (it exited while its cut's file sync
// or directory sync was in flight): the file reads back shorter, or with
// later segments gone, while the disk still holds the old, longer content.
// Records written now would land over bytes whose old content is still
// durable, past a size and a namespace that are not, so a crash could keep
// some new blocks and the old size: old chunks would then follow the new
// ones, their seqs continuing the new ones' (records of the same size line
// up), and recovery would take the old, truncated records for records
// written after the new ones (an Append of the WAL completed by another's
// tail); or a new segment header would no longer continue the one before
// it while old chunks prove the spot synced, and Open would report
// corruption that is not there. The sync snapshots every size and the
// namespace as read, so once it completes the truncation is durable and
// writing over it is safe: the rule a cut follows, applied to a cut this
// process did not issue. The hold costs the first appends one sync's delay
// (their own sync queues behind this one anyway).
func recoverySync() *op { return &op{kind: opSync, holds: true} }

// cutTail keeps the log before bad (a torn tail) and queues the durable
// cut: later segments are removed and the bad one shrunk.
func (r *recovery) cutTail(bad *badSpot) error {
	l := r.l
	var keep []*segment
	var target *segment
	var size int64
	switch {
	case bad.off > 0:
		keep = r.files[:bad.file+1]
		target, size = r.files[bad.file], bad.cutSize
		target.size = size
	case bad.file > 0:
		// The segment's header is bad or does not continue the previous
		// segment: the previous segment is complete and stays as it is.
		keep = r.files[:bad.file]
		target = keep[len(keep)-1]
		size = target.size
	}
	remove := r.files[len(keep):]
	if len(keep) == 0 {
		// Nothing valid at all: start a fresh segment under a new name,
		// after the old files are gone.
		if err := r.fresh(remove); err != nil {
			return err
		}
		return nil
	}
	l.segs = keep
	l.next = l.active().next()
	l.durable = r.maxMark
	if err := r.markUnsynced(); err != nil {
		return err
	}
	l.enqueue(&op{kind: opCut, holds: true, remove: remove, target: target, size: size, pos: target.basePos + uint64(size)})
	return nil
}

// fresh starts an empty log in a new segment; remove are old files to
// delete first (their removal is made durable before the new segment is
// trusted with records).
func (r *recovery) fresh(remove []*segment) error {
	l := r.l
	seg := &segment{id: l.nextID, name: segName(l.prefix, l.nextID)}
	f, err := l.fs.Create(seg.name)
	if err != nil {
		return err
	}
	l.nextID++
	seg.f = f
	hdr := encodeSegHeader(segHeader{id: seg.id})
	if n, err := f.Write(hdr); err != nil || n != len(hdr) {
		if err == nil {
			err = fmt.Errorf("short write of %d bytes: %w", n, env.ErrIO)
		}
		// Best effort: the next Open would find the file and cut it anyway.
		f.Close()
		l.fs.Remove(seg.name)
		return fmt.Errorf("write %s header: %w", seg.name, err)
	}
	seg.size = segHeaderSize
	seg.dirty = true
	l.segs = []*segment{seg}
	l.nsDirty = true
	if len(remove) == 0 {
		l.enqueue(recoverySync())
		return nil
	}
	l.enqueue(&op{kind: opCut, holds: true, remove: remove, target: seg, size: segHeaderSize, pos: segHeaderSize})
	return nil
}

// markUnsynced marks the recovered segments that may hold bytes not yet
// proven durable (those ending past the largest mark) for the first sync,
// and writes those bytes again first.
//
// Writing them again is what makes that sync mean something. Recovery reads
// through the page cache, which after a process kill (the machine up) holds
// what the previous process wrote, durable or not. If an fsync of the
// previous process failed, Linux marked the pages it could not write clean
// (fsyncgate): they read back fine, but no later fsync writes them, so a
// sync alone would let this process call them durable and mark them so in
// every chunk it writes. Writing the same bytes again in place (WriteAt)
// makes them dirty pages that the first sync writes. The cost is one rewrite of the unproven tail per Open: what was
// written after the last sync that a chunk's mark records, usually the last
// batch or two.
func (r *recovery) markUnsynced() error {
	l := r.l
	for _, s := range l.segs {
		if s.end() <= l.durable {
			continue
		}
		s.dirty = true
		from := int64(0)
		if l.durable > s.basePos {
			from = int64(l.durable - s.basePos)
		}
		if r.bugs.NoRecoveryRewrite {
			continue
		}
		if err := rewriteTail(s, from); err != nil {
			return err
		}
	}
	l.nsDirty = true
	return nil
}

// rewriteTail writes the bytes [from, s.size) of segment s's file again,
// in place, with the content read back (see markUnsynced). Bytes past
// s.size (a torn tail a queued cut removes) are left alone. A failure
// leaves the content as it was: the bytes written are the bytes there.
func rewriteTail(s *segment, from int64) error {
	if from >= s.size {
		return nil
	}
	buf := make([]byte, s.size-from)
	if n, err := s.f.ReadAt(buf, from); n < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("short read of %d bytes at %d: %w", n, from, env.ErrIO)
		}
		return fmt.Errorf("rewrite %s from %d: %w", s.name, from, err)
	}
	if _, err := s.f.WriteAt(buf, from); err != nil {
		return fmt.Errorf("rewrite %s from %d: %w", s.name, from, err)
	}
	return nil
}
