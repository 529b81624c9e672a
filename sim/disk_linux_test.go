package sim

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"walraft/core/env"
)

// Linux disk semantics: what a failed fsync does to its blocks under each
// FailedSyncMode (fsyncgate), ENOSPC on write, EIO on read, and a hung
// fsync that blocks the process that issued it.

func TestDiskFailedSyncModes(t *testing.T) {
	const bs = 4
	a := []byte("AAAAAAAA") // blocks 0, 1: synced
	b := []byte("BBBBBBBB") // blocks 2, 3: the failed sync's
	c := []byte("CCCC")     // block 4: written after the failed sync
	zero := make([]byte, len(b))
	cat := func(ps ...[]byte) []byte { return bytes.Join(ps, nil) }
	tests := []struct {
		mode FailedSyncMode
		// volatile after the failed sync; durable after the NEXT
		// (successful) sync; durable after a crash that follows.
		wantVolAfterFail, wantDurAfterRetry []byte
		// the next sync succeeds in every mode: that is the trap.
		wantDropped int64
	}{
		// The kind model: the retry writes the failed blocks.
		{FailedSyncKeep, cat(a, b, c), cat(a, b, c), 0},
		// Linux, pages invalidated: reads see the device (zeros past the
		// synced end); the retry succeeds without B: a hole.
		{FailedSyncDrop, cat(a, zero, c), cat(a, zero, c), 2},
		// Linux, pages marked clean: reads still see B, but the retry
		// succeeds without it: the durable image has a hole where the
		// volatile image has B.
		{FailedSyncClean, cat(a, b, c), cat(a, zero, c), 2},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			s, d := newTestDisk(1, DiskConfig{BlockSize: bs, FailedSync: tt.mode})
			f := failedSyncAfter(t, s, d, a, b)
			mustWrite(t, f, c)
			vol, _ := d.VolatileImage("f")
			if want := tt.wantVolAfterFail; !bytes.Equal(vol, want) {
				t.Fatalf("volatile after the failed sync = %q, want %q", vol, want)
			}
			// "Retry the fsync and assume success": it does succeed.
			if err := syncWait(t, s, f); err != nil {
				t.Fatalf("retry sync = %v, want success", err)
			}
			dur, _ := d.DurableImage("f")
			if !bytes.Equal(dur, tt.wantDurAfterRetry) {
				t.Fatalf("durable after the retry = %q, want %q", dur, tt.wantDurAfterRetry)
			}
			if got := d.Stats().SyncBlocksDropped; got != tt.wantDropped {
				t.Errorf("SyncBlocksDropped = %d, want %d", got, tt.wantDropped)
			}
			d.Crash()
			got, _ := readAll(t, d.FS(nil), "f")
			if !bytes.Equal(got, tt.wantDurAfterRetry) {
				t.Fatalf("after a crash the file reads %q, want %q", got, tt.wantDurAfterRetry)
			}
		})
	}
}

// A block the failed sync covered that is written again before the next
// sync is dirty again: the next sync writes the whole block (page
// writeback), under every mode; and a lost block that is rewritten is no
// longer lost.
func TestDiskFailedSyncRewrittenBlock(t *testing.T) {
	for _, mode := range []FailedSyncMode{FailedSyncKeep, FailedSyncDrop, FailedSyncClean} {
		t.Run(mode.String(), func(t *testing.T) {
			s, d := newTestDisk(1, DiskConfig{BlockSize: 4, FailedSync: mode})
			fs := d.FS(nil)
			f := mustCreate(t, fs, "f")
			if err := dirSyncWait(t, s, fs); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, []byte("AAAAAA")) // block 0 whole, block 1 half
			d.FailNextSyncs(1)
			var first error
			f.Sync(func(err error) { first = err })
			// Appended before the failed sync completes: block 1 is
			// rewritten (it is in the unsnapped set when the failure lands).
			mustWrite(t, f, []byte("BB"))
			if err := syncWait(t, s, f); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(first, env.ErrIO) {
				t.Fatalf("first sync = %v, want ErrIO", first)
			}
			dur, _ := d.DurableImage("f")
			vol, _ := d.VolatileImage("f")
			wantDur := []byte("AAAAAABB")
			if mode.Linux() {
				// Block 0 is gone (zeros); block 1 was rewritten, so its
				// whole content, the failed bytes included, was written.
				wantDur = []byte("\x00\x00\x00\x00AABB")
			}
			if !bytes.Equal(dur, wantDur) {
				t.Fatalf("durable = %q, want %q (volatile %q)", dur, wantDur, vol)
			}
			// Rewriting the lost block by a truncate and append makes it
			// durable again at the next sync.
			if err := f.Truncate(0); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, []byte("CCCCCCCC"))
			if err := syncWait(t, s, f); err != nil {
				t.Fatal(err)
			}
			if dur, _ := d.DurableImage("f"); !bytes.Equal(dur, []byte("CCCCCCCC")) {
				t.Fatalf("durable after rewrite = %q", dur)
			}
		})
	}
}

// The paged durable image must not adopt a volatile page that holds a
// lost block: with 32 KiB pages and a clean-marked block inside a page
// whose other blocks a later sync writes, the durable page stays without
// the lost bytes.
func TestDiskFailedSyncCleanNotSettled(t *testing.T) {
	s, d := newTestDisk(1, DiskConfig{BlockSize: 512, FailedSync: FailedSyncClean})
	fs := d.FS(nil)
	f := mustCreate(t, fs, "f")
	if err := dirSyncWait(t, s, fs); err != nil {
		t.Fatal(err)
	}
	page := bytes.Repeat([]byte{'x'}, pageSize)
	mustWrite(t, f, page)
	if err := syncWait(t, s, f); err != nil {
		t.Fatal(err)
	}
	// Overwrite is append-only; so cut the page back and rewrite it with
	// y, failing that sync, then rewrite only its last block.
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	y := bytes.Repeat([]byte{'y'}, pageSize)
	mustWrite(t, f, y)
	d.FailNextSyncs(1)
	if err := syncWait(t, s, f); err == nil {
		t.Fatal("injected failure did not fail")
	}
	if err := f.Truncate(pageSize - 512); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, bytes.Repeat([]byte{'z'}, 512))
	mustWrite(t, f, []byte("tail")) // into the next page
	if err := syncWait(t, s, f); err != nil {
		t.Fatal(err)
	}
	dur, _ := d.DurableImage("f")
	want := slices.Concat(page[:pageSize-512], bytes.Repeat([]byte{'z'}, 512), []byte("tail"))
	if !bytes.Equal(dur, want) {
		t.Fatalf("durable image adopted lost blocks: first byte %q, want %q", dur[0], want[0])
	}
	d.Crash()
	got, _ := readAll(t, d.FS(nil), "f")
	if !bytes.Equal(got, want) {
		t.Fatalf("after crash: first byte %q, want %q", got[0], want[0])
	}
}

func TestDiskNoSpaceAndReadEIO(t *testing.T) {
	tests := []struct {
		name    string
		arm     func(d *Disk)
		op      func(f env.File) error
		want    error
		notWant error
		// thenWrite is what the next write returns (what is left armed).
		thenWrite error
	}{
		{"ENOSPC on write is not EIO", func(d *Disk) { d.FailNextWritesNoSpace(1) },
			func(f env.File) error { _, err := f.Write([]byte("data")); return err }, env.ErrNoSpace, env.ErrIO, nil},
		{"an EIO budget fires before ENOSPC", func(d *Disk) { d.FailNextWritesNoSpace(1); d.FailNextWrites(1) },
			func(f env.File) error { _, err := f.Write([]byte("data")); return err }, env.ErrIO, env.ErrNoSpace, env.ErrNoSpace},
		{"EIO on read", func(d *Disk) { d.FailNextReads(1) },
			func(f env.File) error { _, err := f.ReadAt(make([]byte, 2), 0); return err }, env.ErrIO, env.ErrNoSpace, nil},
		{"cleared read faults do not fire", func(d *Disk) { d.FailNextReads(3); d.ClearReadFaults() },
			func(f env.File) error { _, err := f.ReadAt(make([]byte, 2), 0); return err }, nil, env.ErrIO, nil},
		{"ClearFaults disarms ENOSPC", func(d *Disk) { d.FailNextWritesNoSpace(2); d.ClearFaults() },
			func(f env.File) error { _, err := f.Write([]byte("data")); return err }, nil, env.ErrNoSpace, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, d := newTestDisk(1, DiskConfig{})
			f := mustCreate(t, d.FS(nil), "f")
			mustWrite(t, f, []byte("xy"))
			tt.arm(d)
			err := tt.op(f)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if errors.Is(err, tt.notWant) {
				t.Fatalf("err = %v must not be %v", err, tt.notWant)
			}
			// Only the armed count fails.
			if _, err := f.ReadAt(make([]byte, 1), 0); err != nil {
				t.Fatalf("a later read failed: %v", err)
			}
			if _, err := f.Write([]byte("z")); tt.thenWrite == nil && err != nil || !errors.Is(err, tt.thenWrite) {
				t.Fatalf("a later write: %v, want %v", err, tt.thenWrite)
			}
		})
	}
}

// A sync issued while the disk hangs blocks the issuing process: its
// timers, messages and posted work wait until the sync completes, while
// the other node runs on.
func TestDiskHangBlocksTheIssuer(t *testing.T) {
	w, err := NewWorld(1, WorldConfig{Net: LinkConfig{Latency: time.Millisecond}})
	must(t, err)
	defer w.Close()
	var log []string
	nodes := map[env.NodeID]*loopNode{}
	boot := func(id env.NodeID, e env.Env) (Receiver, error) {
		n := &loopNode{e: e, log: &log}
		nodes[id] = n
		return n, nil
	}
	disk := DiskConfig{SyncMin: time.Millisecond, SyncMax: time.Millisecond}
	must(t, w.AddNode(1, boot, disk))
	must(t, w.AddNode(2, boot, disk))
	must(t, w.Start())
	s := w.Sched()
	n2 := nodes[2]
	f, err := n2.e.FS.Create("f")
	must(t, err)
	s.At(10*time.Millisecond, func() { w.Disk(2).HangSyncsUntil(500 * time.Millisecond) })
	s.At(20*time.Millisecond, func() {
		// Issued inside the hang window, from node 2's loop.
		must(t, w.Post(2, 0, func() {
			n2.add("issue")
			f.Sync(func(err error) { n2.add("sync") })
			n2.e.Clock.AfterFunc(10*time.Millisecond, func() { n2.add("timer") })
		}))
	})
	s.At(30*time.Millisecond, func() { nodes[1].e.Net.Send(2, []byte("m")) })
	must(t, w.Post(1, 100*time.Millisecond, func() { nodes[1].add("n1-runs") }))
	s.RunUntil(499 * time.Millisecond)
	if !w.Process(2).Blocked() || !slices.Equal(log, []string{"issue", "n1-runs"}) {
		t.Fatalf("during the hang: blocked=%v log=%v, want blocked and only [issue n1-runs]", w.Process(2).Blocked(), log)
	}
	s.RunFor(time.Second)
	want := []string{"issue", "n1-runs", "timer", "msg:m", "sync"}
	if !slices.Equal(log, want) || w.Process(2).Blocked() || w.Process(2).Blocks() != 1 || w.Disk(2).Stats().Hangs != 1 {
		t.Fatalf("after the hang: log %v (want %v), blocked %v, blocks %d, hangs %d",
			log, want, w.Process(2).Blocked(), w.Process(2).Blocks(), w.Disk(2).Stats().Hangs)
	}
	// A crash while blocked forgets the block; the next incarnation runs.
	log = nil
	w.Disk(2).HangSyncsUntil(s.Now() + time.Second)
	g, err := nodes[2].e.FS.Open("f")
	must(t, err)
	g.Sync(func(error) {})
	if !w.Process(2).Blocked() {
		t.Fatal("a sync in the second hang did not block")
	}
	must(t, w.Crash(2))
	w.Disk(2).ClearFaults()
	must(t, w.Restart(2))
	must(t, w.Post(2, 0, func() { nodes[2].add("after-restart") }))
	s.RunFor(10 * time.Millisecond)
	if !slices.Equal(log, []string{"after-restart"}) || w.Process(2).Blocked() {
		t.Fatalf("after crash and restart: log %v blocked %v", log, w.Process(2).Blocked())
	}
}

func TestDiskFailedSyncModeValidate(t *testing.T) {
	if err := (DiskConfig{FailedSync: failedSyncModes}).Validate(); err == nil {
		t.Fatal("an unknown FailedSync mode validated")
	}
	for _, m := range []FailedSyncMode{FailedSyncKeep, FailedSyncDrop, FailedSyncClean} {
		if err := (DiskConfig{FailedSync: m}).Validate(); err != nil {
			t.Errorf("mode %v: %v", m, err)
		}
	}
}

// Random writes, truncates, syncs (a fifth failing), crashes and time under
// the Linux modes: after every step, a block where the volatile and durable
// images differ must be known as such (unsnapped, in a pending sync, or
// lost), or a later sync could adopt its volatile page into the durable
// image (settle) and resurrect data a failed sync dropped; and drop mode
// never has lost blocks.
func TestDiskLinuxModesKeepTheDifferenceKnown(t *testing.T) {
	for _, mode := range []FailedSyncMode{FailedSyncDrop, FailedSyncClean} {
		for _, bs := range []int{7, 512, 4096} {
			for seed := uint64(1); seed <= 2; seed++ {
				streams := NewStreams(seed)
				ops := streams.Stream("ops")
				s, d := newTestDisk(seed, DiskConfig{SyncMax: 2 * time.Millisecond, BlockSize: bs, FailedSync: mode})
				fs := d.FS(nil)
				f := mustCreate(t, fs, "f")
				for step := range 200 {
					switch op := ops.IntN(100); {
					case op < 35:
						p := make([]byte, ops.IntN(pageSize))
						ops.Read(p)
						if _, err := f.Write(p); err != nil {
							t.Fatal(err)
						}
					case op < 42:
						if err := f.Truncate(ops.Int64N(f.Size() + 1)); err != nil {
							t.Fatal(err)
						}
					case op < 70:
						if ops.Chance(0.2) {
							d.FailNextSyncs(1)
						}
						f.Sync(func(error) {})
					case op < 73:
						fs.SyncDir(func(error) {})
					case op < 76:
						d.Crash()
						fs = d.FS(nil)
						var err error
						if f, err = fs.Open("f"); errors.Is(err, env.ErrNotExist) {
							f = mustCreate(t, fs, "f")
						} else if err != nil {
							t.Fatal(err)
						}
					default:
						s.RunFor(time.Duration(ops.IntN(3000)) * time.Microsecond)
					}
					for name, ino := range d.vol {
						if mode == FailedSyncDrop && len(ino.lost) > 0 {
							t.Fatalf("%v bs=%d seed %d step %d: drop mode has lost blocks %v", mode, bs, seed, step, ino.lost)
						}
						vol, dur := ino.data.Bytes(), ino.durable.Bytes()
						for b := 0; (b+1)*bs <= min(len(vol), len(dur)); b++ {
							lo, hi := b*bs, (b+1)*bs
							if !bytes.Equal(vol[lo:hi], dur[lo:hi]) && !d.writtenSince(ino, int64(lo), int64(hi)) {
								t.Fatalf("%v bs=%d seed %d step %d: %s block %d differs between the images but is not known to", mode, bs, seed, step, name, b)
							}
						}
					}
				}
			}
		}
	}
}

// TestDiskFailedSyncPartialWriteback: with FailedSyncKeepProb, a failed
// sync's blocks may have reached the device before it failed: kept blocks
// are durable (a crash keeps them, and a block marked lost is not), the
// rest drop or are lost as the mode says. Probability 1 keeps every block,
// 0 none, and a kept block past the durable end extends the file.
func TestDiskFailedSyncPartialWriteback(t *testing.T) {
	const bs = 4
	a := []byte("AAAAAAAA") // blocks 0, 1: synced
	b := []byte("BBBBBBBB") // blocks 2, 3: the failed sync's
	for _, tt := range []struct {
		mode     FailedSyncMode
		keep     float64
		wantDur  []byte
		wantKept int64
	}{
		{FailedSyncDrop, 1, []byte("AAAAAAAABBBBBBBB"), 2},
		{FailedSyncClean, 1, []byte("AAAAAAAABBBBBBBB"), 2},
		{FailedSyncDrop, 0, a, 0},
		{FailedSyncClean, 0, a, 0},
	} {
		t.Run(fmt.Sprintf("%v/%v", tt.mode, tt.keep), func(t *testing.T) {
			s, d := newTestDisk(1, DiskConfig{BlockSize: bs, FailedSync: tt.mode, FailedSyncKeepProb: tt.keep})
			failedSyncAfter(t, s, d, a, b)
			if dur, _ := d.DurableImage("f"); !bytes.Equal(dur, tt.wantDur) {
				t.Fatalf("durable after the failed sync = %q, want %q", dur, tt.wantDur)
			}
			if got := d.Stats().SyncBlocksKept; got != tt.wantKept {
				t.Errorf("SyncBlocksKept = %d, want %d", got, tt.wantKept)
			}
			d.Crash()
			if got, _ := readAll(t, d.FS(nil), "f"); !bytes.Equal(got, tt.wantDur) {
				t.Fatalf("after a crash the file reads %q, want %q", got, tt.wantDur)
			}
		})
	}
}

// failedSyncAfter creates file "f" on d, writes and syncs synced, then
// writes failed and makes its sync fail (ErrIO); it returns the file.
func failedSyncAfter(t *testing.T, s *Scheduler, d *Disk, synced, failed []byte) env.File {
	t.Helper()
	fs := d.FS(nil)
	f := mustCreate(t, fs, "f")
	if err := dirSyncWait(t, s, fs); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, synced)
	if err := syncWait(t, s, f); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, failed)
	d.FailNextSyncs(1)
	if err := syncWait(t, s, f); !errors.Is(err, env.ErrIO) {
		t.Fatalf("injected sync error = %v, want ErrIO", err)
	}
	return f
}
