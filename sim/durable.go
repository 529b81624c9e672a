package sim

import (
	"slices"
	"sort"
	"strings"

	"walraft/core/env"
)

// Read-only access to the durable disk images for an oracle: what a crash
// now would leave, and what changed in it since an earlier look, so a
// checker can decode the images incrementally instead of copying and
// re-reading whole files on every check.

// durChange is one change of a file's durable image: at durable version
// ver, bytes at or past offset lo may differ from before.
type durChange struct {
	ver uint64
	lo  int64
}

// DurableVersion returns a counter that grows whenever any durable image of
// the disk or its durable namespace changes (a completed sync, a completed
// SyncDir, a crash that keeps torn blocks, latent corruption). Equal
// versions mean the durable state is unchanged.
func (d *Disk) DurableVersion() uint64 { return d.durVer }

// DurableStat describes one file of the durable namespace.
type DurableStat struct {
	// Inode identifies the file behind the name: a name removed and created
	// again gets a new inode.
	Inode uint64
	// Size is the durable image's size in bytes.
	Size int64
}

// DurableStat returns name's durable file, or false if a crash now would
// leave no such file.
func (d *Disk) DurableStat(name string) (DurableStat, bool) {
	ino, ok := d.durLookup(name)
	if !ok {
		return DurableStat{}, false
	}
	return DurableStat{Inode: ino.id, Size: ino.durable.Len()}, true
}

// DurableChangedFrom returns the lowest byte offset of name's durable image
// that may have changed after durable version v (a truncation counts at the
// new size), or -1 if nothing changed since v or name is not durable. It
// looks only at the file's content: a caller also compares DurableStat's
// Inode to see the name point at another file.
func (d *Disk) DurableChangedFrom(name string, v uint64) int64 {
	ino, ok := d.durLookup(name)
	if !ok {
		return -1
	}
	lo := int64(-1)
	for i := len(ino.durChanges) - 1; i >= 0 && ino.durChanges[i].ver > v; i-- {
		if c := ino.durChanges[i].lo; lo < 0 || c < lo {
			lo = c
		}
	}
	return lo
}

// ReadDurable copies bytes of name's durable image at off into p and
// returns how many it copied (fewer than len(p) at the end of the image, 0
// if name is not durable). It never changes anything.
func (d *Disk) ReadDurable(name string, p []byte, off int64) int {
	ino, ok := d.durLookup(name)
	if !ok || off < 0 || off >= ino.durable.Len() {
		return 0
	}
	return ino.durable.ReadAt(p, off)
}

// durableChanged records a change of ino's durable image from offset lo.
func (d *Disk) durableChanged(ino *diskInode, lo int64) {
	d.durVer++
	for _, dl := range ino.dirVers {
		dl.changed(ino, d.durVer)
	}
	if lo < 0 {
		lo = 0
	}
	ino.durChanges = append(ino.durChanges, durChange{ver: d.durVer, lo: lo})
}

// deltaLow returns the lowest offset applying delta to dur changes, or -1
// if it changes nothing.
func deltaLow(dur *image, delta *diskDelta, blockSize int) int64 {
	lo := int64(-1)
	if delta.size != dur.Len() {
		lo = min(delta.size, dur.Len())
	}
	if len(delta.blocks) > 0 {
		if b := int64(delta.blocks[0].b) * int64(blockSize); lo < 0 || b < lo {
			lo = b
		}
	}
	return lo
}

// SetSendObserver makes fn see every message a live process sends, when it
// is sent and before the network decides whether it is delivered (a
// partition, a loss or a down destination drops it afterwards): an oracle
// judges what a node promised, not what arrived. fn must not keep msg
// (the receiver owns it) nor send anything; nil removes the observer.
func (w *World) SetSendObserver(fn func(from, to env.NodeID, msg []byte)) { w.net.observe = fn }

// DurableSource is a read-only view of a disk's durable state with the
// method set of reclog.ImageSource (sim does not import the core's storage
// packages; the interface is satisfied structurally).
type DurableSource struct{ d *Disk }

// DurableSource returns the disk's read-only durable view.
func (d *Disk) DurableSource() DurableSource { return DurableSource{d} }

// Version is Disk.DurableVersion.
func (s DurableSource) Version() uint64 { return s.d.durVer }

// List returns the durable names that start with prefix, sorted. The
// slice is shared: the caller must not modify it.
func (s DurableSource) List(prefix string) []string {
	names := s.d.dur.names
	i, _ := slices.BinarySearch(names, prefix)
	// The names with the prefix are the run from i on.
	j := i + sort.Search(len(names)-i, func(k int) bool { return !strings.HasPrefix(names[i+k], prefix) })
	return names[i:j:j]
}

// Stat is Disk.DurableStat as (inode, size, ok).
func (s DurableSource) Stat(name string) (uint64, int64, bool) {
	st, ok := s.d.DurableStat(name)
	return st.Inode, st.Size, ok
}

// ChangedFrom is Disk.DurableChangedFrom.
func (s DurableSource) ChangedFrom(name string, v uint64) int64 {
	return s.d.DurableChangedFrom(name, v)
}

// PrefixVersion returns a version that grows whenever the durable image of
// a file whose name starts with prefix, or the durable namespace's names
// under prefix, change: a reader of one directory (a log's segments) need
// not look again when only other files or names changed. For a prefix
// that is not a directory ("" or not ending in '/') it is Version.
func (s DurableSource) PrefixVersion(prefix string) uint64 {
	d := s.d
	if prefix == "" || prefix[len(prefix)-1] != '/' {
		return d.durVer
	}
	if dl := d.dirVers[prefix]; dl != nil {
		return max(dl.nsVer, dl.ver)
	}
	return 0 // no file was ever created under prefix
}

// ChangedNames appends to dst the durable names under the directory
// prefix whose durable images changed after version v, or that were added
// to the durable namespace after v, each once, in no particular order,
// and reports true; it reports false (and returns dst as it was) when it
// cannot tell: prefix is not a directory ("" or not ending in '/'), or a
// durable name under it went away or may name another file since v. A
// reader that looked at every file of the directory at version v and
// sees true needs to look again only at the names returned: every other
// durable file under prefix is the same file, with the same image, as at
// v (reclog.Scanner uses it so that a log of many segments costs what
// changed, not what it holds, even while new segments keep coming).
func (s DurableSource) ChangedNames(prefix string, v uint64, dst []string) ([]string, bool) {
	d := s.d
	if prefix == "" || prefix[len(prefix)-1] != '/' {
		return dst, false
	}
	dl := d.dirVers[prefix]
	if dl == nil {
		return dst, true // no file was ever created under prefix
	}
	if dl.nsVer > v {
		return dst, false
	}
	n := len(dst)
	for i := len(dl.changes) - 1; i >= 0 && dl.changes[i].ver > v; i-- {
		ino := dl.changes[i].ino
		if cur, _ := d.durLookup(ino.name); cur != ino || slices.Contains(dst[n:], ino.name) {
			// Not (or no longer) durable under its name: not in the
			// durable namespace a reader lists. Or listed already.
			continue
		}
		dst = append(dst, ino.name)
	}
	return dst, true
}

// dirLog is the change log of one directory prefix: the durable version
// of the last change under it (ver), and the files whose images changed or
// that joined the durable names, in version order, a file's run of
// consecutive changes kept as its last one (which is all ChangedNames
// needs: a file changed after v if its last change is after v). nsVer is
// the durable version at which durable names under it last went away or
// may have come to name other files.
//
// The volatile side: volSeq counts the changes of the volatile names
// under it, and events lists them (Create with its inode; Remove, and a
// Crash putting the durable names back, as resets) from the oldest one a
// SyncDir still pending or to come may need on. A SyncDir's snapshot keeps
// every directory's count, and when it completes, the events between the
// durable namespace's count and its own are what changed in the directory
// (durableNames). Equal counts mean the same names and files. Creates
// only: the volatile names grew from the durable ones by those creates,
// so the durable names did too, and the new names are logged as changes.
// Any reset, and nsVer moves (a name created and lost in a crash counts as
// a reset too, which only costs a reader a longer look).
type dirLog struct {
	ver     uint64
	nsVer   uint64
	changes []dirChange
	volSeq  uint64
	events  []nsEvent
}

// nsEvent is a change of a directory's volatile names: the count it made,
// and the inode created, nil for a reset (a Remove, or a Crash).
type nsEvent struct {
	seq uint64
	ino *diskInode
}

// volEvent records a change of the volatile names: ino created, or a reset
// when ino is nil.
func (dl *dirLog) volEvent(ino *diskInode) {
	dl.volSeq++
	dl.events = append(dl.events, nsEvent{seq: dl.volSeq, ino: ino})
}

// durableNames records a completed SyncDir at durable version ver that
// took the directory's names from the snapshot at count from (the
// durable namespace's) to the one at count to: the events in between are
// what changed. It then drops the events no later SyncDir needs (a later
// snapshot has a count of to or more; SyncDirs complete in issue order).
func (dl *dirLog) durableNames(from, to, ver uint64) {
	if to == from {
		return
	}
	reset := false
	i := 0
	for ; i < len(dl.events) && dl.events[i].seq <= to; i++ {
		if dl.events[i].seq > from && dl.events[i].ino == nil {
			reset = true
		}
	}
	if reset {
		dl.nsVer, dl.ver = ver, ver
	} else {
		for _, e := range dl.events[:i] {
			if e.seq > from {
				dl.changed(e.ino, ver)
			}
		}
	}
	n := copy(dl.events, dl.events[i:])
	clear(dl.events[n:])
	dl.events = dl.events[:n]
}

// dirChange says the durable image of ino changed at version ver.
type dirChange struct {
	ver uint64
	ino *diskInode
}

// changed records a change of ino's durable image at version ver.
func (dl *dirLog) changed(ino *diskInode, ver uint64) {
	dl.ver = ver
	if n := len(dl.changes); n > 0 && dl.changes[n-1].ino == ino {
		dl.changes[n-1].ver = ver
		return
	}
	dl.changes = append(dl.changes, dirChange{ver: ver, ino: ino})
}

// dirLogs returns the change logs of name's directory prefixes ("a/" and
// "a/b/" for "a/b/c"), creating them as needed.
func (d *Disk) dirLogs(name string) []*dirLog {
	var out []*dirLog
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		if d.dirVers == nil {
			d.dirVers = map[string]*dirLog{}
		}
		dl := d.dirVers[name[:i+1]]
		if dl == nil {
			dl = &dirLog{}
			d.dirVers[name[:i+1]] = dl
		}
		out = append(out, dl)
	}
	return out
}

// ReadAt is Disk.ReadDurable.
func (s DurableSource) ReadAt(name string, p []byte, off int64) int {
	return s.d.ReadDurable(name, p, off)
}

// VolatileSource is a read-only view of a disk's volatile state (what a
// read sees: the page cache over the medium) with the method set of
// reclog.ImageSource: what a process that starts now recovers. It is meant
// for one decode by a fresh reader, right away (an oracle's view of what a
// node killed with its machine up reads back at boot): its Version never
// moves and ChangedFrom reports every file changed from offset 0, so a
// reader that kept state from an earlier Scan must not use it.
type VolatileSource struct{ d *Disk }

// VolatileSource returns the disk's read-only volatile view.
func (d *Disk) VolatileSource() VolatileSource { return VolatileSource{d} }

// Version is constant (see VolatileSource).
func (s VolatileSource) Version() uint64 { return 1 }

// List returns the volatile names that start with prefix, sorted.
func (s VolatileSource) List(prefix string) []string {
	names := s.d.volNames
	i, _ := slices.BinarySearch(names, prefix)
	j := i
	for j < len(names) && strings.HasPrefix(names[j], prefix) {
		j++
	}
	return slices.Clone(names[i:j])
}

// Stat returns the inode and volatile size of name.
func (s VolatileSource) Stat(name string) (uint64, int64, bool) {
	ino, ok := s.d.vol[name]
	if !ok {
		return 0, 0, false
	}
	return ino.id, ino.data.Len(), true
}

// ChangedFrom reports every file changed from its first byte.
func (s VolatileSource) ChangedFrom(string, uint64) int64 { return 0 }

// ReadAt copies the volatile bytes of name at off into p and returns how
// many (fewer at the end of the file, 0 if it does not exist).
func (s VolatileSource) ReadAt(name string, p []byte, off int64) int {
	ino, ok := s.d.vol[name]
	if !ok || off >= ino.data.Len() {
		return 0
	}
	n := min(int64(len(p)), ino.data.Len()-off)
	ino.data.ReadAt(p[:n], off)
	return int(n)
}
