package reclog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"walraft/sim"
)

// FuzzDecode feeds arbitrary bytes to the chunk and segment header
// decoders: they must never panic, and whatever they accept must re-encode
// to exactly the bytes they read (so nothing unverified gets through).
func FuzzDecode(f *testing.F) {
	f.Add(putChunk(nil, chunkFull, 3, 9, []byte("hello")))
	f.Add(putChunk(nil, chunkFirst, 0, 0, bytes.Repeat([]byte{1}, maxChunkData)))
	f.Add(encodeSegHeader(segHeader{id: 2, baseSeq: 10, basePos: 4000}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, data, n, why, _ := decodeChunk(b); why == "" {
			if n != chunkHeaderSize+len(data) || n > len(b) || len(data) > maxChunkData {
				t.Fatalf("decodeChunk: n=%d data=%d len=%d", n, len(data), len(b))
			}
			if re := putChunk(nil, h.typ, h.seq, h.mark, data); !bytes.Equal(re, b[:n]) {
				t.Fatalf("decodeChunk accepted bytes that do not re-encode to themselves")
			}
		}
		if h, why := decodeSegHeader(b); why == "" {
			if !bytes.Equal(encodeSegHeader(h), b[:segHeaderSize]) {
				t.Fatalf("decodeSegHeader accepted bytes that do not re-encode to themselves")
			}
		}
	})
}

// FuzzRecover writes arbitrary bytes as segment files (a sequence of
// 4-byte little-endian length + content, one per file) and opens the log.
// Open must not panic; it either fails with ErrCorrupt or ErrTooLarge, or
// yields records that Read verifies again; and once its cut is durable,
// a crash and a second Open give the same records.
func FuzzRecover(f *testing.F) {
	for _, seed := range corpusLogs() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newHarness(t, 1, sim.DiskConfig{})
		var names []string
		var images [][]byte
		for i := 1; len(data) >= 4 && i <= 8; i++ {
			n := min(int(binary.LittleEndian.Uint32(data)), len(data)-4)
			names = append(names, segName("log/", uint64(i)))
			images = append(images, data[4:4+n])
			data = data[4+n:]
		}
		h.install(names, images)
		checkRecover(t, h)
	})
}

// FuzzRecoverEdits builds a valid log, damages it with fuzzer-chosen
// edits (byte flips, cuts, zeroed ranges) and opens it: recovery must
// return ErrCorrupt or a prefix of the records written, never a damaged or
// reordered record and never one from after a gap.
func FuzzRecoverEdits(f *testing.F) {
	f.Add(uint64(1), uint8(20), []byte{0, 0, 0, 60, 5})
	f.Add(uint64(2), uint8(40), []byte{1, 1, 0, 16, 0})
	f.Add(uint64(3), uint8(80), []byte{2, 2, 1, 0, 0, 0, 0, 0, 200, 1})
	f.Fuzz(func(t *testing.T, seed uint64, n uint8, edits []byte) {
		src := newHarness(t, seed, sim.DiskConfig{})
		opts := Options{SegmentBytes: 6 << 10}
		l := src.open(opts)
		var want [][]byte
		for i := range int(n) {
			p := payload(0, uint64(i), sizes(src.rng)%7000)
			l.Append(p)
			want = append(want, p)
		}
		if err := src.sync(l); err != nil {
			t.Fatal(err)
		}
		names := src.disk.DurableFiles()
		images := make([][]byte, len(names))
		for i, name := range names {
			images[i], _ = src.disk.DurableImage(name)
		}
		// Each edit is 5 bytes: file, op, offset (3 bytes, little-endian).
		for ; len(edits) >= 5; edits = edits[5:] {
			fi := int(edits[0]) % len(images)
			img := images[fi]
			if len(img) == 0 {
				continue
			}
			off := (int(edits[2]) | int(edits[3])<<8 | int(edits[4])<<16) % len(img)
			switch edits[1] % 3 {
			case 0:
				img[off] ^= 1 << (edits[3] % 8)
			case 1:
				images[fi] = img[:off]
			case 2:
				clear(img[off:min(len(img), off+512)])
			}
		}
		h := newHarness(t, seed, sim.DiskConfig{})
		h.install(names, images)
		got := checkRecover(t, h)
		if len(got) > len(want) || !equalRecords(got, want[:len(got)]) {
			t.Fatalf("recovered records are not a prefix of those written: %s", diffRecords(got, want))
		}
	})
}

// install makes files with the given contents durable on h's disk, as a
// crash would leave them.
func (h *harness) install(names []string, images [][]byte) {
	for i, name := range names {
		fl, err := h.fs.Create(name)
		if err != nil {
			h.t.Fatal(err)
		}
		fl.Write(images[i])
		fl.Sync(func(error) {})
	}
	h.fs.SyncDir(func(error) {})
	h.run(func() bool { return h.disk.PendingSyncs() == 0 })
	h.crash()
}

// checkRecover opens the log on h and checks the properties common to the
// recovery fuzzers, among them that a Scanner of the same images predicts
// Open's verdict and records exactly. It returns the records (nil after
// ErrCorrupt).
func checkRecover(t *testing.T, h *harness) [][]byte {
	sc, err := NewScanner("log", Options{SegmentBytes: 6 << 10})
	if err != nil {
		t.Fatal(err)
	}
	src := h.disk.DurableSource()
	res := sc.Scan(src)
	l, err := Open(h.fs, "log", Options{SegmentBytes: 6 << 10})
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Open failed with an unexpected error: %v", err)
		}
		if res.Err == nil || err.Error() != fmt.Sprintf("reclog: open %q: %v", "log", res.Err) {
			t.Fatalf("Open failed with %v, the Scanner predicted %v", err, res.Err)
		}
		return nil
	}
	if res.Err != nil {
		t.Fatalf("Open succeeded, the Scanner predicted %v", res.Err)
	}
	got := records(t, l)
	if res.First != l.First() || res.Next != l.Next() {
		t.Fatalf("Open recovered [%d, %d), the Scanner predicted [%d, %d)", l.First(), l.Next(), res.First, res.Next)
	}
	for i, p := range got {
		if q, err := sc.Read(src, res.First+uint64(i)); err != nil || !bytes.Equal(p, q) {
			t.Fatalf("record %d: Open read %d bytes, the Scanner %d (%v)", res.First+uint64(i), len(p), len(q), err)
		}
	}
	// Let the cut (if any) become durable, then crash cleanly: the same
	// records must come back, and the log must accept appends.
	h.run(func() bool { return len(l.ops) == 0 })
	h.crash()
	l2, err := Open(h.fs, "log", Options{SegmentBytes: 6 << 10})
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if again := records(t, l2); !equalRecords(again, got) {
		t.Fatalf("second Open differs: %s", diffRecords(again, got))
	}
	if _, err := l2.Append([]byte("x")); err != nil {
		t.Fatalf("Append after recovery: %v", err)
	}
	if err := h.sync(l2); err != nil {
		t.Fatalf("Sync after recovery: %v", err)
	}
	return got
}

// corpusLogs returns FuzzRecover inputs: valid logs and damaged ones.
func corpusLogs() [][]byte {
	var out [][]byte
	pack := func(images [][]byte) []byte {
		var b []byte
		for _, img := range images {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(img)))
			b = append(b, img...)
		}
		return b
	}
	for _, c := range []struct {
		seed uint64
		n    int
		size int
	}{{1, 3, 50}, {2, 10, 700}, {3, 3, 4500}} {
		h := newHarness(nopTB{}, c.seed, sim.DiskConfig{})
		l, err := Open(h.fs, "log", Options{SegmentBytes: 6 << 10})
		if err != nil {
			panic(err)
		}
		for i := range c.n {
			l.Append(payload(0, uint64(i), c.size))
			if i == c.n/2 {
				h.sync(l)
			}
		}
		h.sync(l)
		var images [][]byte
		for _, name := range h.disk.DurableFiles() {
			img, _ := h.disk.DurableImage(name)
			images = append(images, img)
		}
		out = append(out, pack(images))
		// Damaged variants: a flipped byte in the last file, a cut last
		// file, and a flipped byte in the first.
		last := len(images) - 1
		flip := cloneImages(images)
		flip[last][len(flip[last])-3] ^= 0x40
		cut := cloneImages(images)
		cut[last] = cut[last][:len(cut[last])*2/3]
		first := cloneImages(images)
		first[0][segHeaderSize+5] ^= 1
		out = append(out, pack(flip), pack(cut), pack(first))
	}
	return out
}

func cloneImages(images [][]byte) [][]byte {
	out := make([][]byte, len(images))
	for i, img := range images {
		out[i] = bytes.Clone(img)
	}
	return out
}

// nopTB lets corpus generation use the harness outside a test.
type nopTB struct{ testing.TB }

func (nopTB) Helper()                   {}
func (nopTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzRecover when
// RECLOG_WRITE_CORPUS=1; otherwise it checks the committed corpus exists.
func TestWriteFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzRecover")
	if os.Getenv("RECLOG_WRITE_CORPUS") != "1" {
		if ents, err := os.ReadDir(dir); err != nil || len(ents) == 0 {
			t.Fatalf("fuzz corpus %s missing (regenerate with RECLOG_WRITE_CORPUS=1): %v", dir, err)
		}
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, data := range corpusLogs() {
		kind := []string{"valid", "flipped-tail", "cut-tail", "flipped-first"}[i%4]
		name := filepath.Join(dir, fmt.Sprintf("seed%d-%s", i/4, kind))
		if err := os.WriteFile(name, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
