package bench

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// makeRecord returns a new size-byte record: producer id and sequence
// number (big endian), then a filler that depends on both, so a record read
// back at the wrong offset, or a torn one, never passes matchRecord.
// Every call allocates: the node keeps a reference to the bytes (WAL batch,
// Raft proposal) long after Produce returns.
func makeRecord(producer, seq uint64, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b[0:8], producer)
	binary.BigEndian.PutUint64(b[8:16], seq)
	fill(b[HeaderSize:], producer, seq)
	return b
}

// fill writes the filler of record (producer, seq): a cheap pseudo-random
// sequence seeded by both, one 64-bit LCG step per 8 bytes (the producers
// build every record, so this must not compete with the node for CPU).
func fill(b []byte, producer, seq uint64) {
	x := fillSeed(producer, seq)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], x)
		x = fillNext(x)
	}
	if i < len(b) {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], x)
		copy(b[i:], w[:])
	}
}

func fillSeed(producer, seq uint64) uint64 {
	return producer*0x9e3779b97f4a7c15 ^ seq*0xbf58476d1ce4e5b9
}

func fillNext(x uint64) uint64 { return x*6364136223846793005 + 1442695040888963407 }

// matchRecord reports whether v is exactly the record makeRecord(producer,
// seq, size) would build. It regenerates the filler word by word, without
// allocating.
func matchRecord(v []byte, producer, seq uint64, size int) bool {
	if len(v) != size || binary.BigEndian.Uint64(v[0:8]) != producer || binary.BigEndian.Uint64(v[8:16]) != seq {
		return false
	}
	b := v[HeaderSize:]
	x := fillSeed(producer, seq)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:]) != x {
			return false
		}
		x = fillNext(x)
	}
	if i < len(b) {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], x)
		return bytes.Equal(b[i:], w[:len(b)-i])
	}
	return true
}

// Histogram bounds: 1 µs to 60 s, 3 significant digits.
const (
	histLowest  = 1
	histHighest = int64(60 * time.Second / time.Microsecond)
	histDigits  = 3
)

// newHist returns an empty latency histogram in microseconds.
func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// recordLatency adds d to h, clamped into the histogram's range.
func recordLatency(h *hdrhistogram.Histogram, d time.Duration) {
	us := int64(d / time.Microsecond)
	us = max(us, histLowest)
	us = min(us, histHighest)
	if err := h.RecordValue(us); err != nil {
		panic("bench: histogram refused a clamped value: " + err.Error())
	}
}

// Latency is a summary of a latency histogram, in milliseconds.
type Latency struct {
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func summarize(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50Ms:  ms(h.ValueAtQuantile(50)),
		P99Ms:  ms(h.ValueAtQuantile(99)),
		P999Ms: ms(h.ValueAtQuantile(99.9)),
		MaxMs:  ms(h.Max()),
	}
}
