// Package raftlog is walraft's durable Raft storage: HardState and entries
// kept in a reclog record log on the node's disk, rebuilt on restart, and
// served to etcd raft through the raft.Storage interface.
//
// Record format (one reclog record each, first byte a kind tag):
//
//	'E' uvarint count, then count × (uvarint len, raftpb.Entry bytes)
//	    entries appended by one Ready; an entry at index i replaces every
//	    entry at index >= i that an earlier record held (Raft's log overwrite)
//	'H' raftpb.HardState bytes
//
// Replay applies the records in order. Membership is static and comes from
// the node's configuration (InitialState returns it), so the log holds no
// configuration changes. The in-memory copy of the entries is a
// raft.MemoryStorage; compaction (snapshots) is future work, and First()
// stays 1.
package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"walraft/core/env"
	"walraft/core/reclog"
)

// ErrCorrupt: a record does not parse (its checksum verified, so this is a
// format error, not a torn write).
var ErrCorrupt = errors.New("raftlog: corrupt record")

const (
	kindEntries   byte = 'E'
	kindHardState byte = 'H'
)

// Options configure the storage.
type Options struct {
	// Log configures the underlying record log.
	Log reclog.Options
	// InMemory is the known-bad variant "non-durable Raft log": nothing is
	// written to disk, so a restart starts from an empty log.
	InMemory bool
	// DropLastRecord is the known-bad variant "Raft log recovery drops its
	// last record": Open replays the records before the last one (an
	// off-by-one in the replay bound), so a restart forgets the last
	// HardState or entries it had synced, and acknowledged.
	DropLastRecord bool
	// CutAtCorruption is the known-bad variant "recovery cuts the log at
	// the first bad record and carries on" (reclog.Bugs).
	CutAtCorruption bool
	// NoRecoveryRewrite: the known-bad recovery that only syncs what it
	// read back (reclog.Bugs.NoRecoveryRewrite).
	NoRecoveryRewrite bool
}

// Storage is durable Raft storage. It implements raft.Storage.
type Storage struct {
	*raft.MemoryStorage
	log       *reclog.Log // nil when InMemory
	conf      *pb.ConfState
	hs        *pb.HardState
	dirty     bool // records appended since the last Sync call
	recovered int  // records replayed at Open
	maxRecord int  // the log's record limit: Save splits entries to fit
	// recovering until the log's recovery sync completes (see Recovering);
	// onRecovered is told then.
	recovering  bool
	onRecovered func(error)
	// scratch is Save's encoding buffer, reused from one Save to the next:
	// the record log copies what it is handed (reclog.Log.AppendBatch).
	scratch []byte
}

// maxScratch bounds the encoding buffer Save keeps for the next call.
const maxScratch = 4 << 20

// Open recovers the storage from files under dir on fs. voters is the static
// membership.
func Open(fs env.FS, dir string, voters []uint64, opts Options) (*Storage, error) {
	s := &Storage{MemoryStorage: raft.NewMemoryStorage(), conf: &pb.ConfState{Voters: append([]uint64(nil), voters...)},
		hs: &pb.HardState{}, maxRecord: opts.Log.MaxRecordBytes}
	if s.maxRecord == 0 {
		s.maxRecord = reclog.DefaultMaxRecordBytes
	}
	if opts.InMemory {
		return s, nil
	}
	l, err := reclog.OpenWithBugs(fs, dir, opts.Log, reclog.Bugs{CutAtCorruption: opts.CutAtCorruption, NoRecoveryRewrite: opts.NoRecoveryRewrite})
	if err != nil {
		return nil, fmt.Errorf("raftlog: open %s: %w", dir, err)
	}
	s.log = l
	end := l.Next() // replay records [First, end)
	if opts.DropLastRecord && end > l.First() {
		end--
	}
	err = l.Scan(l.First(), func(seq uint64, rec []byte) error {
		if seq >= end {
			return nil
		}
		s.recovered++
		return s.replay(seq, rec)
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	s.recovering = true
	l.AfterQueued(func(err error) {
		s.recovering = false
		if s.onRecovered != nil {
			s.onRecovered(err)
		}
	})
	return s, nil
}

// Recovering reports whether what Open read back still waits for the log's
// first sync: until then it may be only in a page cache (a process killed
// with its machine up), and nothing in it may be acknowledged or applied.
// Never true for an InMemory storage.
func (s *Storage) Recovering() bool { return s.recovering }

// OnRecovered registers f to be called once, from the log's own event,
// when recovery's first sync completes: with nil, or the error that
// stopped the log. Not called if recovery has ended already (check
// Recovering first). Call it right after Open.
func (s *Storage) OnRecovered(f func(error)) { s.onRecovered = f }

func (s *Storage) replay(seq uint64, rec []byte) error {
	if len(rec) == 0 {
		return fmt.Errorf("%w: empty record %d", ErrCorrupt, seq)
	}
	switch rec[0] {
	case kindHardState:
		hs := &pb.HardState{}
		if err := proto.Unmarshal(rec[1:], hs); err != nil {
			return fmt.Errorf("%w: record %d: hard state: %v", ErrCorrupt, seq, err)
		}
		s.hs = hs
		return s.MemoryStorage.SetHardState(hs)
	case kindEntries:
		ents, err := decodeEntries(rec[1:])
		if err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrCorrupt, seq, err)
		}
		if len(ents) > 0 {
			if last, _ := s.MemoryStorage.LastIndex(); ents[0].GetIndex() > last+1 {
				return fmt.Errorf("%w: record %d: entries start at %d after last index %d", ErrCorrupt, seq, ents[0].GetIndex(), last)
			}
		}
		return s.MemoryStorage.Append(ents)
	default:
		return fmt.Errorf("%w: record %d: unknown kind %q", ErrCorrupt, seq, rec[0])
	}
}

// InitialState implements raft.Storage with the static membership.
func (s *Storage) InitialState() (*pb.HardState, *pb.ConfState, error) {
	return proto.Clone(s.hs).(*pb.HardState), proto.Clone(s.conf).(*pb.ConfState), nil
}

// HardState returns the last HardState saved.
func (s *Storage) HardState() *pb.HardState { return s.hs }

// Recovered returns how many records Open replayed.
func (s *Storage) Recovered() int { return s.recovered }

// Save appends a Ready's entries and HardState (either may be empty) to the
// log (volatile until Sync) and to the in-memory copy raft reads.
func (s *Storage) Save(hs *pb.HardState, ents []*pb.Entry) error {
	if len(ents) > 0 {
		if s.log != nil {
			// One record per run of entries that fits the record limit: a
			// node that was cut off or stalled receives its backlog in one
			// Ready, which can exceed any single record. Replay appends the
			// runs in order; a crash that keeps only a prefix of them loses
			// only unsynced entries, as for any tail.
			sizes := entrySizes(ents)
			i := 0
			for _, run := range splitEntries(ents, sizes, s.maxRecord) {
				b := encodeEntries(s.scratch[:0], run, sizes[i:i+len(run)])
				if cap(b) <= maxScratch {
					s.scratch = b[:0]
				}
				if _, err := s.log.Append(b); err != nil {
					return fmt.Errorf("raftlog: append entries: %w", err)
				}
				i += len(run)
			}
			s.dirty = true
		}
		if err := s.MemoryStorage.Append(ents); err != nil {
			return fmt.Errorf("raftlog: memory append: %w", err)
		}
	}
	if hs != nil && !raft.IsEmptyHardState(hs) && !isHardStateEqual(hs, s.hs) {
		hs = proto.Clone(hs).(*pb.HardState)
		if s.log != nil {
			b, err := marshal.Marshal(hs)
			if err != nil {
				return fmt.Errorf("raftlog: marshal hard state: %w", err)
			}
			if _, err := s.log.Append(append([]byte{kindHardState}, b...)); err != nil {
				return fmt.Errorf("raftlog: append hard state: %w", err)
			}
			s.dirty = true
		}
		s.hs = hs
		if err := s.MemoryStorage.SetHardState(hs); err != nil {
			return err
		}
	}
	return nil
}

// Dirty reports whether records were saved since the last Sync.
func (s *Storage) Dirty() bool { return s.dirty }

// Sync makes everything saved so far durable, then calls done. With nothing
// to sync (or in memory) done still runs later, through the log.
func (s *Storage) Sync(done func(error)) {
	s.dirty = false
	if s.log == nil {
		done(nil)
		return
	}
	s.log.Sync(done)
}

// Err returns the log's fail-stop error, if any.
func (s *Storage) Err() error {
	if s.log == nil {
		return nil
	}
	return s.log.Err()
}

// Close closes the log.
func (s *Storage) Close() error {
	if s.log == nil {
		return nil
	}
	return s.log.Close()
}

func isHardStateEqual(a, b *pb.HardState) bool {
	return a.GetTerm() == b.GetTerm() && a.GetVote() == b.GetVote() && a.GetCommit() == b.GetCommit()
}

// marshal encodes deterministically: the bytes reach the disk, and a seed
// must write the same bytes every time.
var marshal = proto.MarshalOptions{Deterministic: true}

// marshalSized is marshal for an entry whose size entrySizes just computed:
// protobuf then reuses the size it cached instead of walking the entry
// again (the bytes are the same).
var marshalSized = proto.MarshalOptions{Deterministic: true, UseCachedSize: true}

// entrySizes returns the encoded size of each entry, computed once for
// both splitEntries and encodeEntries (a size walks the whole entry).
func entrySizes(ents []*pb.Entry) []int {
	sizes := make([]int, len(ents))
	for i, e := range ents {
		sizes[i] = marshal.Size(e)
	}
	return sizes
}

// splitEntries cuts ents (of the given sizes) into runs whose encoding (see
// encodeEntries) fits in limit bytes; an entry that alone exceeds it is a
// run of its own (and the append fails with reclog.ErrTooLarge).
func splitEntries(ents []*pb.Entry, sizes []int, limit int) [][]*pb.Entry {
	var runs [][]*pb.Entry
	start, size := 0, 1+binary.MaxVarintLen64
	for i := range ents {
		n := binary.MaxVarintLen64 + sizes[i]
		if i > start && size+n > limit {
			runs = append(runs, ents[start:i])
			start, size = i, 1+binary.MaxVarintLen64
		}
		size += n
	}
	return append(runs, ents[start:])
}

// encodeEntries appends the encoding of ents, whose sizes entrySizes
// computed just before (nothing may change an entry in between: its cached
// size is used), to b[:0], growing it if needed.
func encodeEntries(b []byte, ents []*pb.Entry, sizes []int) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, sz := range sizes {
		n += binary.MaxVarintLen64 + sz
	}
	if cap(b) < n {
		b = make([]byte, 0, n)
	}
	b = append(b[:0], kindEntries)
	b = binary.AppendUvarint(b, uint64(len(ents)))
	for i, e := range ents {
		b = binary.AppendUvarint(b, uint64(sizes[i]))
		var err error
		b, err = marshalSized.MarshalAppend(b, e)
		if err != nil {
			panic(fmt.Sprintf("raftlog: marshal entry %d: %v", e.GetIndex(), err))
		}
	}
	return b
}

func decodeEntries(b []byte) ([]*pb.Entry, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, errors.New("bad entry count")
	}
	b = b[n:]
	ents := make([]*pb.Entry, 0, count)
	for i := uint64(0); i < count; i++ {
		sz, n := binary.Uvarint(b)
		if n <= 0 || sz > uint64(len(b)-n) {
			return nil, errors.New("bad entry length")
		}
		e := &pb.Entry{}
		if err := proto.Unmarshal(b[n:n+int(sz)], e); err != nil {
			return nil, err
		}
		if i > 0 && e.GetIndex() != ents[i-1].GetIndex()+1 {
			return nil, errors.New("entries not contiguous")
		}
		ents = append(ents, e)
		b = b[n+int(sz):]
	}
	if len(b) != 0 {
		return nil, errors.New("trailing bytes")
	}
	return ents, nil
}
