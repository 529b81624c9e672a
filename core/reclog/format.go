package reclog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// Format constants (see the package documentation for the byte layout).
const (
	// blockSize is the resynchronisation unit: chunks never cross a block
	// boundary, so every block starts with a chunk header written by this
	// package (or is past the end of the segment's data).
	blockSize = 4096
	// segHeaderSize is the size of the header at the start of a segment.
	segHeaderSize = 40
	// chunkHeaderSize is the size of a chunk header.
	chunkHeaderSize = 28
	// maxChunkData is the most data one chunk carries (a whole block minus
	// its header).
	maxChunkData = blockSize - chunkHeaderSize
	// formatVersion is written in every segment and chunk header.
	formatVersion = 1
	// segMagic starts every segment file.
	segMagic = "WRLG"
	// segSuffix ends every segment file name; the name before it is the
	// segment id in segIDDigits decimal digits, so names sort by id.
	segSuffix   = ".seg"
	segIDDigits = 20
	// maxFileOffset bounds offsets inside a segment: the index keeps them as
	// uint32. Options keep real segments far below it; recovery treats data
	// beyond it as bad.
	maxFileOffset = 1<<32 - 1
)

// Chunk types. A record is one full chunk, or a first chunk, any number of
// middle chunks and a last chunk, contiguous in one segment.
const (
	chunkFull   byte = 1
	chunkFirst  byte = 2
	chunkMiddle byte = 3
	chunkLast   byte = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segHeader is the decoded header of a segment file.
type segHeader struct {
	id      uint64 // must match the file name
	baseSeq uint64 // seq of the segment's first record
	basePos uint64 // log position of the segment's byte 0
}

// encodeSegHeader returns the 40 header bytes of a segment.
func encodeSegHeader(h segHeader) []byte {
	b := make([]byte, segHeaderSize)
	copy(b[0:4], segMagic)
	b[4] = formatVersion
	binary.LittleEndian.PutUint64(b[8:16], h.id)
	binary.LittleEndian.PutUint64(b[16:24], h.baseSeq)
	binary.LittleEndian.PutUint64(b[24:32], h.basePos)
	binary.LittleEndian.PutUint32(b[32:36], blockSize)
	binary.LittleEndian.PutUint32(b[36:40], crc32.Checksum(b[0:36], castagnoli))
	return b
}

// decodeSegHeader parses a segment header. It returns a reason when the
// bytes are not a valid header of this format version.
func decodeSegHeader(b []byte) (segHeader, string) {
	if len(b) < segHeaderSize {
		return segHeader{}, "short segment header"
	}
	if crc32.Checksum(b[0:36], castagnoli) != binary.LittleEndian.Uint32(b[36:40]) {
		return segHeader{}, "segment header checksum mismatch"
	}
	switch {
	case string(b[0:4]) != segMagic:
		return segHeader{}, "bad segment magic"
	case b[4] != formatVersion:
		return segHeader{}, "unknown segment format version " + strconv.Itoa(int(b[4]))
	case b[5] != 0 || b[6] != 0 || b[7] != 0:
		return segHeader{}, "non-zero reserved bytes in segment header"
	case binary.LittleEndian.Uint32(b[32:36]) != blockSize:
		return segHeader{}, "unsupported block size " + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b[32:36])), 10)
	}
	return segHeader{
		id:      binary.LittleEndian.Uint64(b[8:16]),
		baseSeq: binary.LittleEndian.Uint64(b[16:24]),
		basePos: binary.LittleEndian.Uint64(b[24:32]),
	}, ""
}

// chunkHeader is a decoded chunk header.
type chunkHeader struct {
	dataCRC uint32
	n       int // data length
	typ     byte
	seq     uint64
	mark    uint64
}

// putChunk appends one chunk (header and data) to dst.
func putChunk(dst []byte, typ byte, seq, mark uint64, data []byte) []byte {
	if len(data) > maxChunkData {
		panic(fmt.Sprintf("reclog: chunk of %d bytes exceeds %d", len(data), maxChunkData))
	}
	start := len(dst)
	dst = append(dst, make([]byte, chunkHeaderSize)...)
	h := dst[start:]
	binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(data, castagnoli))
	binary.LittleEndian.PutUint16(h[8:10], uint16(len(data)))
	h[10] = typ
	h[11] = formatVersion
	binary.LittleEndian.PutUint64(h[12:20], seq)
	binary.LittleEndian.PutUint64(h[20:28], mark)
	binary.LittleEndian.PutUint32(h[0:4], crc32.Checksum(h[4:chunkHeaderSize], castagnoli))
	return append(dst, data...)
}

// decodeChunkHeader parses and verifies a chunk header on its own (its
// checksum, type, version and length bound). A header that verifies was
// written by this package, so its length can be trusted to find the next
// chunk even when the chunk's data is damaged.
func decodeChunkHeader(b []byte) (chunkHeader, string) {
	if len(b) < chunkHeaderSize {
		return chunkHeader{}, "short chunk header"
	}
	if crc32.Checksum(b[4:chunkHeaderSize], castagnoli) != binary.LittleEndian.Uint32(b[0:4]) {
		return chunkHeader{}, "chunk header checksum mismatch"
	}
	h := chunkHeader{
		dataCRC: binary.LittleEndian.Uint32(b[4:8]),
		n:       int(binary.LittleEndian.Uint16(b[8:10])),
		typ:     b[10],
		seq:     binary.LittleEndian.Uint64(b[12:20]),
		mark:    binary.LittleEndian.Uint64(b[20:28]),
	}
	switch {
	case h.typ < chunkFull || h.typ > chunkLast:
		return h, "bad chunk type " + strconv.Itoa(int(h.typ))
	case b[11] != formatVersion:
		return h, "unknown chunk format version " + strconv.Itoa(int(b[11]))
	case h.n > maxChunkData:
		return h, "chunk length " + strconv.Itoa(h.n) + " exceeds a block"
	}
	return h, ""
}

// decodeChunk parses and verifies the chunk at the start of b, which must
// not extend past the end of the chunk's block. It returns the header, the
// data (aliasing b) and the number of bytes the chunk occupies, or a reason.
// headerOK reports whether the header verified on its own (then n is the
// chunk's true size even if the data is damaged).
func decodeChunk(b []byte) (h chunkHeader, data []byte, n int, why string, headerOK bool) {
	h, why = decodeChunkHeader(b)
	if why != "" {
		return h, nil, 0, why, false
	}
	n = chunkHeaderSize + h.n
	if n > len(b) {
		return h, nil, n, "chunk of " + strconv.Itoa(h.n) + " bytes runs past the block or file end", true
	}
	if crc32.Checksum(b[chunkHeaderSize:n], castagnoli) != h.dataCRC {
		return h, nil, n, "chunk data checksum mismatch", true
	}
	return h, b[chunkHeaderSize:n], n, "", true
}

// blockRemaining returns the bytes from off to the end of its block.
func blockRemaining(off int64) int64 { return blockSize - off%blockSize }

// framedLen returns how many bytes frame appends for an n-byte payload
// written at file offset off (padding included).
func framedLen(off int64, n int) int64 {
	start := off
	first := true
	for first || n > 0 {
		if rem := blockRemaining(off); rem < chunkHeaderSize {
			off += rem
		}
		c := min(int64(n), blockRemaining(off)-chunkHeaderSize)
		off += chunkHeaderSize + c
		n -= int(c)
		first = false
	}
	return off - start
}

// frame appends the chunks of one record to dst, which is written at file
// offset off (so dst's first byte lands at off). It returns dst and the
// file offset of the record's first chunk (after any block padding).
func frame(dst []byte, off int64, seq, mark uint64, payload []byte) ([]byte, int64) {
	first := int64(-1)
	rest := payload
	for first < 0 || len(rest) > 0 {
		if rem := blockRemaining(off); rem < chunkHeaderSize {
			// Too little room for a header: zero padding to the block end.
			dst = append(dst, make([]byte, rem)...)
			off += rem
		}
		c := min(int64(len(rest)), blockRemaining(off)-chunkHeaderSize)
		var typ byte
		last := int(c) == len(rest)
		switch {
		case first < 0 && last:
			typ = chunkFull
		case first < 0:
			typ = chunkFirst
		case last:
			typ = chunkLast
		default:
			typ = chunkMiddle
		}
		if first < 0 {
			first = off
		}
		dst = putChunk(dst, typ, seq, mark, rest[:c])
		rest = rest[c:]
		off += chunkHeaderSize + c
	}
	return dst, first
}

// segName returns the file name of segment id under prefix.
func segName(prefix string, id uint64) string {
	s := strconv.FormatUint(id, 10)
	return prefix + strings.Repeat("0", segIDDigits-len(s)) + s + segSuffix
}

// parseSegName returns the id of a segment file name under prefix; ok is
// false for any other name (which the log ignores).
func parseSegName(prefix, name string) (uint64, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	digits, ok := strings.CutSuffix(rest, segSuffix)
	if !ok || len(digits) != segIDDigits {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return id, true
}
