package reclog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"walraft/core/env"
	"walraft/sim"
)

// seeds returns how many seeds a randomized test runs: n by default, more
// with RECLOG_SEEDS.
func seeds(n int) int {
	if v, err := strconv.Atoi(os.Getenv("RECLOG_SEEDS")); err == nil && v > 0 {
		return v
	}
	return n
}

func TestFramingRoundTrip(t *testing.T) {
	for _, off := range []int64{segHeaderSize, blockSize - chunkHeaderSize - 1, blockSize - chunkHeaderSize, blockSize - 5, blockSize, 3*blockSize + 100} {
		for _, n := range []int{0, 1, 100, maxChunkData - 1, maxChunkData, maxChunkData + 1, 3*blockSize + 7} {
			p := payload(1, 7, n)
			buf, first := frame(nil, off, 7, 3, p)
			if int64(len(buf)) != framedLen(off, n) {
				t.Fatalf("off %d n %d: framed %d bytes, framedLen says %d", off, n, len(buf), framedLen(off, n))
			}
			// Parse it back the way Read does.
			var got []byte
			pos := first
			for {
				if pos+chunkHeaderSize > off+int64(len(buf)) {
					t.Fatalf("off %d n %d: ran out of chunks", off, n)
				}
				lim := min(off+int64(len(buf)), pos+blockRemaining(pos))
				h, data, cn, why, _ := decodeChunk(buf[pos-off : lim-off])
				if why != "" {
					t.Fatalf("off %d n %d: chunk at %d: %s", off, n, pos, why)
				}
				if h.seq != 7 || h.mark != 3 {
					t.Fatalf("off %d n %d: chunk header %+v", off, n, h)
				}
				got = append(got, data...)
				pos += int64(cn)
				if h.typ == chunkFull || h.typ == chunkLast {
					break
				}
				if pos%blockSize != 0 {
					t.Fatalf("off %d n %d: non-final chunk ends at %d, not a block boundary", off, n, pos)
				}
			}
			if !bytes.Equal(got, p) {
				t.Fatalf("off %d n %d: payload mismatch", off, n)
			}
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		o  Options
		ok bool
	}{
		{Options{}, true},
		{Options{SegmentBytes: MinSegmentBytes, MaxRecordBytes: 1}, true},
		{Options{SegmentBytes: MinSegmentBytes - 1}, false},
		{Options{SegmentBytes: MaxSegmentBytes + 1}, false},
		{Options{SegmentBytes: -1}, false},
		{Options{MaxRecordBytes: -1}, false},
		{Options{MaxRecordBytes: MaxMaxRecordBytes + 1}, false},
	}
	for _, tt := range tests {
		err := tt.o.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidOptions)) {
			t.Errorf("%+v.Validate() = %v, want ok=%v", tt.o, err, tt.ok)
		}
	}
}

// sizes draws a record size: mostly small, sometimes spanning blocks.
func sizes(r *sim.Rand) int {
	switch r.IntN(10) {
	case 0:
		return r.IntN(12)
	case 1, 2:
		return 4000 + r.IntN(9000)
	default:
		return 12 + r.IntN(400)
	}
}

func TestAppendReadReopen(t *testing.T) {
	h := newHarness(t, 1, sim.DefaultDiskConfig())
	opts := Options{SegmentBytes: 16 << 10}
	l := h.open(opts)
	var want [][]byte
	for i := range 200 {
		p := payload(0, uint64(i), sizes(h.rng))
		seq, err := l.Append(p)
		if err != nil || seq != uint64(i) {
			t.Fatalf("Append %d = %d, %v", i, seq, err)
		}
		want = append(want, p)
		if i%17 == 0 {
			if err := h.sync(l); err != nil {
				t.Fatalf("Sync: %v", err)
			}
		}
	}
	// AppendBatch across a rotation.
	var batch [][]byte
	for i := range 30 {
		batch = append(batch, payload(0, uint64(200+i), 1000))
	}
	if seq, err := l.AppendBatch(batch); err != nil || seq != 200 {
		t.Fatalf("AppendBatch = %d, %v", seq, err)
	}
	want = append(want, batch...)
	if got := records(t, l); !equalRecords(got, want) {
		t.Fatalf("before reopen: %s", diffRecords(got, want))
	}
	if err := h.sync(l); err != nil {
		t.Fatal(err)
	}
	if n := len(h.disk.Files()); n < 5 {
		t.Fatalf("expected several segments, have %v", h.disk.Files())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	for _, crash := range []bool{false, true} {
		if crash {
			h.crash()
		}
		l = h.open(opts)
		if got := records(t, l); !equalRecords(got, want) {
			t.Fatalf("after reopen (crash %v): %s", crash, diffRecords(got, want))
		}
		if l.Next() != uint64(len(want)) || l.First() != 0 {
			t.Fatalf("First/Next = %d/%d", l.First(), l.Next())
		}
		l.Close()
	}
}

func TestReadOutOfRange(t *testing.T) {
	h := newHarness(t, 2, sim.DefaultDiskConfig())
	l := h.open(Options{})
	l.Append([]byte("a"))
	for _, seq := range []uint64{1, 2, 1 << 60} {
		if _, err := l.Read(seq); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("Read(%d) = %v, want ErrOutOfRange", seq, err)
		}
	}
	if err := l.Scan(2, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Scan(2) = %v", err)
	}
	if err := h.truncate(l, 5); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Truncate(5) = %v", err)
	}
	if _, err := l.Append(make([]byte, DefaultMaxRecordBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Append(too large) = %v", err)
	}
	stop := errors.New("stop")
	if err := l.Scan(0, func(uint64, []byte) error { return stop }); err != stop {
		t.Errorf("Scan stop = %v", err)
	}
}

// TestTornCrashRecovery crashes at random points with torn persistence of
// unsynced blocks and checks that recovery never reports corruption, keeps
// every record whose Sync completed, and yields a prefix of what was
// appended (then keeps working across further crashes).
func TestTornCrashRecovery(t *testing.T) {
	for seed := range uint64(seeds(60)) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { tornCrashRun(t, seed) })
	}
}

func tornCrashRun(t *testing.T, seed uint64) {
	cfg := sim.DefaultDiskConfig()
	h := newHarness(t, seed, cfg)
	r := h.rng
	cfg.TornKeepProb = []float64{0.1, 0.5, 0.9, 1}[r.IntN(4)]
	cfg.BlockSize = []int{512, 4096}[r.IntN(2)]
	h.disk.SetConfig(cfg)
	opts := Options{SegmentBytes: []int64{1 << 10, 8 << 10, 64 << 10}[r.IntN(3)]}
	var model [][]byte // what was appended, in order
	synced := 0        // records guaranteed durable
	for round := range 8 {
		l, err := Open(h.fs, "log", opts)
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		got := records(t, l)
		if len(got) < synced || len(got) > len(model) || !equalRecords(got, model[:len(got)]) {
			t.Fatalf("round %d: recovered %d records, %d synced, %d appended: %s", round, len(got), synced, len(model), diffRecords(got, model[:min(len(model), max(len(got), synced))]))
		}
		model, synced = got, len(got)
		for range 1 + r.IntN(6) {
			for range r.IntN(12) {
				p := payload(round, uint64(len(model)), sizes(r))
				if _, err := l.Append(p); err != nil {
					t.Fatal(err)
				}
				model = append(model, p)
			}
			n := len(model)
			l.Sync(func(err error) {
				if err != nil {
					t.Errorf("Sync: %v", err)
				}
				synced = max(synced, n)
			})
			h.sched.RunFor(time.Duration(r.IntN(1500)) * time.Microsecond)
		}
		h.crash()
	}
}

// TestTruncateCrashRecovery mixes truncations into random crashes: after
// recovery every record guaranteed durable is there, and every record is
// one that was appended at its seq, with versions never going back.
func TestTruncateCrashRecovery(t *testing.T) {
	for seed := range uint64(seeds(60)) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { truncateCrashRun(t, seed) })
	}
}

func truncateCrashRun(t *testing.T, seed uint64) {
	cfg := sim.DefaultDiskConfig()
	h := newHarness(t, seed+1000, cfg)
	r := h.rng
	cfg.TornKeepProb = []float64{0, 0.3, 0.7, 1}[r.IntN(4)]
	h.disk.SetConfig(cfg)
	opts := Options{SegmentBytes: []int64{1 << 10, 8 << 10}[r.IntN(2)]}
	var model [][]byte
	must := 0 // length of the prefix guaranteed to survive
	version := 0
	versions := map[uint64]map[string]bool{} // seq -> payloads ever appended there
	type syncWait struct{ low int }
	crashed := true
	for round := range 6 {
		l, err := Open(h.fs, "log", opts)
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		got := records(t, l)
		if len(got) < must || !equalRecords(got[:must], model[:must]) {
			t.Fatalf("round %d: recovered %d records, want the %d durable ones: %s", round, len(got), must, diffRecords(got[:min(must, len(got))], model[:must]))
		}
		last := -1
		for i, p := range got {
			if !versions[uint64(i)][string(p)] {
				t.Fatalf("round %d: record %d was never appended at that seq", round, i)
			}
			v := int(p[0]) | int(p[1])<<8
			if v < last {
				t.Fatalf("round %d: record %d is version %d after version %d", round, i, v, last)
			}
			last = v
		}
		model = got
		// After a crash, what Open found is what the disk kept: durable.
		// After a reopen without a crash it is the volatile image, which
		// becomes durable with the first sync (Open queues one, and syncs
		// complete in order).
		var waits []*syncWait
		if crashed {
			must = len(got)
		} else {
			waits = append(waits, &syncWait{low: len(got)})
		}
		for range 2 + r.IntN(8) {
			switch r.IntN(4) {
			case 0:
				if l.Next() == 0 {
					continue
				}
				seq := l.First() + uint64(r.Int64N(int64(l.Next()-l.First())+1))
				version++
				model = model[:seq]
				must = min(must, int(seq))
				for _, w := range waits {
					w.low = min(w.low, int(seq))
				}
				l.Truncate(seq, func(err error) {
					if err != nil && !errors.Is(err, ErrClosed) {
						t.Errorf("Truncate: %v", err)
					}
				})
				if l.Next() != seq {
					t.Fatalf("Next after Truncate(%d) = %d", seq, l.Next())
				}
			default:
				for range r.IntN(10) {
					seq := uint64(len(model))
					p := payload(version, seq, 12+r.IntN(900))
					if _, err := l.Append(p); err != nil {
						t.Fatal(err)
					}
					if versions[seq] == nil {
						versions[seq] = map[string]bool{}
					}
					versions[seq][string(p)] = true
					model = append(model, p)
				}
				w := &syncWait{low: len(model)}
				waits = append(waits, w)
				l.Sync(func(err error) {
					if err != nil && !errors.Is(err, ErrClosed) {
						t.Errorf("Sync: %v", err)
					}
					if err == nil {
						// Syncs complete in order: every wait registered
						// before this one is resolved too.
						for _, x := range waits {
							must = max(must, x.low)
							if x == w {
								break
							}
						}
					}
				})
			}
			// Reads always see the logical log, held appends included.
			if got := records(t, l); !equalRecords(got, model) {
				t.Fatalf("round %d: live log differs from model: %s", round, diffRecords(got, model))
			}
			h.sched.RunFor(time.Duration(r.IntN(1200)) * time.Microsecond)
		}
		crashed = r.IntN(4) != 0
		if !crashed {
			// Reopen without a crash: the volatile image is kept. Half the
			// time at once, with a truncation or sync possibly still in
			// flight (Open must not write over a truncation that is not
			// durable yet).
			l.Close()
			if r.IntN(2) == 0 {
				h.sched.RunFor(10 * time.Millisecond)
			}
			continue
		}
		h.crash()
	}
}

// TestCorruptionDetected damages bytes that a completed Sync made durable,
// with a later record written after that sync, and expects Open to report
// ErrCorrupt naming the file and offset.
func TestCorruptionDetected(t *testing.T) {
	tests := []struct {
		name string
		// pick returns the file and offset to damage, given the segment
		// names and the durable images.
		pick func(names []string, img map[string][]byte) (string, int64)
	}{
		{"first record", func(n []string, _ map[string][]byte) (string, int64) { return n[0], segHeaderSize + 30 }},
		{"chunk header", func(n []string, _ map[string][]byte) (string, int64) { return n[0], segHeaderSize + 2 }},
		{"segment header", func(n []string, _ map[string][]byte) (string, int64) { return n[1], 9 }},
		{"middle segment data", func(n []string, img map[string][]byte) (string, int64) {
			return n[len(n)/2], int64(len(img[n[len(n)/2]]) / 2)
		}},
		{"second block", func(n []string, img map[string][]byte) (string, int64) { return n[0], blockSize + 100 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 7, sim.DefaultDiskConfig())
			l := h.open(Options{SegmentBytes: 12 << 10})
			for i := range 60 {
				l.Append(payload(0, uint64(i), 300+(i%5)*1000))
			}
			if err := h.sync(l); err != nil {
				t.Fatal(err)
			}
			// Written after the sync: its mark covers everything above.
			l.Append([]byte("later"))
			if err := h.sync(l); err != nil {
				t.Fatal(err)
			}
			names := h.disk.DurableFiles()
			img := map[string][]byte{}
			for _, n := range names {
				img[n], _ = h.disk.DurableImage(n)
			}
			if len(names) < 3 {
				t.Fatalf("want several segments, have %v", names)
			}
			name, off := tt.pick(names, img)
			if !h.disk.CorruptDurable(name, off, 1) {
				t.Fatalf("CorruptDurable(%s, %d) failed", name, off)
			}
			h.crash()
			_, err := Open(h.fs, "log", Options{SegmentBytes: 12 << 10})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open after corrupting %s at %d = %v, want ErrCorrupt", name, off, err)
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name %s", err, name)
			}
			t.Log(err)
		})
	}
}

// TestCorruptionSmallLog: in a log of one block, damage to a record's data
// is still proven by later chunks of the same block (the damaged chunk's
// header verifies, so its length leads to them); damage to a header leaves
// nothing later in the block locatable, so it is taken for a torn tail.
func TestCorruptionSmallLog(t *testing.T) {
	tests := []struct {
		name    string
		off     int64 // in the segment; records are 128 bytes with headers
		corrupt bool
		keep    int // records recovered when not corrupt
	}{
		{"data of record 0", segHeaderSize + chunkHeaderSize + 50, true, 0},
		{"data of record 3", segHeaderSize + 3*(chunkHeaderSize+100) + chunkHeaderSize + 1, true, 0},
		{"header of record 0", segHeaderSize + 1, false, 0},
		{"header of record 2", segHeaderSize + 2*(chunkHeaderSize+100) + 12, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 13, sim.DefaultDiskConfig())
			l := h.open(Options{})
			for i := range 5 {
				l.Append(payload(0, uint64(i), 100))
			}
			if err := h.sync(l); err != nil {
				t.Fatal(err)
			}
			l.Append(payload(0, 5, 100))
			if err := h.sync(l); err != nil {
				t.Fatal(err)
			}
			name := h.disk.DurableFiles()[0]
			h.disk.CorruptDurable(name, tt.off, 1)
			h.crash()
			l, err := Open(h.fs, "log", Options{})
			if tt.corrupt {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open = %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := len(records(t, l)); n != tt.keep {
				t.Fatalf("recovered %d records, want %d", n, tt.keep)
			}
		})
	}
}

// TestCorruptionOfLastSyncedIsCut documents the blind spot: damage to the
// last synced record with nothing written after its sync is
// indistinguishable from a torn tail, so it is cut, never returned.
func TestCorruptionOfLastSyncedIsCut(t *testing.T) {
	h := newHarness(t, 8, sim.DefaultDiskConfig())
	l := h.open(Options{})
	for i := range 5 {
		l.Append(payload(0, uint64(i), 100))
	}
	if err := h.sync(l); err != nil {
		t.Fatal(err)
	}
	name := h.disk.DurableFiles()[0]
	img, _ := h.disk.DurableImage(name)
	h.disk.CorruptDurable(name, int64(len(img))-10, 1)
	h.crash()
	l = h.open(Options{})
	if got := records(t, l); len(got) != 4 {
		t.Fatalf("recovered %d records, want the 4 undamaged ones", len(got))
	}
}

// TestPayloadLookingLikeChunks writes records whose payloads are themselves
// valid chunk streams with huge marks, then tears the tail: recovery must
// not take the embedded chunks for proof of corruption.
func TestPayloadLookingLikeChunks(t *testing.T) {
	var evil []byte
	for off := int64(0); len(evil) < 3*blockSize; {
		before := len(evil)
		evil, _ = frame(evil, off, 1, 1<<62, bytes.Repeat([]byte{7}, 500))
		off += int64(len(evil) - before)
	}
	for seed := range uint64(seeds(20)) {
		cfg := sim.DefaultDiskConfig()
		cfg.TornKeepProb = 0.5
		h := newHarness(t, seed, cfg)
		l := h.open(Options{})
		for i := range 3 {
			l.Append(payload(0, uint64(i), 50))
		}
		if err := h.sync(l); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			l.Append(evil[i*37:])
		}
		l.Sync(func(error) {})
		h.crash()
		l, err := Open(h.fs, "log", Options{})
		if err != nil {
			t.Fatalf("seed %d: Open: %v", seed, err)
		}
		if n := len(records(t, l)); n < 3 {
			t.Fatalf("seed %d: lost synced records: %d", seed, n)
		}
	}
}

func TestSyncErrorFailStop(t *testing.T) {
	h := newHarness(t, 3, sim.DefaultDiskConfig())
	l := h.open(Options{})
	h.run(func() bool { return len(l.ops) == 0 }) // the open sync
	l.Append([]byte("one"))
	if err := h.sync(l); err != nil {
		t.Fatal(err)
	}
	l.Append([]byte("two"))
	h.disk.FailNextSyncs(1)
	if err := h.sync(l); !errors.Is(err, ErrFailed) || !errors.Is(err, env.ErrIO) {
		t.Fatalf("Sync with EIO = %v, want ErrFailed wrapping ErrIO", err)
	}
	if !errors.Is(l.Err(), ErrFailed) {
		t.Fatalf("Err() = %v", l.Err())
	}
	if _, err := l.Append([]byte("three")); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append after failure = %v", err)
	}
	if err := h.sync(l); !errors.Is(err, ErrFailed) {
		t.Fatalf("Sync after failure = %v", err)
	}
	if err := h.truncate(l, 0); !errors.Is(err, ErrFailed) {
		t.Fatalf("Truncate after failure = %v", err)
	}
	l.Close()
	// Reopen (no crash): the volatile image still holds both records.
	l = h.open(Options{})
	if got := records(t, l); len(got) != 2 {
		t.Fatalf("reopen recovered %d records", len(got))
	}
	if err := h.sync(l); err != nil {
		t.Fatalf("Sync after reopen: %v", err)
	}
}

func TestWriteErrorFailStop(t *testing.T) {
	h := newHarness(t, 4, sim.DefaultDiskConfig())
	l := h.open(Options{})
	l.Append([]byte("one"))
	if err := h.sync(l); err != nil {
		t.Fatal(err)
	}
	h.disk.FailNextWrites(1)
	if _, err := l.Append(bytes.Repeat([]byte("x"), 5000)); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append with EIO = %v", err)
	}
	if _, err := l.Append([]byte("y")); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append after failure = %v", err)
	}
	l.Close()
	// The partial write is a torn tail.
	l = h.open(Options{})
	if got := records(t, l); len(got) != 1 || string(got[0]) != "one" {
		t.Fatalf("reopen recovered %q", got)
	}
}

func TestTruncateSemantics(t *testing.T) {
	h := newHarness(t, 5, sim.DefaultDiskConfig())
	opts := Options{SegmentBytes: 2 << 10}
	l := h.open(opts)
	var want [][]byte
	for i := range 40 {
		p := payload(0, uint64(i), 200)
		l.Append(p)
		want = append(want, p)
	}
	if err := h.sync(l); err != nil {
		t.Fatal(err)
	}
	var order []string
	// Truncate into an earlier segment, append while it is pending, then
	// truncate the held appends again and sync.
	l.Truncate(25, func(err error) { order = append(order, fmt.Sprint("t25:", err)) })
	want = want[:25]
	for i := 25; i < 30; i++ {
		p := payload(1, uint64(i), 200)
		if seq, err := l.Append(p); err != nil || seq != uint64(i) {
			t.Fatalf("Append = %d, %v", seq, err)
		}
		want = append(want, p)
	}
	if got := records(t, l); !equalRecords(got, want) {
		t.Fatalf("records while truncation pending: %s", diffRecords(got, want))
	}
	l.Truncate(28, func(err error) { order = append(order, fmt.Sprint("t28:", err)) })
	want = want[:28]
	l.Sync(func(err error) { order = append(order, fmt.Sprint("sync:", err)) })
	l.Truncate(3, func(err error) { order = append(order, fmt.Sprint("t3:", err)) })
	want = want[:3]
	for i := 3; i < 10; i++ {
		p := payload(2, uint64(i), 300)
		l.Append(p)
		want = append(want, p)
	}
	l.Sync(func(err error) { order = append(order, fmt.Sprint("sync2:", err)) })
	h.run(func() bool { return len(order) == 5 })
	if fmt.Sprint(order) != "[t25:<nil> t28:<nil> sync:<nil> t3:<nil> sync2:<nil>]" {
		t.Fatalf("completion order %v", order)
	}
	if got := records(t, l); !equalRecords(got, want) {
		t.Fatalf("records: %s", diffRecords(got, want))
	}
	h.crash()
	l = h.open(opts)
	if got := records(t, l); !equalRecords(got, want) {
		t.Fatalf("after crash: %s", diffRecords(got, want))
	}
	// Truncate everything.
	if err := h.truncate(l, 0); err != nil {
		t.Fatal(err)
	}
	if l.Next() != 0 {
		t.Fatalf("Next = %d", l.Next())
	}
	h.crash()
	l = h.open(opts)
	if got := records(t, l); len(got) != 0 {
		t.Fatalf("after truncate(0) and crash: %d records", len(got))
	}
}

// TestNewSegmentNeedsDirSync checks that Sync covers a segment's creation:
// after a successful Sync that spanned a rotation, a crash keeps the new
// segment's records.
func TestNewSegmentNeedsDirSync(t *testing.T) {
	h := newHarness(t, 6, sim.DefaultDiskConfig())
	opts := Options{SegmentBytes: 1 << 10}
	l := h.open(opts)
	var want [][]byte
	for i := range 10 {
		p := payload(0, uint64(i), 300)
		l.Append(p)
		want = append(want, p)
	}
	if err := h.sync(l); err != nil {
		t.Fatal(err)
	}
	if len(h.disk.DurableFiles()) < 3 {
		t.Fatalf("segments not durable: %v", h.disk.DurableFiles())
	}
	h.crash()
	l = h.open(opts)
	if got := records(t, l); !equalRecords(got, want) {
		t.Fatal(diffRecords(got, want))
	}
}

func TestCloseCompletesPending(t *testing.T) {
	h := newHarness(t, 9, sim.DefaultDiskConfig())
	l := h.open(Options{})
	l.Append([]byte("a"))
	var errs []error
	l.Sync(func(err error) { errs = append(errs, err) })
	l.Truncate(0, func(err error) { errs = append(errs, err) })
	l.Close()
	h.run(func() bool { return len(errs) == 2 })
	for _, err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("callbacks after Close: %v", errs)
		}
	}
	if _, err := l.Append([]byte("b")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	var serr error
	done := false
	l.Sync(func(err error) { serr, done = err, true })
	h.run(func() bool { return done })
	if !errors.Is(serr, ErrClosed) {
		t.Fatalf("Sync after Close = %v", serr)
	}
}

// TestRecoveredTooLarge: a log written with a larger MaxRecordBytes is
// refused, not cut.
func TestRecoveredTooLarge(t *testing.T) {
	h := newHarness(t, 10, sim.DefaultDiskConfig())
	l := h.open(Options{})
	l.Append(make([]byte, 5000))
	if err := h.sync(l); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := Open(h.fs, "log", Options{MaxRecordBytes: 4000}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Open with a smaller limit = %v, want ErrTooLarge", err)
	}
}

func TestIgnoresOtherFiles(t *testing.T) {
	h := newHarness(t, 11, sim.DefaultDiskConfig())
	for _, name := range []string{"log/README", "log/1.seg", "logx/00000000000000000001.seg", "log/sub/00000000000000000001.seg"} {
		f, err := h.fs.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("junk"))
	}
	l := h.open(Options{})
	if l.Next() != 0 {
		t.Fatalf("Next = %d", l.Next())
	}
}

func equalRecords(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func diffRecords(got, want [][]byte) string {
	for i := range min(len(got), len(want)) {
		if !bytes.Equal(got[i], want[i]) {
			return fmt.Sprintf("record %d differs (len %d vs %d)", i, len(got[i]), len(want[i]))
		}
	}
	return fmt.Sprintf("got %d records, want %d", len(got), len(want))
}

// TestReadInArena: records read through one Arena (records of every size,
// single- and multi-chunk, some larger than a chunk) have exactly Read's
// bytes, and each is the caller's: writing into one, or appending to it,
// changes no other.
func TestReadInArena(t *testing.T) {
	opts := Options{SegmentBytes: 256 << 10}
	h := newHarness(t, 11, sim.DefaultDiskConfig())
	l := h.open(opts)
	sizes := []int{1, 10, 100, 3000, 5000, 9000, 70 << 10, 20, 4000, 1}
	for i := 0; i < 60; i++ {
		if _, err := l.Append(payload(11, uint64(i), sizes[i%len(sizes)])); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.sync(l); err != nil {
		t.Fatal(err)
	}
	var a Arena
	var got [][]byte
	for seq := l.First(); seq < l.Next(); seq++ {
		p, err := l.ReadIn(seq, &a)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	for i, p := range got {
		for j := range p {
			p[j] ^= 0xff
		}
		got[i] = append(p, bytes.Repeat([]byte{7}, 64)...) // past any chunk header into a neighbour's payload, if they shared memory
	}
	for i, p := range got {
		want, err := l.Read(l.First() + uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		for j := range want {
			want[j] ^= 0xff
		}
		if !bytes.Equal(p[:len(p)-64], want) {
			t.Fatalf("record %d: arena read differs from Read (or another record wrote into it)", i)
		}
	}
}

// fsyncgate across a restart: a process whose fsync failed is killed with
// its machine up (the page cache kept) and restarted. The new process
// reads every record back; once recovery's first sync is done
// (AfterQueued), they must be durable, even where Linux marked the failed
// pages clean, so a power loss right after keeps them all.
func TestKilledAfterFailedSyncRecoversDurably(t *testing.T) {
	for _, mode := range []sim.FailedSyncMode{sim.FailedSyncClean, sim.FailedSyncDrop, sim.FailedSyncKeep} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := sim.DefaultDiskConfig()
			cfg.FailedSync = mode
			h := newHarness(t, 5, cfg)
			l := h.open(Options{})
			h.run(func() bool { return len(l.ops) == 0 }) // the open sync
			for i := range 5 {
				l.Append(payload(1, uint64(i), 300))
			}
			if err := h.sync(l); err != nil {
				t.Fatal(err)
			}
			for i := 5; i < 9; i++ {
				l.Append(payload(1, uint64(i), 700))
			}
			h.disk.FailNextSyncs(1)
			if err := h.sync(l); !errors.Is(err, ErrFailed) {
				t.Fatalf("Sync with EIO = %v, want ErrFailed", err)
			}
			// kill -9: the next process reads the page cache.
			h.gen++
			h.disk.ProcessExit()
			h.boot()
			l = h.open(Options{})
			want := records(t, l)
			var res error
			done := false
			l.AfterQueued(func(err error) { res, done = err, true })
			h.run(func() bool { return done })
			if res != nil {
				t.Fatalf("recovery sync: %v", res)
			}
			l.Close()
			h.crash()
			l = h.open(Options{})
			if got := records(t, l); len(got) != len(want) {
				t.Fatalf("after a power loss following the recovery sync: %d records, the killed process's successor read %d", len(got), len(want))
			}
		})
	}
}
