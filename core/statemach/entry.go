package statemach

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Format tags: the first byte of every application Raft entry. Decoding is
// decided by the tag alone, never by trying one format and falling back to
// another (the original design's flaw: a legacy entry that happened to decode
// as a batch would have been misapplied).
const (
	// TagBatch is a whole WAL batch with its records (the new format).
	TagBatch byte = 1
	// TagCanonical is one record per entry (the legacy, pre-batching format).
	TagCanonical byte = 2
)

// formatVersion is the version byte that follows the tag. Bump it when a
// field is added; decoders reject versions they do not know.
const formatVersion byte = 1

// Batch flags.
const (
	// flagMetadataOnly marks an entry that carries offsets but no records:
	// the original note's design, reachable only through the known-bad
	// variant of the same name.
	flagMetadataOnly byte = 1 << 0
)

// Errors returned by Decode.
var (
	// ErrUnknownFormat: the entry's tag or version is not one this build knows.
	ErrUnknownFormat = errors.New("statemach: unknown entry format")
	// ErrMalformed: the entry's bytes do not parse.
	ErrMalformed = errors.New("statemach: malformed entry")
)

// BatchID names one proposal uniquely across the cluster's lifetime: the
// proposing node, the term it proposed in, and its sequence number within
// that node incarnation's term. Waiters are matched by it (and by the
// entry's term and index), never by index alone.
type BatchID struct {
	Node, Term, Seq uint64
}

// IsZero reports whether the id is unset (legacy entries written without
// one).
func (id BatchID) IsZero() bool { return id == BatchID{} }

// Entry is a decoded application entry.
type Entry struct {
	Tag       byte
	ID        BatchID
	Topic     string
	Partition int32
	// Base is the offset of the first record; Count the number of records.
	Base  int64
	Count int64
	// Records holds the payloads (nil for a metadata-only entry).
	Records [][]byte
	// MetadataOnly is true for the known-bad variant's entries.
	MetadataOnly bool
}

// Last returns the offset of the entry's last record.
func (e *Entry) Last() int64 { return e.Base + e.Count - 1 }

// EncodeBatch encodes a batch entry. records must hold count payloads
// unless metadataOnly.
func EncodeBatch(id BatchID, topic string, partition int32, base int64, records [][]byte, metadataOnly bool) []byte {
	n := 2 + 1 + 3*binary.MaxVarintLen64 + binary.MaxVarintLen64 + len(topic) + 3*binary.MaxVarintLen64
	for _, r := range records {
		n += binary.MaxVarintLen64 + len(r)
	}
	b := make([]byte, 0, n)
	b = append(b, TagBatch, formatVersion)
	var flags byte
	if metadataOnly {
		flags |= flagMetadataOnly
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, id.Node)
	b = binary.AppendUvarint(b, id.Term)
	b = binary.AppendUvarint(b, id.Seq)
	b = appendBytes(b, []byte(topic))
	b = binary.AppendUvarint(b, uint64(uint32(partition)))
	b = binary.AppendUvarint(b, uint64(base))
	b = binary.AppendUvarint(b, uint64(len(records)))
	if !metadataOnly {
		for _, r := range records {
			b = appendBytes(b, r)
		}
	}
	return b
}

// EncodeCanonical encodes a legacy one-record entry. id may be zero (logs
// written by the pre-batching design carry none).
func EncodeCanonical(id BatchID, topic string, partition int32, offset int64, record []byte) []byte {
	b := make([]byte, 0, 2+len(topic)+len(record)+6*binary.MaxVarintLen64)
	b = append(b, TagCanonical, formatVersion)
	b = appendBytes(b, []byte(topic))
	b = binary.AppendUvarint(b, uint64(uint32(partition)))
	b = binary.AppendUvarint(b, uint64(offset))
	b = appendBytes(b, record)
	b = binary.AppendUvarint(b, id.Node)
	b = binary.AppendUvarint(b, id.Term)
	b = binary.AppendUvarint(b, id.Seq)
	return b
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// Decode parses an application entry. It never panics and never allocates
// more than a small multiple of len(data): every length is checked against
// the bytes that remain.
func Decode(data []byte) (Entry, error) {
	if len(data) < 2 {
		return Entry{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(data))
	}
	tag, ver := data[0], data[1]
	if tag != TagBatch && tag != TagCanonical {
		return Entry{}, fmt.Errorf("%w: tag %d", ErrUnknownFormat, tag)
	}
	if ver != formatVersion {
		return Entry{}, fmt.Errorf("%w: tag %d version %d", ErrUnknownFormat, tag, ver)
	}
	d := decoder{b: data[2:]}
	e := Entry{Tag: tag}
	if tag == TagBatch {
		flags := d.byte()
		e.MetadataOnly = flags&flagMetadataOnly != 0
		e.ID = BatchID{Node: d.uvarint(), Term: d.uvarint(), Seq: d.uvarint()}
		e.Topic = string(d.bytes())
		e.Partition = d.partition()
		e.Base = d.offset()
		count := d.uvarint()
		if d.err == nil && !e.MetadataOnly {
			// Each record takes at least one byte (its length), which
			// bounds count by the remaining input before allocating.
			if count == 0 || count > uint64(len(d.b)) {
				d.fail("record count")
			} else {
				e.Records = make([][]byte, count)
				for i := range e.Records {
					e.Records[i] = d.bytes()
				}
			}
		} else if d.err == nil && (count == 0 || count > 1<<40) {
			d.fail("record count")
		}
		e.Count = int64(count)
	} else {
		e.Topic = string(d.bytes())
		e.Partition = d.partition()
		e.Base = d.offset()
		e.Records = [][]byte{d.bytes()}
		e.Count = 1
		if len(d.b) > 0 {
			e.ID = BatchID{Node: d.uvarint(), Term: d.uvarint(), Seq: d.uvarint()}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return Entry{}, d.err
	}
	return e, nil
}

// PeekID returns the batch id of an encoded entry cheaply (used when the
// node learns the index its proposal was given). ok is false for entries
// without an id or that do not parse.
func PeekID(data []byte) (id BatchID, ok bool) {
	if len(data) < 3 || data[1] != formatVersion {
		return BatchID{}, false
	}
	switch data[0] {
	case TagBatch:
		d := decoder{b: data[3:]}
		id = BatchID{Node: d.uvarint(), Term: d.uvarint(), Seq: d.uvarint()}
		return id, d.err == nil && !id.IsZero()
	case TagCanonical:
		e, err := Decode(data)
		return e.ID, err == nil && !e.ID.IsZero()
	}
	return BatchID{}, false
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrMalformed, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length")
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) partition() int32 {
	v := d.uvarint()
	if v > 1<<31-1 {
		d.fail("partition")
		return 0
	}
	return int32(v)
}

func (d *decoder) offset() int64 {
	v := d.uvarint()
	if v > 1<<62 {
		d.fail("offset")
		return 0
	}
	return int64(v)
}
