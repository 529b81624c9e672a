package reclog

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"sort"
	"strings"

	"walraft/core/env"
)

// ImageSource is read-only access to the durable images of a set of files
// (a simulator's disk): what a crash now would leave, and what changed in
// it since an earlier look. A Scanner reads a log through it.
type ImageSource interface {
	// Version grows whenever any image or the set of names changes.
	Version() uint64
	// List returns the names starting with prefix, sorted.
	List(prefix string) []string
	// Stat returns the identity of the file behind name (it changes when
	// the name is removed and created again) and its size.
	Stat(name string) (id uint64, size int64, ok bool)
	// ChangedFrom returns the lowest byte offset of name's image that may
	// have changed after version v, or -1 if none did.
	ChangedFrom(name string, v uint64) int64
	// ReadAt copies the image's bytes at off into p and returns how many
	// (fewer at the end of the image).
	ReadAt(name string, p []byte, off int64) int
}

// ChangedNamesSource is an ImageSource that can also name the files whose
// images changed after a version. A Scanner whose source is one looks at
// those files only, instead of asking about every segment of the log: a
// log of many segments then costs what changed, not what it holds.
type ChangedNamesSource interface {
	ImageSource
	// ChangedNames appends to dst, each once and in any order, the names
	// starting with prefix whose images changed after version v (a
	// Version value), and reports true; every other name starting with
	// prefix then names the same file with the same image as at v. It
	// reports false when it cannot tell (the set of names changed after
	// v, say).
	ChangedNames(prefix string, v uint64, dst []string) ([]string, bool)
}

// ScanResult is what Open would recover from the images at the time of a
// Scan.
type ScanResult struct {
	// First and Next bound the records Open would keep: [First, Next).
	First, Next uint64
	// Changed is the first seq whose record is not the one the previous
	// Scan reported (Next when nothing changed): records [First, Changed)
	// are byte-identical to before, the previous Scan's records from
	// Changed on are gone or replaced. The first Scan reports First.
	Changed uint64
	// Err is non-nil when Open would fail: damage to data that had been
	// synced (wrapping ErrCorrupt, with the same proof Open gives) or a
	// record longer than Options.MaxRecordBytes (wrapping ErrTooLarge).
	// [First, Next) is then the valid prefix before the damage.
	Err error
	// Torn reports that Open would cut a torn tail after Next.
	Torn bool
}

// Scanner decodes a record log from durable file images without writing or
// repairing anything: it applies Open's rules (checksums, record framing,
// segment continuity, torn tail versus proven corruption) and reports the
// records Open would keep. It is incremental: a Scan re-reads only the
// bytes that changed since the previous Scan (ImageSource.ChangedFrom), so a
// growing log costs what it grew. It is not safe for concurrent use.
type Scanner struct {
	prefix string
	opts   Options
	ver    uint64
	done   bool
	segs   []*scanSeg
	res    ScanResult
	buf    [blockSize]byte
	// keep (KeepPayloads) makes a Scan copy the payload of every record it
	// parses, for Read to hand out once without reading and checking the
	// record's chunks a second time.
	keep bool
	// scans counts the Scans that looked at src.
	scans uint64
	// walked is how many of segs the last walk kept: the segments that
	// hold [res.First, res.Next), in order. clean is how many of them, from
	// the first, were whole and valid (the walk passed them), and dirty the
	// first segment a Scan since re-read or added: the next walk resumes
	// at min(clean, dirty) from the state it cached there.
	walked, clean, dirty int
	partial              []byte // keep: the payload of the record being parsed
	// allSegs: every name the last Scan listed is one of segs (then a
	// ChangedNamesSource's answer covers everything a Scan looks at).
	allSegs bool
	// shortScans counts the Scans that took scanChanged's short way.
	shortScans uint64
	// Scratch for scanChanged.
	changedNames []string
	changedSegs  []*scanSeg
	changedSizes []int64
	addedNames   []string
}

// scanSeg is one segment file as the last Scan saw it.
type scanSeg struct {
	name   string
	id     uint64 // from the name
	ino    uint64
	size   int64
	ver    uint64 // source version it was read at
	hdr    segHeader
	hdrWhy string // why the header is invalid, "" if it verified
	recs   []scanRec
	// bad is the first invalid spot, nil when the segment is valid to its
	// size.
	bad *badSpot
	// kept[i] (keep) is the payload of recs[keptFrom+i], as a Scan parsed
	// it from bytes that have not changed since; nil once Read handed it
	// out.
	kept     [][]byte
	keptFrom int
}

// scanRec is one complete, valid record of a segment.
type scanRec struct {
	start, end int64  // offset of its first chunk, end of its last
	sum        uint32 // mix of its chunks' data checksums
	n          int    // payload length
}

// NewScanner returns a Scanner for the log Open(fs, dir, opts) would open.
func NewScanner(dir string, opts Options) (*Scanner, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Scanner{prefix: dir + "/", opts: opts.withDefaults()}
	if dir == "" {
		s.prefix = ""
	}
	return s, nil
}

// KeepPayloads makes every Scan keep a copy of the payload of each record
// it parses, so that the first Read of such a record (while its bytes stay
// as they were) returns that copy instead of reading and checking its
// chunks again: for a caller that reads every new record. The results are
// the same either way.
func (s *Scanner) KeepPayloads() { s.keep = true }

// Scan brings the view up to date with src and returns it. It reads only
// what changed since the previous Scan, and nothing when src.Version did
// not change.
func (s *Scanner) Scan(src ImageSource) ScanResult {
	v := src.Version()
	if s.done && v == s.ver {
		s.res.Changed = s.res.Next
		return s.res
	}
	s.scans++
	prev, first := s.res, !s.done
	changed := uint64(1<<64 - 1)
	if !s.scanChanged(src, v, &changed) {
		s.scanAll(src, v, &changed)
	}
	s.res = s.walk(src)
	s.ver, s.done = v, true
	switch {
	case first || prev.First != s.res.First:
		changed = s.res.First
	case prev.Next < changed:
		changed = prev.Next
	}
	s.res.Changed = max(s.res.First, min(changed, s.res.Next))
	return s.res
}

// scanChanged is Scan's short way, for a ChangedNamesSource when the
// names were the segments of the previous Scan: it looks at the segments
// whose images changed since that Scan, and at new segments after the
// last one, and only at them (the others are the same files with the same
// bytes, so the long way would find nothing to re-read in them either).
// It reports false, having changed nothing, when the source cannot tell
// what changed, a changed name names another file, or a new name is not
// a segment after the last one: the long way then looks at everything.
func (s *Scanner) scanChanged(src ImageSource, v uint64, changed *uint64) bool {
	cs, ok := src.(ChangedNamesSource)
	if !ok || !s.done || !s.allSegs {
		return false
	}
	names, ok := cs.ChangedNames(s.prefix, s.ver, s.changedNames[:0])
	s.changedNames = names[:0]
	if !ok {
		return false
	}
	segs, sizes, added := s.changedSegs[:0], s.changedSizes[:0], s.addedNames[:0]
	defer func() {
		clear(segs)
		s.changedSegs, s.changedSizes, s.addedNames = segs[:0], sizes[:0], added[:0]
	}()
	for _, name := range names {
		i, found := slices.BinarySearchFunc(s.segs, name, func(g *scanSeg, n string) int { return strings.Compare(g.name, n) })
		if !found {
			added = append(added, name)
			continue
		}
		g := s.segs[i]
		ino, size, ok := src.Stat(name)
		if !ok || ino != g.ino {
			return false
		}
		s.dirty = min(s.dirty, i)
		segs, sizes = append(segs, g), append(sizes, size)
	}
	// New segments: each a new scanSeg, appended after the last one as the
	// long way would (anything else, and the long way sorts it out).
	nold := len(segs)
	slices.Sort(added)
	for k, name := range added {
		if k == 0 && len(s.segs) > 0 && name < s.segs[len(s.segs)-1].name {
			return false
		}
		id, ok := parseSegName(s.prefix, name)
		if !ok {
			return false
		}
		ino, size, ok := src.Stat(name)
		if !ok {
			return false
		}
		segs, sizes = append(segs, &scanSeg{name: name, id: id, ino: ino}), append(sizes, size)
	}
	for k, g := range segs[:nold] {
		if lo := src.ChangedFrom(g.name, g.ver); lo >= 0 || sizes[k] != g.size {
			if lo < 0 || sizes[k] < lo {
				lo = sizes[k]
			}
			s.rescan(src, g, sizes[k], lo, changed)
		}
		g.ver = v
	}
	s.dirty = min(s.dirty, len(s.segs))
	for k, g := range segs[nold:] {
		s.rescan(src, g, sizes[nold+k], segHeaderSize-1, changed)
		g.ver = v
		s.segs = append(s.segs, g)
	}
	s.shortScans++
	return true
}

// scanAll is Scan's long way: it lists the log's files and looks at each.
func (s *Scanner) scanAll(src ImageSource, v uint64, changed *uint64) {
	s.dirty = 0
	names := src.List(s.prefix)
	same := len(names) == len(s.segs)
	for i := 0; same && i < len(names); i++ {
		same = names[i] == s.segs[i].name
	}
	var old map[string]*scanSeg
	segs := s.segs
	if !same {
		old = make(map[string]*scanSeg, len(s.segs))
		for _, g := range s.segs {
			old[g.name] = g
		}
		segs = nil
	}
	for i, name := range names {
		id, ok := parseSegName(s.prefix, name)
		if !ok {
			continue
		}
		ino, size, ok := src.Stat(name)
		if !ok {
			continue
		}
		var g *scanSeg
		if same {
			g = s.segs[i]
		} else {
			g = old[name]
		}
		if g == nil || g.ino != ino {
			g = &scanSeg{name: name, id: id, ino: ino}
			s.rescan(src, g, size, segHeaderSize-1, changed)
			if same {
				// Another file under the same name: s.segs keeps the old
				// one for the comparison below.
				if &segs[0] == &s.segs[0] {
					segs = slices.Clone(segs)
				}
				segs[i] = g
			}
		} else if lo := src.ChangedFrom(name, g.ver); lo >= 0 || size != g.size {
			if lo < 0 || size < lo {
				lo = size
			}
			s.rescan(src, g, size, lo, changed)
		}
		g.ver = v
		if same {
			continue
		}
		segs = append(segs, g)
	}
	s.allSegs = len(segs) == len(names)
	// The segments must be the same files in the same order as before,
	// possibly followed by new ones; anything else renumbers or drops
	// records, and changed catches it below through the prefix walk.
	for i, g := range s.segs {
		if i >= len(segs) || segs[i] != g {
			if g.hdrWhy == "" {
				*changed = min(*changed, g.hdr.baseSeq)
			} else {
				*changed = 0
			}
			break
		}
	}
	s.segs = segs
}

// walk checks the segments in order (headers, continuity, bad spots) and
// returns the recovered prefix.
func (s *Scanner) walk(src ImageSource) ScanResult {
	var res ScanResult
	var expSeq, expPos uint64
	// Resume where the segments stopped being the same whole, valid ones
	// the last walk passed: a Scan re-reads only the last segment or two
	// of a log that holds hundreds.
	from := min(s.clean, s.dirty, len(s.segs))
	if from > 0 {
		g := s.segs[from-1]
		res.First = s.segs[0].hdr.baseSeq
		res.Next = g.hdr.baseSeq + uint64(len(g.recs))
		expSeq, expPos = res.Next, g.hdr.basePos+uint64(g.size)
	}
	s.walked, s.clean, s.dirty = len(s.segs), from, len(s.segs)
	for i := from; i < len(s.segs); i++ {
		g := s.segs[i]
		why := g.hdrWhy
		switch {
		case why != "":
		case g.hdr.id != g.id:
			why = fmt.Sprintf("segment header names segment %d", g.hdr.id)
		case i > 0 && (g.hdr.baseSeq != expSeq || g.hdr.basePos != expPos):
			why = fmt.Sprintf("segment starts at record %d position %d, previous segment ends at record %d position %d", g.hdr.baseSeq, g.hdr.basePos, expSeq, expPos)
		}
		if i == 0 && why == "" {
			res.First, res.Next = g.hdr.baseSeq, g.hdr.baseSeq
		}
		if why != "" {
			s.walked = i
			s.judge(src, i, &badSpot{file: i, off: 0, pos: expPos, why: why, next: segHeaderSize}, &res)
			return res
		}
		res.Next = g.hdr.baseSeq + uint64(len(g.recs))
		if g.bad != nil {
			s.walked = i + 1
			b := *g.bad
			b.file = i
			s.judge(src, i, &b, &res)
			return res
		}
		expSeq, expPos = res.Next, g.hdr.basePos+uint64(g.size)
		s.clean = i + 1
	}
	return res
}

// judge decides, as Open does, whether the bad spot is a torn tail or
// damage to synced data.
func (s *Scanner) judge(src ImageSource, i int, bad *badSpot, res *ScanResult) {
	if bad.tooLarge {
		res.Err = fmt.Errorf("%w: %s byte %d: record %d is longer than MaxRecordBytes %d", ErrTooLarge, s.segs[i].name, bad.cutSize, res.Next, s.opts.MaxRecordBytes)
		return
	}
	r := &recovery{l: &Log{opts: s.opts}}
	for _, g := range s.segs {
		r.files = append(r.files, &segment{id: g.id, name: g.name, f: &imageFile{src: src, name: g.name, size: g.size}})
	}
	proof, _ := r.findProof(bad)
	if proof != "" {
		res.Err = fmt.Errorf("%w: %s byte %d: %s; %s", ErrCorrupt, s.segs[i].name, bad.off, bad.why, proof)
		return
	}
	res.Torn = true
}

// rescan re-reads segment g (now size bytes) from offset lo on: it keeps
// the records that end at or before lo and scans on from the last of them.
// changed is lowered to the first seq whose record differs (a segment
// whose header changed differs from its first record on).
func (s *Scanner) rescan(src ImageSource, g *scanSeg, size, lo int64, changed *uint64) {
	g.size = size
	g.bad = nil
	keep := 0
	if lo >= segHeaderSize && g.hdrWhy == "" {
		keep = len(g.recs)
		for keep > 0 && g.recs[keep-1].end > lo {
			keep--
		}
	} else {
		// The change may reach the header (a change is known to a block:
		// a small segment's first block holds its header and records).
		// A header read back the same keeps the records for the
		// comparison below, all of them parsed again; only another header
		// renumbers them.
		oldHdr, oldWhy := g.hdr, g.hdrWhy
		hdr := s.buf[:segHeaderSize]
		g.hdrWhy = ""
		if src.ReadAt(g.name, hdr, 0) < segHeaderSize {
			g.hdrWhy = "segment header missing or short"
		} else {
			g.hdr, g.hdrWhy = decodeSegHeader(hdr)
		}
		if g.hdrWhy != "" || oldWhy != "" || g.hdr != oldHdr {
			if oldWhy == "" && len(g.recs) > 0 {
				*changed = min(*changed, oldHdr.baseSeq)
			}
			g.recs = g.recs[:0]
			if g.hdrWhy != "" {
				return
			}
		}
	}
	oldTail := slices.Clone(g.recs[keep:])
	g.recs = g.recs[:keep]
	from := int64(segHeaderSize)
	if keep > 0 {
		from = g.recs[keep-1].end
	}
	s.scanFrom(src, g, from)
	for k, r := range oldTail {
		if keep+k >= len(g.recs) || g.recs[keep+k] != r {
			*changed = min(*changed, g.hdr.baseSeq+uint64(keep+k))
			break
		}
	}
}

// scanFrom parses the chunks of g from off (a record boundary) to its size,
// appending complete records, with the rules of recovery.scanChunks (the
// same walkChunks).
func (s *Scanner) scanFrom(src ImageSource, g *scanSeg, off int64) {
	var sum uint32
	if s.keep {
		s.keepUnchanged(g)
		s.partial = s.partial[:0]
	}
	g.bad, _ = walkChunks(&imageFile{src: src, name: g.name, size: g.size}, g.name, &s.buf, g.hdr.basePos, g.hdr.baseSeq+uint64(len(g.recs)), off, g.size, s.opts.MaxRecordBytes,
		func(h chunkHeader, data []byte, recStart, end int64, recLen int) {
			sum = bits.RotateLeft32(sum, 7) ^ h.dataCRC
			if s.keep && h.typ != chunkFull {
				s.partial = append(s.partial, data...)
			}
			if h.typ == chunkFull || h.typ == chunkLast {
				g.recs = append(g.recs, scanRec{start: recStart, end: end, sum: sum, n: recLen})
				sum = 0
				if s.keep {
					if h.typ == chunkFull {
						g.kept = append(g.kept, append(make([]byte, 0, recLen), data...))
					} else {
						g.kept = append(g.kept, append(make([]byte, 0, recLen), s.partial...))
						s.partial = s.partial[:0]
					}
				}
			}
		})
}

// keepUnchanged trims g's kept payloads, before a parse from the end of
// g.recs, to the records that stay: those before len(g.recs), whose bytes
// did not change since an earlier Scan parsed them (rescan keeps only
// records wholly before the change), and that Read has not handed out.
func (s *Scanner) keepUnchanged(g *scanSeg) {
	n := len(g.recs) - g.keptFrom
	if n < 0 {
		n, g.keptFrom = 0, len(g.recs)
	}
	if n < len(g.kept) {
		clear(g.kept[n:])
		g.kept = g.kept[:n]
	}
	for len(g.kept) < n {
		g.kept = append(g.kept, nil)
	}
	j := 0
	for j < len(g.kept) && g.kept[j] == nil {
		j++
	}
	if j > 0 {
		m := copy(g.kept, g.kept[j:])
		clear(g.kept[m:])
		g.kept, g.keptFrom = g.kept[:m], g.keptFrom+j
	}
}

// ErrNotScanned: Read asked for a record outside the last Scan's [First,
// Next).
var ErrNotScanned = errors.New("reclog: record not in the scanned images")

// Read returns a copy of record seq's payload from src, as of the last Scan
// (src must not have changed since).
func (s *Scanner) Read(src ImageSource, seq uint64) ([]byte, error) {
	if seq < s.res.First || seq >= s.res.Next {
		return nil, fmt.Errorf("%w: record %d outside [%d, %d)", ErrNotScanned, seq, s.res.First, s.res.Next)
	}
	// The segments the walk kept are in seq order and contiguous: the one
	// holding seq is the last whose base is at or below it (a log of small
	// segments holds hundreds, and an image reads every record).
	segs := s.segs[:s.walked]
	if j := sort.Search(len(segs), func(j int) bool { return segs[j].hdr.baseSeq > seq }) - 1; j >= 0 {
		g := segs[j]
		base := g.hdr.baseSeq
		if seq >= base+uint64(len(g.recs)) {
			return nil, fmt.Errorf("%w: record %d", ErrNotScanned, seq)
		}
		i := int(seq - base)
		if k := i - g.keptFrom; k >= 0 && k < len(g.kept) && g.kept[k] != nil {
			// Parsed (and checked) by a Scan from the same bytes.
			out := g.kept[k]
			g.kept[k] = nil
			return out, nil
		}
		r := g.recs[i]
		out := make([]byte, 0, r.n)
		for off := r.start; off < r.end; {
			if rem := blockRemaining(off); rem < chunkHeaderSize {
				off += rem
				continue
			}
			blk := s.buf[:min(blockRemaining(off), r.end-off)]
			n := src.ReadAt(g.name, blk, off)
			_, data, cn, why, _ := decodeChunk(blk[:n])
			if why != "" {
				return nil, fmt.Errorf("%w: %s byte %d changed since the scan: %s", ErrCorrupt, g.name, off, why)
			}
			out = append(out, data...)
			off += int64(cn)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: record %d", ErrNotScanned, seq)
}

// imageFile is a read-only env.File over an ImageSource, for findProof.
type imageFile struct {
	src  ImageSource
	name string
	size int64
}

var _ env.File = (*imageFile)(nil)

func (f *imageFile) Name() string { return f.name }
func (f *imageFile) Size() int64  { return f.size }
func (f *imageFile) ReadAt(p []byte, off int64) (int, error) {
	n := f.src.ReadAt(f.name, p, off)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (f *imageFile) Write([]byte) (int, error)          { return 0, errReadOnly }
func (f *imageFile) Truncate(int64) error               { return errReadOnly }
func (f *imageFile) WriteAt([]byte, int64) (int, error) { return 0, errReadOnly }
func (f *imageFile) Sync(done func(error))              { done(errReadOnly) }
func (f *imageFile) Close() error                       { return nil }

var errReadOnly = errors.New("reclog: image is read-only")
