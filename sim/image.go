package sim

import "fmt"

// pageSize is the size of one page of a file image. 32 KiB is the largest
// Go small-object size class: big enough that a file needs few pages, small
// enough that the copy-on-write copy after a crash stays cheap.
const pageSize = 32 << 10

// page is one fixed-size piece of a file image.
type page [pageSize]byte

// image is the content of a simulated file (its volatile or its durable
// image) held as fixed-size pages. A WAL only appends, so a flat []byte would
// copy the whole file every time it outgrew its capacity, and a sync would
// copy into a second flat buffer; with pages an append only ever touches the
// last page and the pages it adds.
//
// Two images may share pages (clone): a shared page is never written in
// place. owned[i] says whether page i belongs to this image alone; a write to
// a page that is not owned copies it first. Sharing is one-way conservative:
// after a copy the other image still treats its page as shared and copies on
// its own next write, which costs a copy but never aliases.
//
// Invariant: every byte of the pages at or past size is zero, so growing the
// image (a write past the end, extend) exposes zero bytes without writing
// them. Truncate restores the invariant by zeroing the cut tail.
type image struct {
	size  int64
	pages []*page
	owned []bool
	// pool, if set, supplies new pages before the allocator does (see
	// Disk.settle, which fills it).
	pool *pagePool
}

// pagePool supplies the pages of a disk's images: pages no image refers
// to any more (put back by Disk.settle), else fresh pages cut from a slab.
// A page of its own per allocation would cost a heap span each (a page is
// the largest small-object size), zeroed on allocation and swept by every
// garbage collection; a slab of pagesPerSlab is one large object, whose
// fresh memory needs no zeroing. A page keeps its whole slab alive, which
// costs nothing here: a disk's pages live as long as the disk.
type pagePool struct {
	free []*page
	slab []page
}

// pagesPerSlab is how many pages a slab holds (512 KiB with 32 KiB pages).
const pagesPerSlab = 16

// get returns a zeroed page.
func (pp *pagePool) get() *page {
	if pp != nil && len(pp.free) > 0 {
		p := pp.raw()
		clear(p[:])
		return p
	}
	return pp.raw()
}

// raw returns a page whose content is undefined (a recycled one) unless
// it is fresh: for a caller that overwrites all of it.
func (pp *pagePool) raw() *page {
	if pp == nil {
		return new(page)
	}
	if n := len(pp.free); n > 0 {
		p := pp.free[n-1]
		pp.free[n-1] = nil
		pp.free = pp.free[:n-1]
		return p
	}
	if len(pp.slab) == 0 {
		pp.slab = make([]page, pagesPerSlab)
	}
	p := &pp.slab[0]
	pp.slab = pp.slab[1:]
	return p
}

// put takes back a page that nothing refers to.
func (pp *pagePool) put(p *page) { pp.free = append(pp.free, p) }

// Len returns the image's size in bytes.
func (im *image) Len() int64 { return im.size }

// numPages returns how many pages hold n bytes.
func numPages(n int64) int { return int((n + pageSize - 1) / pageSize) }

// writable returns page i for writing, copying it first if it is shared.
func (im *image) writable(i int) *page {
	p := im.pages[i]
	if !im.owned[i] {
		c := im.pool.raw()
		*c = *p
		im.pages[i] = c
		im.owned[i] = true
		p = c
	}
	return p
}

// grow makes the image hold at least n pages; new pages are zero and owned.
func (im *image) grow(n int) {
	for len(im.pages) < n {
		im.pages = append(im.pages, im.pool.get())
		im.owned = append(im.owned, true)
	}
}

// extend sets the size to n >= Len(); the new bytes are zero.
func (im *image) extend(n int64) {
	if n < im.size {
		panic(fmt.Sprintf("sim: image.extend to %d below size %d", n, im.size))
	}
	im.grow(numPages(n))
	im.size = n
}

// WriteAt copies p into the image at off, growing it (with zero bytes in any
// gap) as needed.
func (im *image) WriteAt(p []byte, off int64) {
	if off < 0 {
		panic(fmt.Sprintf("sim: image.WriteAt at negative offset %d", off))
	}
	if len(p) == 0 {
		return
	}
	end := off + int64(len(p))
	if end > im.size {
		im.extend(end)
	}
	for len(p) > 0 {
		i, o := int(off/pageSize), int(off%pageSize)
		n := copy(im.writable(i)[o:], p)
		p = p[n:]
		off += int64(n)
	}
}

// CopyFrom copies n bytes of src at off into the image at off, growing it
// (with zero bytes in any gap) as needed, page to page without a buffer.
// src must hold them. A page the two images share holds the same bytes
// already and is left alone.
func (im *image) CopyFrom(src *image, off int64, n int) {
	if off < 0 || off+int64(n) > src.size {
		panic(fmt.Sprintf("sim: image.CopyFrom of [%d, %d) outside the source's %d bytes", off, off+int64(n), src.size))
	}
	if n == 0 {
		return
	}
	if end := off + int64(n); end > im.size {
		im.extend(end)
	}
	for n > 0 {
		i, o := int(off/pageSize), int(off%pageSize)
		k := min(n, pageSize-o)
		if im.pages[i] != src.pages[i] {
			copy(im.writable(i)[o:o+k], src.pages[i][o:o+k])
		}
		n -= k
		off += int64(k)
	}
}

// Append adds p at the end of the image.
func (im *image) Append(p []byte) { im.WriteAt(p, im.size) }

// ReadAt copies the image's bytes at off into p and returns how many it
// copied (fewer than len(p) only at the end of the image).
func (im *image) ReadAt(p []byte, off int64) int {
	if off < 0 || off >= im.size {
		return 0
	}
	if rest := im.size - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	total := len(p)
	for len(p) > 0 {
		i, o := int(off/pageSize), int(off%pageSize)
		n := copy(p, im.pages[i][o:])
		p = p[n:]
		off += int64(n)
	}
	return total
}

// Truncate shrinks the image to n <= Len() bytes, zeroing the cut tail of
// the last kept page (the zero-tail invariant) and dropping the pages past
// it.
func (im *image) Truncate(n int64) {
	if n < 0 || n > im.size {
		panic(fmt.Sprintf("sim: image.Truncate to %d out of range [0, %d]", n, im.size))
	}
	if n == im.size {
		return
	}
	keep := numPages(n)
	if o := int(n % pageSize); o != 0 {
		// Only the bytes that were inside the old size can be non-zero.
		last := int64(keep-1) * pageSize
		hi := int(min(im.size-last, pageSize))
		clear(im.writable(keep - 1)[o:hi])
	}
	clear(im.pages[keep:])
	im.pages = im.pages[:keep]
	im.owned = im.owned[:keep]
	im.size = n
}

// Clone returns an image with the same content that shares every page with
// im, copy-on-write in both.
func (im *image) Clone() image {
	for i := range im.owned {
		im.owned[i] = false
	}
	c := image{size: im.size, pages: make([]*page, len(im.pages)), owned: make([]bool, len(im.pages)), pool: im.pool}
	copy(c.pages, im.pages)
	return c
}

// adopt makes page i of im the very page i of src, shared copy-on-write by
// both, and returns im's old page if im owned it (nothing else refers to
// it then). The caller guarantees the two pages hold the same bytes and
// that page i is a full page of both images.
func (im *image) adopt(i int, src *image) (old *page) {
	if im.pages[i] == src.pages[i] {
		return nil
	}
	if im.owned[i] {
		old = im.pages[i]
	}
	im.pages[i], im.owned[i] = src.pages[i], false
	src.owned[i] = false
	return old
}

// Bytes returns a copy of the image as one slice.
func (im *image) Bytes() []byte {
	b := make([]byte, im.size)
	im.ReadAt(b, 0)
	return b
}

// XorByte XORs the byte at off (inside the image) with mask.
func (im *image) XorByte(off int64, mask byte) {
	if off < 0 || off >= im.size {
		panic(fmt.Sprintf("sim: image.XorByte at %d outside [0, %d)", off, im.size))
	}
	im.writable(int(off / pageSize))[off%pageSize] ^= mask
}
