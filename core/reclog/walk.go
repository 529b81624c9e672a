package reclog

import (
	"errors"
	"fmt"
	"io"
)

// walkChunks parses the chunks of one segment file, from off (a record
// boundary, where record seq starts) to size, with the rules that Open
// (recovery.scanChunks) and the Scanner (Scanner.scanFrom) both apply: one
// copy, so the two keep the same records and stop at the same bad spot by
// construction (the proof search after a bad spot, findProof, is shared
// too).
//
// f reads the file named name (a short read returns io.EOF; any other
// error is returned, wrapped with the name and offset), buf holds one
// block, basePos is the log position of the file's byte 0 and maxRec is
// Options.MaxRecordBytes. chunk is called for
// every chunk that verifies, in order, with its header, its data (which
// aliases buf: valid during the call only), the offset of its record's
// first chunk, the offset after the chunk and the record's length so far;
// the record is complete when h.typ is chunkFull or chunkLast.
//
// It returns the first invalid spot (its file index left 0 for the caller
// to set), or nil when the segment is valid to its size. A record longer
// than maxRec is a spot with tooLarge set: its chunks verify, so it is not
// torn, and the caller reports ErrTooLarge.
func walkChunks(f io.ReaderAt, name string, buf *[blockSize]byte, basePos, seq uint64, off, size int64, maxRec int,
	chunk func(h chunkHeader, data []byte, recStart, end int64, recLen int)) (*badSpot, error) {
	recStart := off // offset of the first chunk of the record being read
	inRecord := false
	recLen := 0
	// bad reports the spot at off; n > 0 is the size of the chunk there
	// when its header verified.
	bad := func(why string, n int) *badSpot {
		next := off + blockRemaining(off)
		if n > 0 && off+int64(n) <= next {
			next = off + int64(n)
		}
		return &badSpot{off: off, pos: basePos + uint64(off), why: why, cutSize: recStart, next: next}
	}
	blockStart, blockEnd := int64(-1), int64(0) // block held in buf
	for {
		if rem := blockRemaining(off); rem < chunkHeaderSize {
			if inRecord {
				return bad("record continues into block padding", 0), nil
			}
			if off+rem >= size {
				// The file ends in padding: the next record (written with
				// the padding) is missing; this is a record boundary.
				return nil, nil
			}
			off += rem
		}
		if !inRecord {
			recStart = off
		}
		if off >= size {
			if inRecord {
				return bad("segment ends inside a record", 0), nil
			}
			return nil, nil
		}
		if off+chunkHeaderSize > maxFileOffset {
			return bad("segment larger than the index can address", 0), nil
		}
		if b := off - off%blockSize; b != blockStart {
			n, err := f.ReadAt(buf[:min(blockSize, size-b)], b)
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("read %s at %d: %w", name, b, err)
			}
			blockStart, blockEnd = b, b+int64(n)
		}
		if off >= blockEnd {
			return bad("file shorter than its size", 0), nil
		}
		h, data, n, why, headerOK := decodeChunk(buf[off-blockStart : blockEnd-blockStart])
		if why == "" {
			why = chunkProblem(h, seq, inRecord, basePos+uint64(off))
		}
		if why != "" {
			if !headerOK {
				n = 0
			}
			return bad(why, n), nil
		}
		recLen += len(data)
		if recLen > maxRec {
			b := bad("record longer than MaxRecordBytes", 0)
			b.tooLarge = true
			return b, nil
		}
		off += int64(n)
		chunk(h, data, recStart, off, recLen)
		switch h.typ {
		case chunkFull, chunkLast:
			seq++
			inRecord, recLen = false, 0
		default:
			inRecord = true
		}
	}
}
