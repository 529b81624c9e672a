package osenv

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"walraft/core/env"
)

func newTestFS(t *testing.T, dir string) (env.FS, *Loop) {
	t.Helper()
	l := NewLoop()
	t.Cleanup(l.Close)
	fs, err := NewFS(dir, l)
	if err != nil {
		t.Fatal(err)
	}
	return fs, l
}

// waitErr waits for a completion posted to a channel.
func waitErr(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never completed", what)
		return nil
	}
}

func syncFile(t *testing.T, l *Loop, f env.File) error {
	t.Helper()
	ch := make(chan error, 1)
	l.Do(func() { f.Sync(func(err error) { ch <- err }) })
	return waitErr(t, ch, "Sync")
}

func syncDir(t *testing.T, l *Loop, fs env.FS) error {
	t.Helper()
	ch := make(chan error, 1)
	l.Do(func() { fs.SyncDir(func(err error) { ch <- err }) })
	return waitErr(t, ch, "SyncDir")
}

func readAll(t *testing.T, f env.File) []byte {
	t.Helper()
	b := make([]byte, f.Size())
	if n, err := f.ReadAt(b, 0); err != nil || n != len(b) {
		t.Fatalf("ReadAt(%d bytes, 0) = %d, %v", len(b), n, err)
	}
	return b
}

func TestFSRoundTrip(t *testing.T) {
	dir := t.TempDir()
	fs, l := newTestFS(t, dir)

	f, err := fs.Create("wal/p0/seg-0001")
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != "wal/p0/seg-0001" {
		t.Fatalf("Name() = %q", f.Name())
	}
	for _, s := range []string{"hello ", "world", ""} {
		if n, err := f.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := string(readAll(t, f)); got != "hello world" {
		t.Fatalf("read %q", got)
	}
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("!")); err != nil {
		t.Fatal(err)
	}
	if got := string(readAll(t, f)); got != "hello!" || f.Size() != 6 {
		t.Fatalf("after truncate+append: %q size %d", got, f.Size())
	}
	p := make([]byte, 4)
	if n, err := f.ReadAt(p, 4); n != 2 || err != io.EOF {
		t.Fatalf("short ReadAt = %d, %v; want 2, io.EOF", n, err)
	}
	if err := syncFile(t, l, f); err != nil {
		t.Fatal(err)
	}

	// Listing: sorted by full name ('-' sorts before '/'), filtered by prefix.
	for _, n := range []string{"wal/p0-x", "wal/p1/seg-0001", "raft/hs"} {
		g, err := fs.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		g.Close()
	}
	if err := syncDir(t, l, fs); err != nil {
		t.Fatal(err)
	}
	got, err := fs.List("wal/")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"wal/p0-x", "wal/p0/seg-0001", "wal/p1/seg-0001"}
	if !slices.Equal(got, want) {
		t.Fatalf("List(wal/) = %q, want %q", got, want)
	}
	if all, _ := fs.List(""); len(all) != 4 {
		t.Fatalf("List(\"\") = %q, want 4 names", all)
	}

	if err := fs.Remove("wal/p0-x"); err != nil {
		t.Fatal(err)
	}
	if err := syncDir(t, l, fs); err != nil {
		t.Fatal(err)
	}
	got, _ = fs.List("wal/p0")
	if !slices.Equal(got, []string{"wal/p0/seg-0001"}) {
		t.Fatalf("after Remove, List(wal/p0) = %q", got)
	}
	// The names are plain files under dir.
	if b, err := os.ReadFile(filepath.Join(dir, "wal", "p0", "seg-0001")); err != nil || string(b) != "hello!" {
		t.Fatalf("on disk: %q, %v", b, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFSReopenSeesDurableData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node1") // NewFS creates it
	fs, l := newTestFS(t, dir)
	f, err := fs.Create("log/a")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789"), 1000)
	f.Write(data)
	if err := syncFile(t, l, f); err != nil {
		t.Fatal(err)
	}
	if err := syncDir(t, l, fs); err != nil {
		t.Fatal(err)
	}
	f.Close()

	fs2, _ := newTestFS(t, dir) // a "restarted" node on the same dir
	g, err := fs2.Open("log/a")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Size() != int64(len(data)) || !bytes.Equal(readAll(t, g), data) {
		t.Fatalf("reopened file has %d bytes, want the %d written", g.Size(), len(data))
	}
	// Appends continue at the end.
	g.Write([]byte("tail"))
	if b := readAll(t, g); string(b[len(data):]) != "tail" {
		t.Fatalf("append after reopen: tail %q", b[len(data):])
	}
}

func TestFSSyncCompletesOnLoopInOrder(t *testing.T) {
	fs, l := newTestFS(t, t.TempDir())
	f, err := fs.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var order []int
	offLoop := 0
	all := make(chan struct{})
	l.Do(func() {
		for i := range n {
			f.Write([]byte{byte(i)})
			f.Sync(func(err error) {
				if err != nil {
					t.Errorf("sync %d: %v", i, err)
				}
				if !l.onLoop() {
					offLoop++
				}
				order = append(order, i)
				if len(order) == n {
					close(all)
				}
			})
		}
		if len(order) != 0 {
			t.Error("a Sync completed synchronously inside the call")
		}
	})
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatal("200 syncs never completed")
	}
	l.Do(func() {
		if offLoop != 0 {
			t.Errorf("%d sync completions ran off the loop", offLoop)
		}
		for i, v := range order {
			if v != i {
				t.Fatalf("sync %d completed at position %d", v, i)
			}
		}
	})
	f.Close()
}

func TestFSErrorMapping(t *testing.T) {
	fs, _ := newTestFS(t, t.TempDir())
	f, err := fs.Create("a/b")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if f, err := fs.Create("file"); err != nil {
		t.Fatal(err)
	} else {
		f.Close()
	}
	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"create existing", func() error { _, err := fs.Create("a/b"); return err }, env.ErrExist},
		{"open missing", func() error { _, err := fs.Open("nope"); return err }, env.ErrNotExist},
		{"open missing in missing dir", func() error { _, err := fs.Open("x/y/z"); return err }, env.ErrNotExist},
		{"open a directory", func() error { _, err := fs.Open("a"); return err }, env.ErrNotExist},
		{"open under a file", func() error { _, err := fs.Open("file/x"); return err }, env.ErrNotExist},
		{"remove missing", func() error { return fs.Remove("nope") }, env.ErrNotExist},
		{"remove a directory", func() error { return fs.Remove("a") }, env.ErrNotExist},
		{"create over a directory", func() error { _, err := fs.Create("a"); return err }, ErrBadName},
		{"create under a file", func() error { _, err := fs.Create("file/x"); return err }, ErrBadName},
		{"empty name", func() error { _, err := fs.Create(""); return err }, ErrBadName},
		{"absolute", func() error { _, err := fs.Create("/etc/x"); return err }, ErrBadName},
		{"dot-dot", func() error { _, err := fs.Open("../x"); return err }, ErrBadName},
		{"inner dot-dot", func() error { _, err := fs.Create("a/../../x"); return err }, ErrBadName},
		{"dot", func() error { return fs.Remove("./a/b") }, ErrBadName},
		{"empty component", func() error { _, err := fs.Create("a//c"); return err }, ErrBadName},
		{"trailing slash", func() error { _, err := fs.Create("a/"); return err }, ErrBadName},
		{"NUL", func() error { _, err := fs.Create("a\x00b"); return err }, ErrBadName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFSClosedAndRemovedHandles(t *testing.T) {
	fs, l := newTestFS(t, t.TempDir())
	f, err := fs.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("data"))
	// A sync issued before Close still completes, and after it the
	// handle refuses work; a Sync issued after Close fails with ErrClosed
	// (still asynchronously, after the earlier one).
	var results []error
	done := make(chan struct{})
	l.Do(func() {
		f.Sync(func(err error) { results = append(results, err) })
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		f.Sync(func(err error) { results = append(results, err); close(done) })
	})
	<-done
	l.Do(func() {
		if len(results) != 2 || results[0] != nil || !errors.Is(results[1], env.ErrClosed) {
			t.Errorf("sync results %v, want [nil, ErrClosed]", results)
		}
	})
	if _, err := f.Write([]byte("x")); !errors.Is(err, env.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, env.ErrClosed) {
		t.Fatalf("ReadAt after Close: %v", err)
	}
	if err := f.Truncate(0); !errors.Is(err, env.ErrClosed) {
		t.Fatalf("Truncate after Close: %v", err)
	}
	if err := f.Close(); !errors.Is(err, env.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}

	// Remove invalidates every open handle of the name.
	g1, _ := fs.Open("f")
	g2, _ := fs.Open("f")
	if err := fs.Remove("f"); err != nil {
		t.Fatal(err)
	}
	for _, g := range []env.File{g1, g2} {
		if _, err := g.Write([]byte("x")); !errors.Is(err, env.ErrClosed) {
			t.Fatalf("Write to a removed file's handle: %v", err)
		}
	}
	if _, err := fs.Open("f"); !errors.Is(err, env.ErrNotExist) {
		t.Fatalf("Open after Remove: %v", err)
	}
	// The name is free again.
	h, err := fs.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	if h.Size() != 0 {
		t.Fatalf("re-created file has size %d", h.Size())
	}
	h.Close()
}

func TestFSBadInput(t *testing.T) {
	fs, _ := newTestFS(t, t.TempDir())
	f, err := fs.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("abc"))
	for _, size := range []int64{-1, 4} {
		if err := f.Truncate(size); err == nil {
			t.Fatalf("Truncate(%d) of a 3-byte file succeeded", size)
		}
	}
	if err := f.Truncate(3); err != nil {
		t.Fatalf("Truncate to the current size: %v", err)
	}
	if _, err := f.ReadAt(make([]byte, 1), -1); err == nil {
		t.Fatal("ReadAt at a negative offset succeeded")
	}
	if _, err := NewFS(filepath.Join(t.TempDir(), "x"), nil); err == nil {
		t.Fatal("NewFS with a nil loop succeeded")
	}
	file := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(file, nil, 0o644)
	l := NewLoop()
	defer l.Close()
	if _, err := NewFS(file, l); err == nil {
		t.Fatal("NewFS on a regular file succeeded")
	}
}

// TestFSSyncFailureIsSticky makes a real fsync fail (its descriptor closed
// underneath) and checks that later syncs of the handle fail too instead of
// reporting a success that proves nothing.
func TestFSSyncFailureIsSticky(t *testing.T) {
	fs, l := newTestFS(t, t.TempDir())
	f, err := fs.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	h := f.(*file)
	h.f.Close() // sabotage: the next fsync gets EBADF-like ErrClosed from os
	if err := syncFile(t, l, f); !errors.Is(err, env.ErrIO) {
		t.Fatalf("first sync after the failure: %v, want ErrIO", err)
	}
	if err := syncFile(t, l, f); !errors.Is(err, env.ErrIO) {
		t.Fatalf("second sync: %v, want the sticky ErrIO", err)
	}
}

func TestFSSyncDirOrderAndStickiness(t *testing.T) {
	fs, l := newTestFS(t, t.TempDir())
	var order []int
	done := make(chan struct{})
	l.Do(func() {
		for i := range 50 {
			if i%10 == 0 {
				f, err := fs.Create("d" + string(rune('a'+i/10)) + "/f")
				if err != nil {
					t.Error(err)
					return
				}
				f.Close()
			}
			fs.SyncDir(func(err error) {
				if err != nil {
					t.Errorf("SyncDir %d: %v", i, err)
				}
				order = append(order, i)
				if i == 49 {
					close(done)
				}
			})
		}
	})
	<-done
	l.Do(func() {
		for i, v := range order {
			if v != i {
				t.Fatalf("SyncDir %d completed at position %d", v, i)
			}
		}
	})

	// A failed directory fsync fails every later SyncDir.
	s := fs.(*osFS)
	s.mu.Lock()
	s.dirty["no/such/dir"] = struct{}{}
	s.mu.Unlock()
	if err := syncDir(t, l, fs); !errors.Is(err, env.ErrIO) {
		t.Fatalf("SyncDir of a missing directory: %v, want ErrIO", err)
	}
	if err := syncDir(t, l, fs); !errors.Is(err, env.ErrIO) {
		t.Fatalf("SyncDir after a failure: %v, want the sticky ErrIO", err)
	}
}

// TestFSWriteAt: WriteAt overwrites bytes inside the file in place (the
// handle's own descriptor is O_APPEND, where Linux would ignore the
// offset), never extends it, and a later append still goes to the end.
func TestFSWriteAt(t *testing.T) {
	fs, l := newTestFS(t, t.TempDir())
	f, err := fs.Create("raft/seg-0001")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello world")); err != nil {
		t.Fatal(err)
	}
	if n, err := f.WriteAt([]byte("W0"), 6); err != nil || n != 2 {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	if _, err := f.WriteAt([]byte("xyz"), 9); err == nil {
		t.Fatal("WriteAt past the end succeeded")
	}
	if _, err := f.Write([]byte("!")); err != nil {
		t.Fatal(err)
	}
	if got := string(readAll(t, f)); got != "hello W0rld!" || f.Size() != 12 {
		t.Fatalf("after WriteAt and an append: %q size %d", got, f.Size())
	}
	if err := syncFile(t, l, f); err != nil {
		t.Fatal(err)
	}
	g, err := fs.Open("raft/seg-0001")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(readAll(t, g)); got != "hello W0rld!" {
		t.Fatalf("reopened: %q", got)
	}
}
