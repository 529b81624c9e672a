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
	err   error
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
	im.res, im.err, im.delta = res, nil, int64(res.First)
	if res.Next > res.First {
		// As Open: the first record fixes the offset mapping, the last
		// confirms it.
		for _, seq := range []uint64{res.First, res.Next - 1} {
			p, err := im.sc.Read(src, seq)
			var off int64
			if err == nil {
				off, _, err = decodeRecord(p)
			}
			if err == nil && seq == res.First {
				im.delta = off - int64(seq)
			} else if err == nil && off != int64(seq)+im.delta {
				err = fmt.Errorf("%w: record %d holds offset %d, want %d", ErrCorrupt, seq, off, int64(seq)+im.delta)
			}
			if err != nil {
				im.err = err
				return err
			}
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
func (im *Image) End() int64 { return int64(im.res.Next) + im.delta }

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
	got, rec, err := decodeRecord(p)
	if err == nil && got != off {
		err = fmt.Errorf("%w: durable record %d holds offset %d", ErrCorrupt, off-im.delta, got)
	}
	return rec, err
}
