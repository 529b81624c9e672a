package raftlog

import (
	"fmt"

	pb "go.etcd.io/raft/v3/raftpb"
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
		ents, err := decodeEntries(rec[1:])
		if err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrCorrupt, seq, err)
		}
		if len(ents) == 0 {
			return nil
		}
		first := ents[0].GetIndex()
		if first == 0 || first > uint64(len(im.ents))+1 {
			return fmt.Errorf("%w: record %d: entries start at %d after last index %d", ErrCorrupt, seq, first, len(im.ents))
		}
		im.ents = im.ents[:first-1]
		for _, e := range ents {
			im.ents = append(im.ents, ImageEntry{Term: e.GetTerm(), Type: e.GetType(), Data: e.GetData()})
		}
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
