package sim

import (
	"bytes"
	"testing"
)

// flatImage is the reference for image: one flat slice.
type flatImage []byte

func (f *flatImage) writeAt(p []byte, off int64) {
	if need := off + int64(len(p)); need > int64(len(*f)) {
		*f = append(*f, make([]byte, need-int64(len(*f)))...)
	}
	copy((*f)[off:], p)
}

// checkImage compares im with want through every read path and checks the
// zero-tail invariant.
func checkImage(t *testing.T, step int, name string, im *image, want []byte) {
	t.Helper()
	if im.Len() != int64(len(want)) {
		t.Fatalf("step %d: %s Len = %d, want %d", step, name, im.Len(), len(want))
	}
	if got := im.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("step %d: %s content differs from the reference", step, name)
	}
	if len(im.pages) != numPages(im.size) || len(im.owned) != len(im.pages) {
		t.Fatalf("step %d: %s has %d pages (%d owned flags) for %d bytes", step, name, len(im.pages), len(im.owned), im.size)
	}
	if n := len(im.pages); n > 0 {
		tail := im.pages[n-1][im.size-int64(n-1)*pageSize:]
		if !bytes.Equal(tail, make([]byte, len(tail))) {
			t.Fatalf("step %d: %s: bytes past the end of the last page are not zero", step, name)
		}
	}
}

// TestImageMatchesFlat runs random writes (at the end, inside, past the end
// leaving a gap), copies from the other image (CopyFrom, as a sync applies
// a block from the volatile image to the durable one), truncates, clones
// and byte flips on a pair of images that share pages, and compares both
// with flat references after every step: a write to one must never show in
// the other.
func TestImageMatchesFlat(t *testing.T) {
	for seed := range uint64(20) {
		rng := NewStreams(seed).Stream("image")
		var ims [2]image
		var refs [2]flatImage
		for step := 0; step < 400; step++ {
			k := rng.IntN(2)
			im, ref := &ims[k], &refs[k]
			size := int64(len(*ref))
			switch op := rng.IntN(100); {
			case op < 40: // append, sometimes several pages at once
				p := make([]byte, rng.IntN(3*pageSize/2)+1)
				_, _ = rng.Read(p)
				if rng.Chance(0.5) {
					p = p[:min(len(p), rng.IntN(600)+1)]
				}
				im.Append(p)
				ref.writeAt(p, size)
			case op < 60: // overwrite inside or past the end
				off := int64(rng.IntN(int(size) + 2*pageSize))
				p := make([]byte, rng.IntN(pageSize)+1)
				_, _ = rng.Read(p)
				im.WriteAt(p, off)
				ref.writeAt(p, off)
			case op < 68 && len(refs[1-k]) > 0: // copy a range of the other image
				src := &refs[1-k]
				off := int64(rng.IntN(len(*src)))
				n := 1 + rng.IntN(min(len(*src)-int(off), 2*pageSize))
				im.CopyFrom(&ims[1-k], off, n)
				ref.writeAt(append([]byte(nil), (*src)[off:off+int64(n)]...), off)
			case op < 75: // truncate
				n := int64(rng.IntN(int(size) + 1))
				im.Truncate(n)
				*ref = (*ref)[:n]
			case op < 80: // extend with zeros
				n := size + int64(rng.IntN(pageSize))
				im.extend(n)
				ref.writeAt(make([]byte, n-size), size)
			case op < 88: // clone one into the other
				ims[1-k] = im.Clone()
				refs[1-k] = append(flatImage(nil), *ref...)
			case op < 95 && size > 0: // flip a byte
				off := int64(rng.IntN(int(size)))
				mask := byte(1 + rng.IntN(255))
				im.XorByte(off, mask)
				(*ref)[off] ^= mask
			default: // partial read at a random offset
				off := int64(rng.IntN(int(size) + 10))
				p := make([]byte, rng.IntN(2*pageSize))
				n := im.ReadAt(p, off)
				want := 0
				if off < size {
					want = copy(make([]byte, len(p)), (*ref)[off:])
				}
				if n != want || !bytes.Equal(p[:n], (*ref)[min(off, size):min(off, size)+int64(n)]) {
					t.Fatalf("seed %d step %d: ReadAt(%d bytes, %d) = %d, want %d", seed, step, len(p), off, n, want)
				}
			}
			checkImage(t, step, "image 0", &ims[0], refs[0])
			checkImage(t, step, "image 1", &ims[1], refs[1])
		}
	}
}

func TestImagePanicsOnBadArguments(t *testing.T) {
	tests := []struct {
		name string
		fn   func(im *image)
	}{
		{"truncate past the end", func(im *image) { im.Truncate(11) }},
		{"truncate negative", func(im *image) { im.Truncate(-1) }},
		{"extend below the size", func(im *image) { im.extend(9) }},
		{"write at a negative offset", func(im *image) { im.WriteAt([]byte{1}, -1) }},
		{"flip past the end", func(im *image) { im.XorByte(10, 1) }},
		{"copy past the source's end", func(im *image) { src := im.Clone(); im.CopyFrom(&src, 5, 6) }},
		{"copy at a negative offset", func(im *image) { src := im.Clone(); im.CopyFrom(&src, -1, 2) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var im image
			im.Append(make([]byte, 10))
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tt.fn(&im)
		})
	}
}

// TestPagePool: get always returns a zeroed page, also a recycled one that
// held data; pages cut from a slab are distinct (no two images may share a
// page by accident); raw may return garbage only from the free list; and an
// image whose pages come from the pool still reads what was written.
func TestPagePool(t *testing.T) {
	var pp pagePool
	seen := map[*page]bool{}
	for i := 0; i < 3*pagesPerSlab; i++ {
		p := pp.get()
		if seen[p] {
			t.Fatalf("page %d handed out twice", i)
		}
		seen[p] = true
		if *p != (page{}) {
			t.Fatalf("fresh page %d not zero", i)
		}
		p[0], p[pageSize-1] = 1, 2
		if i%2 == 0 {
			pp.put(p)
			if q := pp.get(); q != p || *q != (page{}) {
				t.Fatalf("recycled page %d: same %v, zero %v", i, q == p, *q == (page{}))
			}
		}
	}
	g := pp.get()
	g[7] = 9
	pp.put(g)
	if r := pp.raw(); r != g {
		t.Fatal("raw did not recycle the free page")
	}
	im := image{pool: &pp}
	want := make([]byte, 3*pageSize+100)
	for i := range want {
		want[i] = byte(i * 7)
	}
	im.WriteAt(want, 0)
	c := im.Clone()
	c.WriteAt([]byte{0xff}, 5) // copy-on-write through raw
	got := make([]byte, len(want))
	if n := im.ReadAt(got, 0); n != len(want) || !bytes.Equal(got, want) {
		t.Fatal("image over pooled pages reads back wrong")
	}
	c.ReadAt(got, 0)
	want[5] = 0xff
	if !bytes.Equal(got, want) {
		t.Fatal("copy-on-write clone reads back wrong")
	}
}
