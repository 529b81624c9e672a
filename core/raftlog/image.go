package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"walraft/core/reclog"
)

// Image decodes a node's durable Raft log from durable file images
// (reclog.ImageSource), read-only: the HardState and entries Open would
// recover if the node crashed now. It never writes or repairs anything. It
// is incremental: Update replays only the records added since the previous
// Update, and replays from the start only when earlier records changed (a
// torn crash, a cut, corruption). An oracle uses it to judge a node's
// messages against what it really persisted.
type Image struct {
	sc      *reclog.Scanner
	res     reclog.ScanResult
	applied uint64 // records replayed: [res.First, applied)
	hs      pb.HardState
	ents    []ImageEntry // entries from index 1
	err     error
	scratch []ImageEntry
}

// ImageEntry is one durable entry.
type ImageEntry struct {
	Term uint64
	Type pb.EntryType
	// Data aliases a buffer the Image owns; it never changes afterwards.
	Data []byte
}

// NewImage returns an Image of the log Open(fs, dir, ...) would open with
// opts.
func NewImage(dir string, opts reclog.Options) (*Image, error) {
	sc, err := reclog.NewScanner(dir, opts)
	if err != nil {
		return nil, err
	}
	// Update reads every record a Scan adds, right after the Scan.
	sc.KeepPayloads()
	return &Image{sc: sc}, nil
}

// Update brings the image up to date with src. It returns the error Open
// would fail with (damage to synced data, a record that does not parse);
// the image then holds the valid prefix before it.
func (im *Image) Update(src reclog.ImageSource) error {
	res := im.sc.Scan(src)
	if res.First != im.res.First || res.Changed < im.applied {
		im.applied, im.hs, im.ents, im.err = res.First, pb.HardState{}, im.ents[:0], nil
	}
	im.res = res
	for ; im.applied < res.Next && im.err == nil; im.applied++ {
		rec, err := im.sc.Read(src, im.applied)
		if err == nil {
			err = im.replay(im.applied, rec)
		}
		if err != nil {
			im.err = err
		}
	}
	if im.err != nil {
		return im.err
	}
	if res.Err != nil {
		return fmt.Errorf("raftlog: %w", res.Err)
	}
	return nil
}

// replay applies one record as Storage.replay does.
func (im *Image) replay(seq uint64, rec []byte) error {
	if len(rec) == 0 {
		return fmt.Errorf("%w: empty record %d", ErrCorrupt, seq)
	}
	switch rec[0] {
	case kindHardState:
		hs := &pb.HardState{}
		if err := proto.Unmarshal(rec[1:], hs); err != nil {
			return fmt.Errorf("%w: record %d: hard state: %v", ErrCorrupt, seq, err)
		}
		im.hs = pb.HardState{Term: hs.Term, Vote: hs.Vote, Commit: hs.Commit}
	case kindEntries:
		ents, first, err := decodeImageEntries(rec[1:], im.scratch[:0])
		if err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrCorrupt, seq, err)
		}
		im.scratch = ents[:0]
		if len(ents) == 0 {
			return nil
		}
		if first == 0 || first > uint64(len(im.ents))+1 {
			return fmt.Errorf("%w: record %d: entries start at %d after last index %d", ErrCorrupt, seq, first, len(im.ents))
		}
		im.ents = append(im.ents[:first-1], ents...)
	default:
		return fmt.Errorf("%w: record %d: unknown kind %q", ErrCorrupt, seq, rec[0])
	}
	return nil
}

// HardState returns the durable HardState (zero if none was saved).
func (im *Image) HardState() (term, vote, commit uint64) {
	return im.hs.GetTerm(), im.hs.GetVote(), im.hs.GetCommit()
}

// LastIndex returns the durable log's last index (0 when empty).
func (im *Image) LastIndex() uint64 { return uint64(len(im.ents)) }

// Term returns the term of durable entry i, or false if the log does not
// hold it.
func (im *Image) Term(i uint64) (uint64, bool) {
	if i == 0 || i > uint64(len(im.ents)) {
		return 0, false
	}
	return im.ents[i-1].Term, true
}

// Entry returns durable entry i, or false if the log does not hold it.
func (im *Image) Entry(i uint64) (ImageEntry, bool) {
	if i == 0 || i > uint64(len(im.ents)) {
		return ImageEntry{}, false
	}
	return im.ents[i-1], true
}

// Scan returns the underlying record scan of the last Update (whether a
// torn tail would be cut, whether Open would refuse the log).
func (im *Image) Scan() reclog.ScanResult { return im.res }

// decodeImageEntries decodes an entries record's body as decodeEntries
// does (same checks: count, lengths, contiguous indexes, no trailing
// bytes) into dst, reading only the fields an ImageEntry keeps. The Data
// slices alias b. Anything but a plain entry (unknown fields, repeated
// scalars) goes through the protobuf runtime, so the result never differs
// from decodeEntries'.
func decodeImageEntries(b []byte, dst []ImageEntry) ([]ImageEntry, uint64, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, 0, errors.New("bad entry count")
	}
	b = b[n:]
	var first, prev uint64
	for i := uint64(0); i < count; i++ {
		sz, n := binary.Uvarint(b)
		if n <= 0 || sz > uint64(len(b)-n) {
			return nil, 0, errors.New("bad entry length")
		}
		e, idx, ok := peekEntry(b[n : n+int(sz)])
		if !ok {
			pe := &pb.Entry{}
			if err := proto.Unmarshal(b[n:n+int(sz)], pe); err != nil {
				return nil, 0, err
			}
			e, idx = ImageEntry{Term: pe.GetTerm(), Type: pe.GetType(), Data: pe.GetData()}, pe.GetIndex()
		}
		if i == 0 {
			first = idx
		} else if idx != prev+1 {
			return nil, 0, errors.New("entries not contiguous")
		}
		prev = idx
		dst = append(dst, e)
		b = b[n+int(sz):]
	}
	if len(b) != 0 {
		return nil, 0, errors.New("trailing bytes")
	}
	return dst, first, nil
}

// peekEntry decodes a raftpb.Entry holding at most one each of its fields
// Type (1), Term (2), Index (3) and Data (4); ok is false for anything else.
func peekEntry(b []byte) (e ImageEntry, index uint64, ok bool) {
	var seen [5]bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num < 1 || num > 4 || seen[num] {
			return e, 0, false
		}
		seen[num] = true
		b = b[n:]
		if num == 4 {
			if typ != protowire.BytesType {
				return e, 0, false
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return e, 0, false
			}
			e.Data, b = v, b[n:]
			continue
		}
		if typ != protowire.VarintType {
			return e, 0, false
		}
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return e, 0, false
		}
		b = b[n:]
		switch num {
		case 1:
			if v >= uint64(len(entryTypes)) || !entryTypes[v] {
				return e, 0, false // larger values (none known) go to the protobuf runtime
			}
			e.Type = pb.EntryType(v)
		case 2:
			e.Term = v
		case 3:
			index = v
		}
	}
	return e, index, true
}

// entryTypes says which small values pb.EntryType knows (from its name
// map): a table lookup per entry instead of a map lookup.
var entryTypes = func() (t [16]bool) {
	for v := range pb.EntryType_name {
		if v >= 0 && int(v) < len(t) {
			t[v] = true
		}
	}
	return t
}()
