package sim

import (
	"bytes"
	"testing"
	"time"
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
