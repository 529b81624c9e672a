package scenarios

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"time"

	"walraft/core/env"
	"walraft/core/node"
	"walraft/core/raftlog"
	"walraft/core/reclog"
	"walraft/core/wal"
	"walraft/sim"
)

// Latent corruption inside the fault budget (DESIGN.md 3.10 and section 5).
//
// FaultCorrupt flips bytes of one node's synced Raft log or WAL. On a
// minority of the nodes that is in budget, and the rules are: the node
// refuses to open (a clear error wrapping ErrCorrupt; the harness then
// treats it as down by design, for good, and judges the rest of the cluster
// as usual, L1 included) or repairs itself; it never comes back with a
// silently shortened log.
//
// The spot is drawn among the bytes whose durability the log's own format
// proves (core/reclog's durable marks): a byte at log position p qualifies
// when a chunk the recovery search can locate after it (after the damaged
// chunk for damaged data, from the next block boundary for a damaged
// header) carries a durable mark above p. The rest of the synced region is
// reclog's documented blind spot (the last synced records with nothing
// written after their sync look exactly like a torn tail); it is not drawn,
// since no recovery can tell it from a torn write.
//
// The damage goes to the medium (sim.Disk.CorruptDurable). A running node's
// page cache hides it until its next crash; a node that is down when the
// fault fires has no page cache, so its next boot reads the damage.
//
// To catch a recovery that cuts at the damage and carries on, the harness
// reads the node's durable Raft state just before it corrupts it (a scratch
// copy of the durable images, opened with raftlog.Open, never disturbing
// the node), and checks every later boot of that node against it: its
// durable term and commit index never go back, and the committed entries
// keep their terms. A shortened log fails that check (reported as S11, "no
// silent shortening after restart") at the boot, before it can vote or
// serve.

// invBootShorter names the boot check's violations: a node recovered durable Raft
// state older than what was durable before (issue 11's S11).
const invBootShorter = "S11"

// corruptMark is what the harness knows of one corrupted node.
type corruptMark struct {
	at     time.Duration
	where  string // file and byte offset
	target string
	// The durable Raft state just before the corruption (ok false in
	// standalone mode or when it could not be read).
	ok           bool
	term, commit uint64
	terms        []uint64 // terms of entries 1..commit
}

// corruptSpot is a run of bytes of one segment file that may be corrupted.
type corruptSpot struct {
	file       string
	start, end int64
}

// corrupt applies a FaultCorrupt.
func (h *harness) corrupt(f Fault) {
	d := h.w.Disk(f.Node)
	rng := h.w.Streams().Stream("corrupt")
	var dirs []string
	switch f.Log {
	case CorruptRaft:
		dirs = []string{"raft"}
	case CorruptWAL:
		dirs = walDirs(h.o)
	default:
		dirs = append(walDirs(h.o), "raft")
	}
	// The chosen log first, then the others of the target, so a log that
	// has no proven spot yet does not waste the fault.
	k := rng.IntN(len(dirs))
	dirs = append(dirs[k:], dirs[:k]...)
	for _, dir := range dirs {
		spots := provenSpots(d, dir)
		total := int64(0)
		for _, s := range spots {
			total += s.end - s.start
		}
		if total == 0 {
			continue
		}
		x := rng.Int64N(total)
		for _, s := range spots {
			if x >= s.end-s.start {
				x -= s.end - s.start
				continue
			}
			off := s.start + x
			n := 1 + rng.IntN(int(min(4, s.end-off)))
			m := &corruptMark{at: h.s.Now(), target: dir, where: fmt.Sprintf("%s bytes [%d, %d)", s.file, off, off+int64(n))}
			if h.o.Nodes > 1 {
				h.readDurableRaft(f.Node, m)
			}
			d.CorruptDurable(s.file, off, n)
			h.corrupted[f.Node] = m
			// The corrupt scenario's crash is what makes the node read its
			// damaged log. A drawn kill would keep the page cache, which
			// hides the damage for good, and the node would go on acking
			// past it: then a commit that rests on it (the third node cut
			// off) has one readable copy, which S3 counts as not held by
			// a majority (pipelined-corrupt, swarm seed 54). Drawn crashes
			// of the node stay power losses until one has happened.
			if h.hidden == nil {
				h.hidden = map[uint64]bool{}
			}
			h.hidden[f.Node] = true
			h.probe("corrupt-synced-" + strings.SplitN(dir, "/", 2)[0])
			return
		}
	}
	h.probe("corrupt-no-proven-spot")
}

// walDirs lists every partition WAL's directory (node.Config.Dir is "").
func walDirs(o Options) []string {
	var out []string
	for _, t := range o.Topics {
		for p := int32(0); p < t.Partitions; p++ {
			out = append(out, fmt.Sprintf("wal/%s/%d", t.Name, p))
		}
	}
	return out
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Format constants of core/reclog (documented in its package doc).
const (
	rlBlock     = 4096
	rlSegHeader = 40
	rlChunkHdr  = 28
)

// rlChunk is a chunk found in a durable segment image.
type rlChunk struct {
	file               int // index in the log's files
	start, hdrEnd, end int64
	mark               uint64
}

// provenSpots decodes the durable images of the reclog in dir (format
// version 1: segment header, block-aligned chunks with CRC32C-protected
// headers carrying a durable mark) and returns the byte runs whose
// damage recovery can prove (see the file comment).
func provenSpots(d *sim.Disk, dir string) []corruptSpot {
	var files []string
	var base []uint64
	var chunks []rlChunk
	for _, name := range d.DurableFiles() {
		if !strings.HasPrefix(name, dir+"/") || !strings.HasSuffix(name, ".seg") {
			continue
		}
		img, _ := d.DurableImage(name)
		if len(img) < rlSegHeader || crc32.Checksum(img[:36], castagnoli) != binary.LittleEndian.Uint32(img[36:40]) {
			break // later segments cannot be trusted to be located either
		}
		fi := len(files)
		files = append(files, name)
		base = append(base, binary.LittleEndian.Uint64(img[24:32]))
		size := int64(len(img))
		for pos := int64(rlSegHeader); pos+rlChunkHdr <= size; {
			if rem := rlBlock - pos%rlBlock; rem < rlChunkHdr {
				pos += rem
				continue
			}
			hd := img[pos : pos+rlChunkHdr]
			if crc32.Checksum(hd[4:], castagnoli) != binary.LittleEndian.Uint32(hd[0:4]) {
				break
			}
			n := int64(binary.LittleEndian.Uint16(hd[8:10]))
			if pos+rlChunkHdr+n > size || crc32.Checksum(img[pos+rlChunkHdr:pos+rlChunkHdr+n], castagnoli) != binary.LittleEndian.Uint32(hd[4:8]) {
				break
			}
			chunks = append(chunks, rlChunk{file: fi, start: pos, hdrEnd: pos + rlChunkHdr, end: pos + rlChunkHdr + n,
				mark: binary.LittleEndian.Uint64(hd[20:28])})
			pos += rlChunkHdr + n
		}
	}
	// proofFrom(fi, off) is the largest mark of a chunk starting at or
	// after off in file fi, or in a later file.
	proofFrom := func(fi int, off int64) uint64 {
		var m uint64
		for _, c := range chunks {
			if c.file > fi || (c.file == fi && c.start >= off) {
				m = max(m, c.mark)
			}
		}
		return m
	}
	var out []corruptSpot
	add := func(fi int, start, end int64, proof uint64) {
		// Bytes at log position below proof qualify.
		if lim := int64(proof) - int64(base[fi]); lim > start {
			out = append(out, corruptSpot{file: files[fi], start: start, end: min(end, lim)})
		}
	}
	for fi := range files {
		add(fi, 0, rlSegHeader, proofFrom(fi, rlBlock))
	}
	// Suffix maxima keep this linear in the number of chunks.
	after := make([]uint64, len(chunks)+1)
	for i := len(chunks) - 1; i >= 0; i-- {
		after[i] = max(after[i+1], chunks[i].mark)
	}
	for i, c := range chunks {
		add(c.file, c.hdrEnd, c.end, after[i+1])
		nextBlock := (c.start/rlBlock + 1) * rlBlock
		j := i + 1
		for j < len(chunks) && chunks[j].file == c.file && chunks[j].start < nextBlock {
			j++
		}
		add(c.file, c.start, c.hdrEnd, after[j])
	}
	return out
}

// readDurableRaft fills m with node id's durable Raft state: a scratch copy
// of its durable images opened with raftlog.Open (the node is not touched).
func (h *harness) readDurableRaft(id uint64, m *corruptMark) {
	d := h.w.Disk(id)
	scratch := sim.NewDisk(sim.NewScheduler(), sim.NewStreams(1).Stream("scratch"), sim.DiskConfig{})
	fs := scratch.FS(nil)
	for _, name := range d.DurableFiles() {
		if !strings.HasPrefix(name, "raft/") {
			continue
		}
		img, _ := d.DurableImage(name)
		f, err := fs.Create(name)
		if err != nil {
			return
		}
		if _, err := f.Write(img); err != nil {
			return
		}
	}
	st, err := raftlog.Open(fs, "raft", h.ids, raftlog.Options{})
	if err != nil {
		return
	}
	defer st.Close()
	hs := st.HardState()
	m.term, m.commit = hs.GetTerm(), hs.GetCommit()
	if m.commit > 0 {
		ents, err := st.Entries(1, m.commit+1, 1<<62)
		if err != nil {
			return
		}
		for _, e := range ents {
			m.terms = append(m.terms, e.GetTerm())
		}
	}
	m.ok = true
}

// refusedCorrupt reports whether a boot error is a corrupted node refusing
// to open, as it must: the node is then down by design for the rest of the
// run. A node that was never corrupted has no business failing that way.
func (h *harness) refusedCorrupt(id uint64, err error) bool {
	if h.corrupted[id] == nil || !(errors.Is(err, reclog.ErrCorrupt) || errors.Is(err, wal.ErrCorrupt) || errors.Is(err, raftlog.ErrCorrupt)) {
		return false
	}
	if !h.dead[id] {
		h.probe("corrupt-refused")
		h.w.Emit(id, env.Event{Kind: "node.refused.corrupt"})
	}
	h.dead[id] = true
	return true
}

// checkBoot compares a corrupted node's recovered Raft state with what was
// durable before the corruption (see the file comment).
func (h *harness) checkBoot(id uint64, n *node.Node) {
	m := h.corrupted[id]
	if m == nil || !m.ok {
		return
	}
	st := n.Status()
	var pr []string
	if st.Term < m.term {
		pr = append(pr, fmt.Sprintf("term %d, durable term before was %d", st.Term, m.term))
	}
	if st.Applied < m.commit {
		pr = append(pr, fmt.Sprintf("re-applied up to index %d, durable commit index before was %d", st.Applied, m.commit))
	} else if ents, err := n.RaftEntries(1, m.commit+1); err != nil || len(ents) != len(m.terms) {
		pr = append(pr, fmt.Sprintf("committed entries 1..%d unreadable (%d read, err %v)", m.commit, len(ents), err))
	} else {
		for i, e := range ents {
			if e.GetTerm() != m.terms[i] {
				pr = append(pr, fmt.Sprintf("committed entry %d has term %d, was %d", e.GetIndex(), e.GetTerm(), m.terms[i]))
				break
			}
		}
	}
	if len(pr) > 0 {
		h.harnessViolation(invBootShorter, fmt.Sprintf("n%d came back at %v with a shorter log after its synced %s was corrupted at %v (%s) instead of refusing to open: %s",
			id, h.s.Now(), m.target, m.at, m.where, strings.Join(pr, "; ")))
	} else {
		h.probe("corrupt-boot-intact")
	}
}

// liveIDs lists the nodes not down by design, in order.
func (h *harness) liveIDs() []uint64 {
	if len(h.dead) == 0 {
		return h.ids
	}
	return slices.DeleteFunc(slices.Clone(h.ids), func(id uint64) bool { return h.dead[id] })
}
