package sim

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"walraft/core/env"
)

// TestDurableChanges checks the oracle's view of a disk: the durable
// version moves on exactly the durable changes (completed sync, SyncDir,
// torn crash, corruption), DurableChangedFrom names the lowest offset each
// touched, and the durable view reads what DurableImage copies.
func TestDurableChanges(t *testing.T) {
	cfg := DefaultDiskConfig()
	cfg.BlockSize = 512
	s, d := newTestDisk(1, cfg)
	src := d.DurableSource()
	fs := d.FS(nil)
	run := func() { s.RunUntil(s.Now() + time.Second) }

	f := mustCreate(t, fs, "a")
	v0 := src.Version()
	mustWrite(t, f, bytes.Repeat([]byte{1}, 1000))
	if src.Version() != v0 {
		t.Fatal("a volatile write moved the durable version")
	}
	f.Sync(func(error) {})
	run()
	v1 := src.Version()
	if v1 == v0 {
		t.Fatal("a completed sync did not move the durable version")
	}
	if got := src.List(""); len(got) != 0 {
		t.Fatalf("file durable before SyncDir: %v", got)
	}
	fs.SyncDir(func(error) {})
	run()
	v2 := src.Version()
	if v2 == v1 || len(src.List("a")) != 1 {
		t.Fatalf("SyncDir: version %d -> %d, names %v", v1, v2, src.List(""))
	}
	if lo := src.ChangedFrom("a", v0); lo != 0 {
		t.Fatalf("ChangedFrom(v0) = %d, want 0", lo)
	}
	if lo := src.ChangedFrom("a", v2); lo != -1 {
		t.Fatalf("ChangedFrom(now) = %d, want -1", lo)
	}
	// An append changes the durable image from the block holding the old
	// end on.
	mustWrite(t, f, bytes.Repeat([]byte{2}, 100))
	f.Sync(func(error) {})
	run()
	if lo := src.ChangedFrom("a", v2); lo != 512 {
		t.Fatalf("append: ChangedFrom = %d, want 512", lo)
	}
	v3 := src.Version()
	if !d.CorruptDurable("a", 10, 2) {
		t.Fatal("corrupt failed")
	}
	if lo := src.ChangedFrom("a", v3); lo != 10 {
		t.Fatalf("corruption: ChangedFrom = %d, want 10", lo)
	}
	img, _ := d.DurableImage("a")
	got := make([]byte, len(img))
	if n := src.ReadAt("a", got, 0); n != len(img) || !bytes.Equal(got, img) {
		t.Fatal("ReadAt differs from DurableImage")
	}
	// A torn crash that keeps an unsynced block changes the image there.
	torn := cfg
	torn.TornKeepProb = 1
	d.SetConfig(torn)
	mustWrite(t, f, bytes.Repeat([]byte{3}, 600))
	v4 := src.Version()
	d.Crash()
	if lo := src.ChangedFrom("a", v4); lo != 1024 {
		t.Fatalf("torn crash: ChangedFrom = %d, want 1024", lo)
	}
	if st, ok := d.DurableStat("a"); !ok || st.Size != 1700 {
		t.Fatalf("after torn crash: %+v %v", st, ok)
	}
}

// TestPrefixVersion: a directory's version moves on every durable change
// of a file under it (sync, torn crash, corruption) and on every change of
// the durable names under it (a SyncDir after a create or a remove there),
// and stays put when only files or names elsewhere change, so a reader of
// one log may skip its scan; a prefix that is not a directory is the whole
// disk's version.
func TestPrefixVersion(t *testing.T) {
	cfg := DefaultDiskConfig()
	s, d := newTestDisk(1, cfg)
	src := d.DurableSource()
	fs := d.FS(nil)
	run := func() { s.RunUntil(s.Now() + time.Second) }
	a := mustCreate(t, fs, "raft/a")
	w := mustCreate(t, fs, "wal/t-0/w")
	fs.SyncDir(func(error) {})
	run()
	ver := func(p string) uint64 { return src.PrefixVersion(p) }
	raft, wal, sub := ver("raft/"), ver("wal/"), ver("wal/t-0/")

	mustWrite(t, w, []byte("x"))
	w.Sync(func(error) {})
	run()
	if ver("raft/") != raft {
		t.Fatal("a sync under wal/ moved raft/")
	}
	if ver("wal/") == wal || ver("wal/t-0/") == sub {
		t.Fatal("a sync under wal/t-0/ did not move wal/ and wal/t-0/")
	}
	if ver("") != src.Version() || ver("raft") != src.Version() {
		t.Fatal("a prefix that is not a directory is not the disk's version")
	}

	mustWrite(t, a, []byte("y"))
	a.Sync(func(error) {})
	run()
	if ver("raft/") == raft {
		t.Fatal("a sync under raft/ did not move raft/")
	}
	raft = ver("raft/")
	if !d.CorruptDurable("raft/a", 0, 1) || ver("raft/") == raft {
		t.Fatal("corruption under raft/ did not move raft/")
	}
	raft = ver("raft/")
	torn := cfg
	torn.TornKeepProb = 1
	d.SetConfig(torn)
	mustWrite(t, a, []byte("z"))
	d.Crash()
	if ver("raft/") == raft {
		t.Fatal("a torn crash that kept a block under raft/ did not move raft/")
	}
	raft = ver("raft/")
	fs = d.FS(nil)
	mustCreate(t, fs, "other")
	mustCreate(t, fs, "wal/t-0/x")
	fs.SyncDir(func(error) {})
	run()
	if ver("raft/") != raft {
		t.Fatal("a change of the durable names outside raft/ moved raft/")
	}
	if ver("wal/t-0/") == sub {
		t.Fatal("a change of the durable names under wal/t-0/ did not move wal/t-0/")
	}
	mustCreate(t, fs, "raft/b")
	fs.SyncDir(func(error) {})
	run()
	if ver("raft/") == raft {
		t.Fatal("a create under raft/ made durable did not move raft/")
	}
	raft = ver("raft/")
	fs.SyncDir(func(error) {})
	run()
	if ver("raft/") != raft {
		t.Fatal("a SyncDir that changed no name moved raft/")
	}
	if err := fs.Remove("raft/b"); err != nil {
		t.Fatal(err)
	}
	if ver("raft/") != raft {
		t.Fatal("a remove not yet made durable moved raft/")
	}
	fs.SyncDir(func(error) {})
	run()
	if ver("raft/") == raft {
		t.Fatal("a remove under raft/ made durable did not move raft/")
	}
}

// TestChangedNames: ChangedNames names exactly the durable files of a
// directory whose images changed after a version (a sync, a torn crash,
// corruption) or that joined the durable names since (a create, then a
// SyncDir), each once however often it changed, and none of another
// directory or not yet in the durable namespace; it cannot tell (false)
// once a durable name under the directory went away (a remove) or may
// name another file (a crash lost a name created there) after the
// version, or for a prefix that is not a directory.
func TestChangedNames(t *testing.T) {
	cfg := DefaultDiskConfig()
	s, d := newTestDisk(1, cfg)
	src := d.DurableSource()
	fs := d.FS(nil)
	run := func() { s.RunUntil(s.Now() + time.Second) }
	sync := func(f env.File, b string) {
		mustWrite(t, f, []byte(b))
		f.Sync(func(error) {})
		run()
	}
	a1 := mustCreate(t, fs, "raft/1")
	a2 := mustCreate(t, fs, "raft/2")
	w := mustCreate(t, fs, "wal/t-0/w")
	fs.SyncDir(func(error) {})
	run()
	v0 := src.Version()
	sync(a1, "x")
	sync(w, "y")
	sync(a1, "z")
	v1 := src.Version()
	sync(a2, "u")
	v2 := src.Version()
	if !d.CorruptDurable("raft/1", 0, 1) {
		t.Fatal("CorruptDurable failed")
	}
	v3 := src.Version()
	late := mustCreate(t, fs, "raft/3") // synced, but not in the durable namespace
	sync(late, "v")
	v4 := src.Version()
	torn := cfg
	torn.TornKeepProb = 1
	d.SetConfig(torn)
	mustWrite(t, a2, []byte("w"))
	d.Crash()
	for _, c := range []struct {
		prefix string
		v      uint64
		want   []string // sorted; nil with ok false
		ok     bool
	}{
		{"raft/", v0, []string{"raft/1", "raft/2"}, true},
		{"raft/", v1, []string{"raft/1", "raft/2"}, true},
		{"raft/", v2, []string{"raft/1", "raft/2"}, true},
		{"raft/", v3, []string{"raft/2"}, true},
		{"raft/", v4, []string{"raft/2"}, true},
		{"raft/", src.Version(), []string{}, true},
		{"wal/", v0, []string{"wal/t-0/w"}, true},
		{"wal/t-0/", v0, []string{"wal/t-0/w"}, true},
		{"wal/t-0/", v1, []string{}, true},
		{"nothing/", v0, []string{}, true},
		{"raft", v0, nil, false},
		{"", v0, nil, false},
		{"raft/", v0 - 1, []string{"raft/1", "raft/2"}, true}, // names added by the first SyncDir
		{"wal/t-0/", v0 - 1, []string{"wal/t-0/w"}, true},
	} {
		got, ok := src.ChangedNames(c.prefix, c.v, []string{"kept"})
		if ok != c.ok || got[0] != "kept" {
			t.Fatalf("ChangedNames(%q, %d) = %v, %v; want ok %v and dst kept", c.prefix, c.v, got, ok, c.ok)
		}
		got = got[1:]
		slices.Sort(got)
		if ok && !slices.Equal(got, c.want) {
			t.Errorf("ChangedNames(%q, %d) = %v, want %v", c.prefix, c.v, got, c.want)
		}
	}
	fs = d.FS(nil)
	// raft/3, created and lost in the crash, may have named another file
	// as far as the disk knows (which only costs a reader a longer look):
	// the next SyncDir settles that.
	fs.SyncDir(func(error) {})
	run()
	v5 := src.Version()
	mustCreate(t, fs, "wal/t-0/v")
	fs.SyncDir(func(error) {})
	run()
	if got, ok := src.ChangedNames("raft/", v5, nil); !ok || len(got) != 0 {
		t.Errorf("ChangedNames(raft/) after names changed only under wal/ = %v, %v; want none, true", got, ok)
	}
	if got, ok := src.ChangedNames("wal/", v5, nil); !ok || !slices.Equal(got, []string{"wal/t-0/v"}) {
		t.Errorf("ChangedNames(wal/) after wal/t-0/v was created = %v, %v; want [wal/t-0/v], true", got, ok)
	}
	mustCreate(t, fs, "raft/4")
	v6 := src.Version()
	fs.SyncDir(func(error) {})
	run()
	if got, ok := src.ChangedNames("raft/", v6, nil); !ok || !slices.Equal(got, []string{"raft/4"}) {
		t.Errorf("ChangedNames(raft/) after raft/4 was created = %v, %v; want [raft/4], true", got, ok)
	}
	if err := fs.Remove("raft/4"); err != nil {
		t.Fatal(err)
	}
	fs.SyncDir(func(error) {})
	run()
	if _, ok := src.ChangedNames("raft/", v6, nil); ok {
		t.Error("ChangedNames(raft/) answered across a remove under raft/")
	}
	// A name created and lost in a crash may have named another file.
	v7 := src.Version()
	mustCreate(t, fs, "raft/5")
	d.Crash()
	fs = d.FS(nil)
	fs.SyncDir(func(error) {})
	run()
	if _, ok := src.ChangedNames("raft/", v7, nil); ok {
		t.Error("ChangedNames(raft/) answered across a crash that lost a name under raft/")
	}
	if _, ok := src.ChangedNames("wal/", v7, nil); !ok {
		t.Error("ChangedNames(wal/) gave up after a crash that lost no name under wal/")
	}
}

// TestNameListsFollowNamespaces: the name lists the disk keeps beside its
// volatile namespace (sorted names and their files, updated on create and
// remove) always agree with the namespace map, and the durable namespace
// is, name for name and file for file, the volatile namespace as it was at
// the call of the last SyncDir that succeeded, through creates (at the end
// of the lists or not), removes, dir syncs and crashes: a snapshot, which
// shares the arrays of the volatile lists, never sees a later change.
func TestNameListsFollowNamespaces(t *testing.T) {
	s, d := newTestDisk(3, DefaultDiskConfig())
	rng := NewStreams(3).Stream("names")
	fs := d.FS(nil)
	type entry struct {
		name string
		ino  *diskInode
	}
	snapshot := func() []entry { // the volatile namespace, from its map
		var out []entry
		for _, name := range sortedNames(d.vol) {
			out = append(out, entry{name, d.vol[name]})
		}
		return out
	}
	var durable []entry // what the durable namespace must be
	next := 0           // names counted up, so most creates append
	for step := 0; step < 3000; step++ {
		var name string
		if rng.Chance(0.5) {
			name = fmt.Sprintf("d%d/f%04d", rng.IntN(3), next)
			next++
		} else {
			name = fmt.Sprintf("d%d/f%04d", rng.IntN(3), rng.IntN(next+1))
		}
		switch x := rng.IntN(10); {
		case x < 4:
			_, _ = fs.Create(name)
		case x < 6:
			_ = fs.Remove(name)
		case x < 9:
			want := snapshot()
			fs.SyncDir(func(err error) {
				if err == nil {
					durable = want
				}
			})
			s.RunUntil(s.Now() + time.Duration(rng.IntN(20))*time.Millisecond)
		default:
			d.Crash()
			fs = d.FS(nil)
		}
		vol := snapshot()
		if len(d.volNames) != len(vol) || len(d.volInos) != len(vol) {
			t.Fatalf("step %d: volatile lists hold %d names and %d files, namespace %d", step, len(d.volNames), len(d.volInos), len(vol))
		}
		for i, e := range vol {
			if d.volNames[i] != e.name || d.volInos[i] != e.ino {
				t.Fatalf("step %d: volatile lists at %d hold %s (inode %d), namespace %s (inode %d)", step, i, d.volNames[i], d.volInos[i].id, e.name, e.ino.id)
			}
		}
		if got := d.DurableSource().List(""); len(got) != len(durable) || len(d.dur.inos) != len(durable) {
			t.Fatalf("step %d: durable namespace holds %d names and %d files, want %d", step, len(got), len(d.dur.inos), len(durable))
		}
		for i, e := range durable {
			if d.dur.names[i] != e.name || d.dur.inos[i] != e.ino {
				t.Fatalf("step %d: durable namespace at %d holds %s (inode %d), want %s (inode %d)", step, i, d.dur.names[i], d.dur.inos[i].id, e.name, e.ino.id)
			}
			if ino, ok := d.durLookup(e.name); !ok || ino != e.ino {
				t.Fatalf("step %d: durable lookup of %s found inode %v, want %d", step, e.name, ino, e.ino.id)
			}
		}
		if ino, ok := d.durLookup(name); ok != slices.ContainsFunc(durable, func(e entry) bool { return e.name == name }) {
			t.Fatalf("step %d: durable lookup of %s found %v, %v", step, name, ino, ok)
		}
	}
}
