package wal

import (
	"fmt"

	"walraft/core/reclog"
)

// Image decodes one partition WAL's durable state from durable file images
// (reclog.ImageSource), read-only: the offsets and records Open would
// recover if the node crashed now. It never writes or repairs anything and
// re-reads only what changed since the previous Update. An oracle uses it
// to judge an acks=1 reply against what is really on disk.
type Image struct {
	sc    *reclog.Scanner
	res   reclog.ScanResult
	delta int64 // offset = seq + delta
	known bool  // delta was read from the first record
	// next is the seq Open would end at: res.Next less a trailing Append
	// that a torn crash kept only partly (Open drops it, format 2).
	next uint64
	// recErr is the offset check's error for the current records; err the
	// last Update's.
	recErr, err error
}

// NewImage returns an Image of the WAL Open(e, dir, ...) would open with
// cfg.
func NewImage(dir string, cfg Config) (*Image, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	sc, err := reclog.NewScanner(dir, reclog.Options{SegmentBytes: cfg.SegmentBytes, MaxRecordBytes: cfg.MaxRecordBytes + recHeader})
	if err != nil {
		return nil, err
	}
	return &Image{sc: sc}, nil
}

// Update brings the image up to date with src. It returns the error Open
// would fail with (ErrCorrupt for damaged synced data or a record at the
// wrong offset); Start and End then describe the valid prefix before it.
func (im *Image) Update(src reclog.ImageSource) error {
	res := im.sc.Scan(src)
	if res.First != im.res.First || res.Changed == res.First || !im.known {
		im.delta, im.known = int64(res.First), false
	}
	changed := res.Next != im.res.Next || res.Changed < res.Next || !im.known
	im.res = res
	if changed {
		im.next = res.Next
	}
	if res.Next == res.First {
		im.recErr = nil
	}
	if res.Next > res.First && (res.Changed < res.Next || !im.known) {
		im.recErr = nil
		// As Open: the first record fixes the offset mapping, the last
		// confirms it (read again only when they may have changed).
		seqs := []uint64{res.Next - 1}
		if !im.known {
			seqs = []uint64{res.First, res.Next - 1}
		}
		for _, seq := range seqs {
			p, err := im.sc.Read(src, seq)
			var off int64
			if err == nil {
				off, _, _, err = decodeRecord(p)
			}
			if err == nil && !im.known {
				im.delta, im.known = off-int64(seq), true
			} else if err == nil && off != int64(seq)+im.delta {
				err = fmt.Errorf("%w: record %d holds offset %d, want %d", ErrCorrupt, seq, off, int64(seq)+im.delta)
			}
			if err != nil {
				im.recErr = err
				break
			}
		}
	}
	im.err = im.recErr
	if im.err != nil {
		return im.err
	}
	if changed && res.Next > res.First {
		if im.next, im.err = im.appendStart(src); im.err != nil {
			return im.err
		}
	}
	if res.Err != nil {
		im.err = fmt.Errorf("%w: %w", ErrCorrupt, res.Err)
		return im.err
	}
	return nil
}

// Start returns the first durable offset.
func (im *Image) Start() int64 { return int64(im.res.First) + im.delta }

// End returns the durable end: one past the last offset a crash now would
// keep.
func (im *Image) End() int64 { return int64(im.next) + im.delta }

// appendStart is wal.appendStart on the image: where the Append holding the
// last durable record starts, or res.Next when that record closes its
// Append.
func (im *Image) appendStart(src reclog.ImageSource) (uint64, error) {
	seq := im.res.Next
	for seq > im.res.First {
		p, err := im.sc.Read(src, seq-1)
		var rest uint32
		if err == nil {
			_, rest, _, err = decodeRecord(p)
		}
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if rest == 0 {
			return seq, nil
		}
		seq--
	}
	return seq, nil
}

// Record returns the durable record at offset off. src must be the source
// of the last Update, unchanged since.
func (im *Image) Record(src reclog.ImageSource, off int64) ([]byte, error) {
	if off < im.Start() || off >= im.End() {
		return nil, fmt.Errorf("%w: offset %d outside the durable [%d, %d)", ErrOutOfRange, off, im.Start(), im.End())
	}
	p, err := im.sc.Read(src, uint64(off-im.delta))
	if err != nil {
		return nil, err
	}
	got, _, rec, err := decodeRecord(p)
	if err == nil && got != off {
		err = fmt.Errorf("%w: durable record %d holds offset %d", ErrCorrupt, off-im.delta, got)
	}
	return rec, err
}
