package bench

import (
	"errors"
	"fmt"
	"slices"

	"walraft/core/node"
)

// ack is one acknowledged record: where the node said it is, and what it
// must hold there.
type ack struct {
	off      int64
	producer uint64
	seq      uint64
}

// fetchFunc reads records of one partition from offset off (at most maxBytes,
// at least one when any exists below the HWM). It returns the records and
// the HWM the node had.
type fetchFunc func(off int64, maxBytes int) ([]node.Record, int64, error)

// verifyFetchBytes is the MaxBytes of one verification fetch.
const verifyFetchBytes = 4 << 20

// maxLostSamples bounds how many lost records a verification describes.
const maxLostSamples = 5

// verification is the outcome of reading acknowledged records back.
type verification struct {
	verified, lost int64
	samples        []string // a few lost records, described
}

func (v *verification) lose(a ack, why string) {
	v.lost++
	if len(v.samples) < maxLostSamples {
		v.samples = append(v.samples, fmt.Sprintf("producer %d seq %d at offset %d: %s", a.producer, a.seq, a.off, why))
	}
}

// verifyPartition reads back every acknowledged record of one partition
// with fetch and checks each is, byte for byte, the record acknowledged at
// that offset. A record at or beyond the HWM counts as lost: it is not (or
// no longer) committed. acks is sorted in place.
//
// Two acknowledgements at one offset cannot both hold; the one whose bytes
// are not there is lost.
func verifyPartition(acks []ack, size int, fetch fetchFunc) (verification, error) {
	var v verification
	slices.SortFunc(acks, func(a, b ack) int {
		switch {
		case a.off < b.off:
			return -1
		case a.off > b.off:
			return 1
		}
		return 0
	})
	i := 0
	for i < len(acks) {
		if acks[i].off < 0 {
			v.lose(acks[i], "negative offset")
			i++
			continue
		}
		recs, hwm, err := fetch(acks[i].off, verifyFetchBytes)
		if err != nil && !errors.Is(err, node.ErrOffsetOutOfRange) {
			return v, fmt.Errorf("bench: verify: fetch at %d: %w", acks[i].off, err)
		}
		if err != nil || len(recs) == 0 {
			// Out of range or at the HWM: nothing from here on is
			// committed on this node.
			why := fmt.Sprintf("not below the HWM %d", hwm)
			if err != nil {
				why = err.Error()
			}
			for ; i < len(acks); i++ {
				v.lose(acks[i], why)
			}
			break
		}
		if recs[0].Offset != acks[i].off {
			return v, fmt.Errorf("bench: verify: fetch at %d returned offset %d first", acks[i].off, recs[0].Offset)
		}
		end := recs[len(recs)-1].Offset + 1
		for ; i < len(acks) && acks[i].off < end; i++ {
			a := acks[i]
			r := recs[a.off-recs[0].Offset]
			if r.Offset != a.off {
				return v, fmt.Errorf("bench: verify: fetch at %d returned a gap (offset %d at position %d)",
					recs[0].Offset, r.Offset, a.off-recs[0].Offset)
			}
			if matchRecord(r.Value, a.producer, a.seq, size) {
				v.verified++
			} else {
				v.lose(a, "another record is there")
			}
		}
	}
	return v, nil
}
