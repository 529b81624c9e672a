package sim

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"walraft/core/env"
)

// TestDiskProcessExit pins what a process exit (kill -9, the machine up)
// keeps and what it does not, against a crash (power loss) after it.
func TestDiskProcessExit(t *testing.T) {
	const bs = 4
	a := []byte("AAAAAAAA") // synced before the exit
	b := []byte("BBBBBBBB") // written, not synced
	cat := func(ps ...[]byte) []byte { return bytes.Join(ps, nil) }
	tests := []struct {
		name string
		// after the exit, the new incarnation does this (nil: nothing).
		next func(t *testing.T, s *Scheduler, fs env.FS)
		// what the file reads after the exit, and after a crash that
		// follows the next incarnation's work.
		wantAfterExit, wantAfterCrash []byte
	}{
		{"unsynced write read back, lost at a later crash", nil, cat(a, b), a},
		{"a sync by the next incarnation makes it durable", func(t *testing.T, s *Scheduler, fs env.FS) {
			f, err := fs.Open("f")
			if err != nil {
				t.Fatal(err)
			}
			if err := syncWait(t, s, f); err != nil {
				t.Fatal(err)
			}
		}, cat(a, b), cat(a, b)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, d := newTestDisk(1, DiskConfig{BlockSize: bs})
			fs := d.FS(nil)
			f := mustCreate(t, fs, "f")
			if err := dirSyncWait(t, s, fs); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, a)
			if err := syncWait(t, s, f); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, b)
			d.ProcessExit()
			if _, err := f.Write(b); !errors.Is(err, env.ErrClosed) {
				t.Fatalf("write through a handle from before the exit = %v, want ErrClosed", err)
			}
			if _, err := fs.Open("f"); !errors.Is(err, env.ErrClosed) {
				t.Fatalf("open through an FS from before the exit = %v, want ErrClosed", err)
			}
			fs2 := d.FS(nil)
			if got, _ := readAll(t, fs2, "f"); !bytes.Equal(got, tt.wantAfterExit) {
				t.Fatalf("after the exit the file reads %q, want %q", got, tt.wantAfterExit)
			}
			if tt.next != nil {
				tt.next(t, s, fs2)
			}
			d.Crash()
			if got, _ := readAll(t, d.FS(nil), "f"); !bytes.Equal(got, tt.wantAfterCrash) {
				t.Fatalf("after a crash the file reads %q, want %q", got, tt.wantAfterCrash)
			}
			if got := d.Stats().Exits; got != 1 {
				t.Errorf("Exits = %d, want 1", got)
			}
		})
	}
}

// A sync in flight when the process exits still completes: the kernel
// finishes the writeback. The callback goes to deliver (the process layer
// drops it), and the data is durable.
func TestDiskProcessExitSyncInFlight(t *testing.T) {
	s, d := newTestDisk(1, DiskConfig{BlockSize: 4, SyncMin: time.Millisecond, SyncMax: time.Millisecond})
	fs := d.FS(nil)
	f := mustCreate(t, fs, "f")
	if err := dirSyncWait(t, s, fs); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, []byte("AAAA"))
	f.Sync(func(error) {})
	d.ProcessExit()
	s.RunUntil(s.Now() + 2*time.Millisecond)
	if got, _ := d.DurableImage("f"); string(got) != "AAAA" {
		t.Fatalf("durable image after the sync in flight completed = %q, want AAAA", got)
	}
}

// fsyncgate across a restart: blocks a failed sync marked clean are read
// back by the next incarnation, and its sync succeeds without them; only
// writing them again makes them durable.
func TestDiskProcessExitFailedSyncClean(t *testing.T) {
	a, b := []byte("AAAA"), []byte("BBBB")
	for _, rewrite := range []bool{false, true} {
		name := map[bool]string{false: "synced only", true: "rewritten"}[rewrite]
		t.Run(name, func(t *testing.T) {
			s, d := newTestDisk(1, DiskConfig{BlockSize: 4, FailedSync: FailedSyncClean})
			failedSyncAfter(t, s, d, a, b)
			d.ProcessExit()
			fs := d.FS(nil)
			got, _ := readAll(t, fs, "f")
			if want := []byte("AAAABBBB"); !bytes.Equal(got, want) {
				t.Fatalf("the next incarnation reads %q, want %q", got, want)
			}
			f, err := fs.Open("f")
			if err != nil {
				t.Fatal(err)
			}
			want := []byte("AAAA\x00\x00\x00\x00")
			if rewrite {
				if err := f.Truncate(4); err != nil {
					t.Fatal(err)
				}
				mustWrite(t, f, b)
				want = []byte("AAAABBBB")
			}
			if err := syncWait(t, s, f); err != nil {
				t.Fatalf("sync by the next incarnation = %v, want success", err)
			}
			d.Crash()
			if got, _ := readAll(t, d.FS(nil), "f"); !bytes.Equal(got, want) {
				t.Fatalf("after a crash the file reads %q, want %q", got, want)
			}
		})
	}
}

// World.Kill stops the process as Crash does, keeps the page cache, and
// traces proc.kill.
func TestWorldKillKeepsPageCache(t *testing.T) {
	w, err := NewWorld(1, DefaultWorldConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var fs env.FS
	boot := func(_ env.NodeID, e env.Env) (Receiver, error) {
		fs = e.FS
		return nopReceiver{}, nil
	}
	kills := 0
	w.Trace().SetListener(func(e TraceEvent) {
		if e.Kind == "proc.kill" {
			kills++
		}
	})
	if err := w.AddNode(1, boot, DiskConfig{BlockSize: 4}); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	f, err := fs.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("AAAA")); err != nil {
		t.Fatal(err)
	}
	if err := w.Kill(1); err != nil {
		t.Fatal(err)
	}
	if err := w.Kill(1); !errors.Is(err, ErrNodeDown) {
		t.Fatalf("killing a down node = %v, want ErrNodeDown", err)
	}
	if got, ok := w.Disk(1).VolatileImage("f"); !ok || string(got) != "AAAA" {
		t.Fatalf("after Kill the volatile image = %q (%v), want AAAA", got, ok)
	}
	if err := w.Restart(1); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Open("f"); err != nil {
		t.Fatalf("the new incarnation cannot open the unsynced file: %v", err)
	}
	if kills != 1 {
		t.Fatalf("proc.kill traced %d times, want 1", kills)
	}
}

type nopReceiver struct{}

func (nopReceiver) Receive(env.NodeID, []byte) {}

// StallPrefixUntil stalls the syncs of one log's files, pending and new,
// while another file's syncs complete on time; ClearFaults ends it for
// syncs issued later.
func TestDiskStallPrefix(t *testing.T) {
	s, d := newTestDisk(1, DiskConfig{BlockSize: 4, SyncMin: time.Millisecond, SyncMax: time.Millisecond})
	fs := d.FS(nil)
	raft, wal := mustCreate(t, fs, "raft/1.seg"), mustCreate(t, fs, "wal/t/0/1.seg")
	mustWrite(t, raft, []byte("RRRR"))
	var pendingAt time.Duration
	raft.Sync(func(error) { pendingAt = s.Now() })
	d.StallPrefixUntil("raft/", 50*time.Millisecond)
	mustWrite(t, wal, []byte("WWWW"))
	if err := syncWait(t, s, wal); err != nil {
		t.Fatal(err)
	}
	if s.Now() > 5*time.Millisecond {
		t.Fatalf("the WAL's sync completed at %v, held by the Raft log's stall", s.Now())
	}
	mustWrite(t, raft, []byte("RRRR"))
	if err := syncWait(t, s, raft); err != nil {
		t.Fatal(err)
	}
	if pendingAt != 50*time.Millisecond || s.Now() < 50*time.Millisecond {
		t.Fatalf("Raft log syncs completed at %v (pending one) and %v, want no earlier than 50ms", pendingAt, s.Now())
	}
	d.StallPrefixUntil("raft/", s.Now()+time.Second)
	d.ClearFaults()
	start := s.Now()
	mustWrite(t, raft, []byte("RRRR"))
	if err := syncWait(t, s, raft); err != nil {
		t.Fatal(err)
	}
	if s.Now()-start > 5*time.Millisecond {
		t.Fatalf("a sync issued after ClearFaults took %v", s.Now()-start)
	}
}

// WriteAt over a block a pending sync covers: the sync still makes the
// block durable as it was at the Sync call, and the overwrite is dirty
// for the next sync.
func TestDiskWriteAtDuringSync(t *testing.T) {
	s, d := newTestDisk(1, DiskConfig{BlockSize: 4, SyncMin: time.Millisecond, SyncMax: time.Millisecond})
	fs := d.FS(nil)
	f := mustCreate(t, fs, "f")
	if err := dirSyncWait(t, s, fs); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, []byte("AAAAAAAA"))
	done := false
	f.Sync(func(error) { done = true })
	if n, err := f.WriteAt([]byte("BB"), 2); err != nil || n != 2 {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	if _, err := f.WriteAt([]byte("BB"), 7); err == nil {
		t.Fatal("WriteAt past the end succeeded")
	}
	s.RunWhile(func() bool { return !done }, s.Now()+time.Second)
	if got, _ := d.DurableImage("f"); string(got) != "AAAAAAAA" {
		t.Fatalf("durable after the sync = %q, want the content at the Sync call", got)
	}
	if got, _ := d.VolatileImage("f"); string(got) != "AABBAAAA" {
		t.Fatalf("volatile = %q", got)
	}
	if err := syncWait(t, s, f); err != nil {
		t.Fatal(err)
	}
	d.Crash()
	if got, _ := readAll(t, d.FS(nil), "f"); string(got) != "AABBAAAA" {
		t.Fatalf("after the next sync and a crash = %q", got)
	}
}

// StallDirSyncsUntil holds directory syncs, the pending one and later ones,
// until the stall ends, in order, while file syncs go on; ClearFaults ends
// it for directory syncs issued afterwards.
func TestDiskStallDirSyncs(t *testing.T) {
	s, d := newTestDisk(1, DiskConfig{BlockSize: 4, SyncMin: time.Millisecond, SyncMax: time.Millisecond})
	fs := d.FS(nil)
	f := mustCreate(t, fs, "wal/1.seg")
	var first, second time.Duration
	fs.SyncDir(func(error) { first = s.Now() })
	d.StallDirSyncsUntil(50 * time.Millisecond)
	fs.SyncDir(func(error) { second = s.Now() })
	mustWrite(t, f, []byte("WWWW"))
	if err := syncWait(t, s, f); err != nil {
		t.Fatal(err)
	}
	if s.Now() > 5*time.Millisecond {
		t.Fatalf("a file sync completed at %v, held by the directory stall", s.Now())
	}
	s.RunUntil(time.Second)
	if first != 50*time.Millisecond || second < first {
		t.Fatalf("directory syncs completed at %v and %v, want the pending one at 50ms and the next no earlier", first, second)
	}
	d.StallDirSyncsUntil(s.Now() + time.Second)
	d.ClearFaults()
	start := s.Now()
	if err := dirSyncWait(t, s, fs); err != nil {
		t.Fatal(err)
	}
	if s.Now()-start > 5*time.Millisecond {
		t.Fatalf("a directory sync issued after ClearFaults took %v", s.Now()-start)
	}
}
