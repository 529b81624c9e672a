package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"testing"
	"time"

	"walraft/core/env"
)

// newTestDisk returns a scheduler and a disk on the "disk/test" stream of
// seed.
func newTestDisk(seed uint64, cfg DiskConfig) (*Scheduler, *Disk) {
	s := NewScheduler()
	return s, NewDisk(s, NewStreams(seed).Stream("disk/test"), cfg)
}

// mustCreate creates name and fails the test on error.
func mustCreate(t *testing.T, fs env.FS, name string) env.File {
	t.Helper()
	f, err := fs.Create(name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	return f
}

// mustWrite appends p and fails the test on error.
func mustWrite(t *testing.T, f env.File, p []byte) {
	t.Helper()
	if n, err := f.Write(p); err != nil || n != len(p) {
		t.Fatalf("Write(%q, %d bytes) = %d, %v", f.Name(), len(p), n, err)
	}
}

// syncWait issues f.Sync, runs the scheduler until it completes and returns
// its result.
func syncWait(t *testing.T, s *Scheduler, f env.File) error {
	t.Helper()
	var res error
	called := false
	f.Sync(func(err error) { res, called = err, true })
	s.RunWhile(func() bool { return !called }, s.Now()+time.Hour)
	if !called {
		t.Fatalf("Sync(%q) never completed", f.Name())
	}
	return res
}

// dirSyncWait issues fs.SyncDir and runs until it completes.
func dirSyncWait(t *testing.T, s *Scheduler, fs env.FS) error {
	t.Helper()
	var res error
	called := false
	fs.SyncDir(func(err error) { res, called = err, true })
	s.RunWhile(func() bool { return !called }, s.Now()+time.Hour)
	if !called {
		t.Fatal("SyncDir never completed")
	}
	return res
}

// readAll reads a whole file through a fresh handle; ok is false if it does
// not exist.
func readAll(t *testing.T, fs env.FS, name string) ([]byte, bool) {
	t.Helper()
	f, err := fs.Open(name)
	if errors.Is(err, env.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("Open(%q): %v", name, err)
	}
	buf := make([]byte, f.Size())
	if n, err := f.ReadAt(buf, 0); err != nil || n != len(buf) {
		t.Fatalf("ReadAt(%q) = %d, %v", name, n, err)
	}
	return buf, true
}

func TestDiskCrashDurability(t *testing.T) {
	rep := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	cat := func(ps ...[]byte) []byte { return bytes.Join(ps, nil) }
	// Each case runs ops on a fresh clean-crash disk, crashes it, and
	// expects exactly want (name -> content) to be left.
	cases := []struct {
		name string
		ops  func(t *testing.T, s *Scheduler, d *Disk, fs env.FS)
		want map[string][]byte
	}{
		{
			name: "unsynced bytes are lost, synced bytes survive",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				f := mustCreate(t, fs, "a")
				dirSyncWait(t, s, fs)
				mustWrite(t, f, []byte("synced"))
				if err := syncWait(t, s, f); err != nil {
					t.Fatal(err)
				}
				mustWrite(t, f, []byte("-lost"))
			},
			want: map[string][]byte{"a": []byte("synced")},
		},
		{
			name: "sync issued but not completed makes nothing durable",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				f := mustCreate(t, fs, "a")
				dirSyncWait(t, s, fs)
				mustWrite(t, f, []byte("pending"))
				f.Sync(func(error) { t.Error("sync completed across a crash") })
			},
			want: map[string][]byte{"a": {}},
		},
		{
			name: "truncate then crash before sync restores old size and content",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				f := mustCreate(t, fs, "a")
				dirSyncWait(t, s, fs)
				mustWrite(t, f, rep('x', 1500))
				syncWait(t, s, f)
				if err := f.Truncate(700); err != nil {
					t.Fatal(err)
				}
				mustWrite(t, f, rep('y', 10))
			},
			want: map[string][]byte{"a": rep('x', 1500)},
		},
		{
			name: "truncate and rewrite below the durable end, then sync",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				f := mustCreate(t, fs, "a")
				dirSyncWait(t, s, fs)
				mustWrite(t, f, rep('x', 1500))
				syncWait(t, s, f)
				if err := f.Truncate(700); err != nil {
					t.Fatal(err)
				}
				mustWrite(t, f, rep('y', 100))
				syncWait(t, s, f)
			},
			want: map[string][]byte{"a": cat(rep('x', 700), rep('y', 100))},
		},
		{
			name: "truncate to a block boundary and grow again in one sync",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				f := mustCreate(t, fs, "a")
				dirSyncWait(t, s, fs)
				mustWrite(t, f, rep('x', 2048))
				syncWait(t, s, f)
				f.Truncate(512)
				mustWrite(t, f, rep('y', 100))
				f.Truncate(300)
				mustWrite(t, f, rep('z', 1000))
				syncWait(t, s, f)
			},
			want: map[string][]byte{"a": cat(rep('x', 300), rep('z', 1000))},
		},
		{
			name: "created and file-synced but not dir-synced vanishes",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				f := mustCreate(t, fs, "new")
				mustWrite(t, f, []byte("data"))
				syncWait(t, s, f)
			},
			want: map[string][]byte{},
		},
		{
			name: "dir sync issued but not completed does not count",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				mustCreate(t, fs, "new")
				fs.SyncDir(func(error) { t.Error("SyncDir completed across a crash") })
			},
			want: map[string][]byte{},
		},
		{
			name: "removed but not dir-synced comes back with its durable content",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				f := mustCreate(t, fs, "a")
				mustWrite(t, f, []byte("durable"))
				syncWait(t, s, f)
				dirSyncWait(t, s, fs)
				mustWrite(t, f, []byte("+volatile"))
				if err := fs.Remove("a"); err != nil {
					t.Fatal(err)
				}
			},
			want: map[string][]byte{"a": []byte("durable")},
		},
		{
			name: "removed and dir-synced stays gone",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				mustCreate(t, fs, "a")
				mustCreate(t, fs, "b")
				dirSyncWait(t, s, fs)
				fs.Remove("a")
				dirSyncWait(t, s, fs)
			},
			want: map[string][]byte{"b": {}},
		},
		{
			name: "removed and recreated without dir sync brings the old file back",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				f := mustCreate(t, fs, "a")
				mustWrite(t, f, []byte("old"))
				syncWait(t, s, f)
				dirSyncWait(t, s, fs)
				fs.Remove("a")
				g := mustCreate(t, fs, "a")
				mustWrite(t, g, []byte("new"))
				syncWait(t, s, g)
			},
			want: map[string][]byte{"a": []byte("old")},
		},
		{
			name: "a sync pending at remove time still completes",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				f := mustCreate(t, fs, "a")
				dirSyncWait(t, s, fs)
				mustWrite(t, f, []byte("late"))
				var res error = errors.New("not called")
				f.Sync(func(err error) { res = err })
				fs.Remove("a")
				s.RunFor(time.Second)
				if res != nil {
					t.Fatalf("sync after remove: %v", res)
				}
			},
			want: map[string][]byte{"a": []byte("late")},
		},
		{
			name: "failed sync makes nothing durable",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				f := mustCreate(t, fs, "a")
				dirSyncWait(t, s, fs)
				mustWrite(t, f, []byte("one"))
				syncWait(t, s, f)
				mustWrite(t, f, []byte("two"))
				d.FailNextSyncs(1)
				if err := syncWait(t, s, f); !errors.Is(err, env.ErrIO) {
					t.Fatalf("sync = %v, want ErrIO", err)
				}
			},
			want: map[string][]byte{"a": []byte("one")},
		},
		{
			name: "a failed sync's data is made durable by the next successful sync",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				f := mustCreate(t, fs, "a")
				dirSyncWait(t, s, fs)
				mustWrite(t, f, rep('a', 700))
				d.FailNextSyncs(1)
				syncWait(t, s, f)
				mustWrite(t, f, rep('b', 10))
				syncWait(t, s, f)
			},
			want: map[string][]byte{"a": cat(rep('a', 700), rep('b', 10))},
		},
		{
			name: "a failed sync folds into the next pending sync (trimmed by its truncate)",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				f := mustCreate(t, fs, "a")
				dirSyncWait(t, s, fs)
				mustWrite(t, f, rep('a', 2000))
				d.FailNextSyncs(1)
				var errs []error
				f.Sync(func(err error) { errs = append(errs, err) })
				f.Truncate(1100)
				f.Sync(func(err error) { errs = append(errs, err) })
				s.RunFor(time.Second)
				if len(errs) != 2 || !errors.Is(errs[0], env.ErrIO) || errs[1] != nil {
					t.Fatalf("sync results %v, want [ErrIO, nil]", errs)
				}
			},
			want: map[string][]byte{"a": rep('a', 1100)},
		},
		{
			name: "a failed dir sync leaves the created file undurable",
			ops: func(t *testing.T, s *Scheduler, d *Disk, fs env.FS) {
				mustCreate(t, fs, "a")
				d.FailNextSyncs(1)
				if err := dirSyncWait(t, s, fs); !errors.Is(err, env.ErrIO) {
					t.Fatalf("SyncDir = %v, want ErrIO", err)
				}
			},
			want: map[string][]byte{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, d := newTestDisk(1, DefaultDiskConfig())
			tc.ops(t, s, d, d.FS(nil))
			d.Crash()
			s.RunFor(time.Hour) // cancelled syncs must not fire
			fs := d.FS(nil)
			names, err := fs.List("")
			if err != nil {
				t.Fatal(err)
			}
			var wantNames []string
			for name := range tc.want {
				wantNames = append(wantNames, name)
			}
			slices.Sort(wantNames)
			if !slices.Equal(names, wantNames) {
				t.Fatalf("files after crash = %q, want %q", names, wantNames)
			}
			for _, name := range wantNames {
				got, _ := readAll(t, fs, name)
				if !bytes.Equal(got, tc.want[name]) {
					t.Errorf("%q after crash = %q, want %q", name, clip(got), clip(tc.want[name]))
				}
				dur, ok := d.DurableImage(name)
				if !ok || !bytes.Equal(dur, got) {
					t.Errorf("DurableImage(%q) = %q, %v; want the read content", name, clip(dur), ok)
				}
			}
		})
	}
}

// clip shortens long byte strings in failure messages.
func clip(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q...(%d bytes)", b[:40], len(b))
	}
	return string(b)
}

// tornSetup writes blocks distinct non-zero blocks to a dir-synced, empty
// file and crashes with TornKeepProb p. It returns which blocks survived.
func tornSetup(t *testing.T, seed uint64, blocks int, p float64) []bool {
	t.Helper()
	cfg := DefaultDiskConfig()
	cfg.TornKeepProb = p
	s, d := newTestDisk(seed, cfg)
	fs := d.FS(nil)
	f := mustCreate(t, fs, "log")
	dirSyncWait(t, s, fs)
	for b := range blocks {
		mustWrite(t, f, bytes.Repeat([]byte{byte('A' + b)}, 512))
	}
	d.Crash()
	img, ok := d.DurableImage("log")
	if !ok {
		t.Fatal("file lost at crash")
	}
	if len(img)%512 != 0 || len(img) > blocks*512 {
		t.Fatalf("torn image has length %d", len(img))
	}
	kept := make([]bool, blocks)
	for b := 0; b*512 < len(img); b++ {
		blk := img[b*512 : (b+1)*512]
		switch {
		case bytes.Equal(blk, bytes.Repeat([]byte{byte('A' + b)}, 512)):
			kept[b] = true
		case bytes.Equal(blk, make([]byte, 512)):
		default:
			t.Fatalf("block %d holds neither its data nor zeros: %q", b, clip(blk))
		}
	}
	if len(img) > 0 && !kept[len(img)/512-1] {
		t.Fatalf("image ends in a zero block (length %d)", len(img))
	}
	return kept
}

func TestDiskTornCrash(t *testing.T) {
	const blocks = 16
	seen := map[string]uint64{}
	outOfOrder := uint64(0)
	for seed := uint64(1); seed <= 8; seed++ {
		a := tornSetup(t, seed, blocks, 0.5)
		b := tornSetup(t, seed, blocks, 0.5)
		if !slices.Equal(a, b) {
			t.Fatalf("seed %d: kept sets differ between runs: %v vs %v", seed, a, b)
		}
		key := fmt.Sprint(a)
		if prev, dup := seen[key]; dup {
			t.Logf("seeds %d and %d keep the same blocks", prev, seed)
		}
		seen[key] = seed
		for k := 0; k+1 < blocks; k++ {
			if !a[k] && a[k+1] && outOfOrder == 0 {
				outOfOrder = seed
				t.Logf("seed %d keeps block %d but not block %d: %v", seed, k+1, k, a)
			}
		}
	}
	if len(seen) < 6 {
		t.Errorf("only %d distinct kept sets over 8 seeds", len(seen))
	}
	if outOfOrder == 0 {
		t.Error("no seed kept block k+1 without block k")
	}
	// p = 0 keeps nothing, p = 1 keeps everything.
	if got := tornSetup(t, 1, blocks, 0); slices.Contains(got, true) {
		t.Errorf("TornKeepProb 0 kept %v", got)
	}
	if got := tornSetup(t, 1, blocks, 1); slices.Contains(got, false) {
		t.Errorf("TornKeepProb 1 lost %v", got)
	}
}

func TestDiskTimingAndFaults(t *testing.T) {
	ms := time.Millisecond
	fixed := func(lat time.Duration) DiskConfig {
		c := DefaultDiskConfig()
		c.SyncMin, c.SyncMax = lat, lat
		return c
	}
	stalled := fixed(ms)
	stalled.StallProb, stalled.StallMin, stalled.StallMax = 1, 50*ms, 50*ms
	// Each case issues syncs at given times and expects the completion
	// times and results in completion order.
	type issue struct {
		at   time.Duration
		file string // "" means SyncDir
	}
	type done struct {
		at   time.Duration
		id   int // index in issues
		fail bool
	}
	cases := []struct {
		name   string
		cfg    DiskConfig
		setup  func(d *Disk, s *Scheduler)
		issues []issue
		want   []done
	}{
		{
			name:   "fixed latency",
			cfg:    fixed(3 * ms),
			issues: []issue{{0, "a"}, {ms, "b"}, {ms, ""}},
			want:   []done{{3 * ms, 0, false}, {4 * ms, 1, false}, {4 * ms, 2, false}},
		},
		{
			name:   "stall adds its duration",
			cfg:    stalled,
			issues: []issue{{0, "a"}, {10 * ms, ""}},
			want:   []done{{51 * ms, 0, false}, {61 * ms, 1, false}},
		},
		{
			name: "per-file FIFO: a fast sync waits for a slow one on the same file only",
			cfg:  fixed(ms),
			setup: func(d *Disk, s *Scheduler) {
				s.At(0, func() {
					c := d.Config()
					c.StallProb, c.StallMin, c.StallMax = 1, 20*ms, 20*ms
					d.SetConfig(c)
				})
				s.At(ms/2, func() { d.SetConfig(fixed(ms)) })
			},
			issues: []issue{{0, "a"}, {ms, "a"}, {ms, "b"}},
			want:   []done{{2 * ms, 2, false}, {21 * ms, 0, false}, {21 * ms, 1, false}},
		},
		{
			name: "StallSyncsUntil delays pending and new syncs, keeping order",
			cfg:  fixed(ms),
			setup: func(d *Disk, s *Scheduler) {
				s.At(ms/2, func() { d.StallSyncsUntil(100 * ms) })
			},
			issues: []issue{{0, "a"}, {0, ""}, {0, "b"}, {2 * ms, "a"}, {150 * ms, "a"}},
			want: []done{
				{100 * ms, 0, false}, {100 * ms, 1, false}, {100 * ms, 2, false},
				{100 * ms, 3, false}, {151 * ms, 4, false},
			},
		},
		{
			name: "StallSyncsUntil exactly at a pending sync's time keeps per-file order",
			cfg:  fixed(5 * ms),
			setup: func(d *Disk, s *Scheduler) {
				s.At(ms, func() { d.SetConfig(fixed(99 * ms)) })
				s.At(2*ms, func() { d.StallSyncsUntil(100 * ms) })
			},
			issues: []issue{{0, "a"}, {ms, "a"}},
			want:   []done{{100 * ms, 0, false}, {100 * ms, 1, false}},
		},
		{
			name: "FailNextSyncs fails the next n syncs of any kind",
			cfg:  fixed(ms),
			setup: func(d *Disk, s *Scheduler) {
				d.FailNextSyncs(2)
			},
			issues: []issue{{0, "a"}, {0, ""}, {0, "a"}},
			want:   []done{{ms, 0, true}, {ms, 1, true}, {ms, 2, false}},
		},
		{
			name: "SyncEIOProb 1 fails every sync",
			cfg: func() DiskConfig {
				c := fixed(ms)
				c.SyncEIOProb = 1
				return c
			}(),
			issues: []issue{{0, "a"}, {0, ""}},
			want:   []done{{ms, 0, true}, {ms, 1, true}},
		},
		{
			name:   "zero latency completes in a later event at the same time",
			cfg:    fixed(0),
			issues: []issue{{5 * ms, "a"}},
			want:   []done{{5 * ms, 0, false}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, d := newTestDisk(7, tc.cfg)
			fs := d.FS(nil)
			files := map[string]env.File{}
			for _, name := range []string{"a", "b"} {
				files[name] = mustCreate(t, fs, name)
			}
			if tc.setup != nil {
				tc.setup(d, s)
			}
			var got []done
			for i, is := range tc.issues {
				s.At(is.at, func() {
					cb := func(err error) {
						if err != nil && !errors.Is(err, env.ErrIO) {
							t.Errorf("sync %d: unexpected error %v", i, err)
						}
						got = append(got, done{s.Now(), i, err != nil})
					}
					if is.file == "" {
						fs.SyncDir(cb)
					} else {
						mustWrite(t, files[is.file], []byte{byte(i)})
						files[is.file].Sync(cb)
					}
					if len(got) > 0 && got[len(got)-1].id == i {
						t.Errorf("sync %d completed synchronously", i)
					}
				})
			}
			s.RunFor(time.Hour)
			if !slices.Equal(got, tc.want) {
				t.Errorf("completions (time, sync, failed):\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestDiskFIFOUnderRandomLatency(t *testing.T) {
	cfg := DefaultDiskConfig()
	cfg.SyncMin, cfg.SyncMax = 0, 10*time.Millisecond
	cfg.StallProb, cfg.StallMin, cfg.StallMax = 0.2, 10*time.Millisecond, time.Second
	s, d := newTestDisk(3, cfg)
	fs := d.FS(nil)
	f := mustCreate(t, fs, "a")
	var order []int
	last := time.Duration(0)
	for i := range 50 {
		s.At(time.Duration(i)*time.Millisecond, func() {
			f.Sync(func(error) {
				if s.Now() < last {
					t.Errorf("sync %d completed at %v before the previous one at %v", i, s.Now(), last)
				}
				last = s.Now()
				order = append(order, i)
			})
		})
	}
	s.RunFor(time.Hour)
	if len(order) != 50 || !slices.IsSorted(order) {
		t.Fatalf("completion order %v, want 0..49", order)
	}
	if d.Stats().Stalls == 0 {
		t.Error("no stall drawn with StallProb 0.2 over 50 syncs")
	}
}

func TestDiskWriteEIO(t *testing.T) {
	payload := []byte("0123456789abcdef")
	cases := []struct {
		name   string
		cfg    func() DiskConfig
		inject func(d *Disk)
		fails  []bool // per write
	}{
		{
			name:   "FailNextWrites",
			cfg:    DefaultDiskConfig,
			inject: func(d *Disk) { d.FailNextWrites(2) },
			fails:  []bool{true, true, false, false},
		},
		{
			name: "WriteEIOProb 1",
			cfg: func() DiskConfig {
				c := DefaultDiskConfig()
				c.WriteEIOProb = 1
				return c
			},
			fails: []bool{true, true, true, true},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lengths := map[int]bool{}
			for seed := uint64(1); seed <= 10; seed++ {
				s, d := newTestDisk(seed, tc.cfg())
				fs := d.FS(nil)
				f := mustCreate(t, fs, "a")
				if tc.inject != nil {
					tc.inject(d)
				}
				var want []byte
				for i, fail := range tc.fails {
					n, err := f.Write(payload)
					if fail != errors.Is(err, env.ErrIO) || (err != nil && !fail) {
						t.Fatalf("seed %d write %d: err %v, want failure %v", seed, i, err, fail)
					}
					if n < 0 || n > len(payload) || (!fail && n != len(payload)) {
						t.Fatalf("seed %d write %d: n = %d", seed, i, n)
					}
					lengths[n] = true
					want = append(want, payload[:n]...)
				}
				got, _ := readAll(t, fs, "a")
				if !bytes.Equal(got, want) {
					t.Fatalf("seed %d: content %q, want the written prefixes %q", seed, got, want)
				}
				if st := d.Stats(); st.WriteErrors != int64(countTrue(tc.fails)) {
					t.Fatalf("seed %d: WriteErrors = %d", seed, st.WriteErrors)
				}
				_ = s
			}
			if len(lengths) < 3 {
				t.Errorf("EIO writes appended only lengths %v over 10 seeds; want a seeded spread", lengths)
			}
		})
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func TestDiskDeliverAndCrashCancels(t *testing.T) {
	s, d := newTestDisk(1, DefaultDiskConfig())
	var queued []func()
	deliver := func(fn func()) { queued = append(queued, fn) }
	fs := d.FS(deliver)
	f := mustCreate(t, fs, "a")

	var results []string
	f.Sync(func(err error) { results = append(results, fmt.Sprint("sync:", err)) })
	fs.SyncDir(func(err error) { results = append(results, fmt.Sprint("dir:", err)) })
	if len(queued) != 0 || len(results) != 0 {
		t.Fatal("a completion ran synchronously inside Sync/SyncDir")
	}
	s.RunFor(time.Second)
	if len(results) != 0 {
		t.Fatalf("a callback ran without going through deliver: %v", results)
	}
	if len(queued) != 2 {
		t.Fatalf("deliver got %d callbacks, want 2", len(queued))
	}
	// Durability is decided at completion, before deliver runs anything.
	if _, ok := d.DurableImage("a"); !ok {
		t.Fatal("dir sync completed but the file is not durable before deliver ran")
	}
	for _, fn := range queued {
		fn()
	}
	if want := []string{"sync:<nil>", "dir:<nil>"}; !slices.Equal(results, want) {
		t.Fatalf("results %v, want %v", results, want)
	}

	// A crash cancels pending syncs: deliver is never called and nothing
	// becomes durable.
	queued, results = nil, nil
	mustWrite(t, f, []byte("lost"))
	f.Sync(func(err error) { results = append(results, "late sync") })
	g := mustCreate(t, fs, "b")
	fs.SyncDir(func(err error) { results = append(results, "late dir") })
	if d.PendingSyncs() != 2 {
		t.Fatalf("PendingSyncs = %d, want 2", d.PendingSyncs())
	}
	d.Crash()
	s.RunFor(time.Hour)
	if len(queued) != 0 || len(results) != 0 || d.PendingSyncs() != 0 {
		t.Fatalf("after crash: %d delivered, results %v, %d pending", len(queued), results, d.PendingSyncs())
	}
	if img, _ := d.DurableImage("a"); len(img) != 0 {
		t.Fatalf("cancelled sync made %q durable", img)
	}
	if got := d.Files(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("files after crash %q, want [a]", got)
	}
	if st := d.Stats(); st.SyncsLost != 2 || st.Crashes != 1 {
		t.Fatalf("stats %+v: want 2 syncs lost, 1 crash", st)
	}

	// Every old handle and the old FS are closed.
	closedOps := map[string]error{}
	_, closedOps["write"] = f.Write([]byte("x"))
	_, closedOps["read"] = g.ReadAt(make([]byte, 1), 0)
	closedOps["truncate"] = f.Truncate(0)
	closedOps["close"] = g.Close()
	_, closedOps["create"] = fs.Create("c")
	_, closedOps["open"] = fs.Open("a")
	_, closedOps["list"] = fs.List("")
	closedOps["remove"] = fs.Remove("a")
	for op, err := range closedOps {
		if !errors.Is(err, env.ErrClosed) {
			t.Errorf("old handle %s after crash: %v, want ErrClosed", op, err)
		}
	}
	var late []error
	f.Sync(func(err error) { late = append(late, err) })
	fs.SyncDir(func(err error) { late = append(late, err) })
	if len(queued) != 0 {
		t.Fatal("ErrClosed completion delivered synchronously")
	}
	s.RunFor(time.Second)
	for _, fn := range queued {
		fn()
	}
	if len(late) != 2 || !errors.Is(late[0], env.ErrClosed) || !errors.Is(late[1], env.ErrClosed) {
		t.Fatalf("old Sync/SyncDir after crash gave %v, want 2x ErrClosed", late)
	}
	// The new incarnation works.
	fs2 := d.FS(nil)
	if _, err := fs2.Open("a"); err != nil {
		t.Fatalf("new FS Open: %v", err)
	}
}

func TestDiskHandleRules(t *testing.T) {
	s, d := newTestDisk(1, DefaultDiskConfig())
	fs := d.FS(nil)
	f := mustCreate(t, fs, "dir/a")
	mustCreate(t, fs, "dir/b")
	mustCreate(t, fs, "other")
	if _, err := fs.Create("dir/a"); !errors.Is(err, env.ErrExist) {
		t.Errorf("Create existing: %v, want ErrExist", err)
	}
	if _, err := fs.Open("nope"); !errors.Is(err, env.ErrNotExist) {
		t.Errorf("Open missing: %v, want ErrNotExist", err)
	}
	if err := fs.Remove("nope"); !errors.Is(err, env.ErrNotExist) {
		t.Errorf("Remove missing: %v, want ErrNotExist", err)
	}
	if got, _ := fs.List("dir/"); !slices.Equal(got, []string{"dir/a", "dir/b"}) {
		t.Errorf("List(dir/) = %q", got)
	}
	mustWrite(t, f, []byte("hello"))
	g, _ := fs.Open("dir/a")
	if g.Size() != 5 {
		t.Errorf("second handle sees size %d, want 5", g.Size())
	}
	buf := make([]byte, 10)
	if n, err := g.ReadAt(buf, 2); n != 3 || err != io.EOF || string(buf[:n]) != "llo" {
		t.Errorf("short ReadAt = %d, %v, %q", n, err, buf[:n])
	}
	if n, err := g.ReadAt(buf[:3], 0); n != 3 || err != nil {
		t.Errorf("full ReadAt = %d, %v", n, err)
	}
	if n, err := g.ReadAt(buf, 9); n != 0 || err != io.EOF {
		t.Errorf("ReadAt past end = %d, %v", n, err)
	}
	if _, err := g.ReadAt(buf, -1); !errors.Is(err, ErrBadOffset) {
		t.Errorf("ReadAt(-1) = %v, want ErrBadOffset", err)
	}
	for _, size := range []int64{-1, 6} {
		if err := f.Truncate(size); !errors.Is(err, ErrBadTruncate) {
			t.Errorf("Truncate(%d) = %v, want ErrBadTruncate", size, err)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); !errors.Is(err, env.ErrClosed) {
		t.Errorf("double Close = %v", err)
	}
	if _, err := g.Write([]byte("x")); !errors.Is(err, env.ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	// A sync issued before Close still completes.
	var res error = errors.New("not called")
	f.Sync(func(err error) { res = err })
	f.Close()
	s.RunFor(time.Second)
	if res != nil {
		t.Errorf("sync pending at Close = %v, want success", res)
	}
	// Remove invalidates open handles.
	h, _ := fs.Open("dir/b")
	fs.Remove("dir/b")
	if _, err := h.Write([]byte("x")); !errors.Is(err, env.ErrClosed) {
		t.Errorf("Write after Remove = %v, want ErrClosed", err)
	}
	if got := d.Files(); !slices.Equal(got, []string{"dir/a", "other"}) {
		t.Errorf("Files = %q", got)
	}
}

func TestDiskCorruptDurable(t *testing.T) {
	s, d := newTestDisk(1, DefaultDiskConfig())
	fs := d.FS(nil)
	f := mustCreate(t, fs, "a")
	mustCreate(t, fs, "undurable-dir-entry")
	data := []byte("abcdefghij")
	mustWrite(t, f, data)
	syncWait(t, s, f)
	fs.SyncDir(func(error) {})
	s.RunFor(time.Second)
	mustCreate(t, fs, "new")

	cases := []struct {
		name   string
		off    int64
		n      int
		ok     bool
		broken []int // indexes expected to differ
	}{
		{"missing file", 0, 1, false, nil},
		{"new", 0, 1, false, nil}, // not dir-synced
		{"a", 10, 1, false, nil},  // offset at end
		{"a", -1, 1, false, nil},
		{"a", 0, 0, false, nil},
		{"a", 2, 3, true, []int{2, 3, 4}},
		{"a", 8, 100, true, []int{2, 3, 4, 8, 9}}, // clipped
	}
	for _, tc := range cases {
		if got := d.CorruptDurable(tc.name, tc.off, tc.n); got != tc.ok {
			t.Fatalf("CorruptDurable(%q, %d, %d) = %v, want %v", tc.name, tc.off, tc.n, got, tc.ok)
		}
		img, _ := d.DurableImage("a")
		for i := range data {
			if want := slices.Contains(tc.broken, i); (img[i] != data[i]) != want {
				t.Fatalf("after CorruptDurable(%q, %d, %d): byte %d corrupted=%v, want %v (%q)",
					tc.name, tc.off, tc.n, i, img[i] != data[i], want, img)
			}
		}
		if vol, _ := readAll(t, fs, "a"); !bytes.Equal(vol, data) {
			t.Fatalf("volatile image changed: %q", vol)
		}
	}
	d.Crash()
	got, _ := readAll(t, d.FS(nil), "a")
	if bytes.Equal(got, data) || len(got) != len(data) {
		t.Fatalf("after crash the corruption is not visible: %q", got)
	}
	if d.Stats().Corruptions != 2 {
		t.Fatalf("Corruptions = %d", d.Stats().Corruptions)
	}
}

// TestDiskCorruptDurableWhileDown: whether the next reads see latent
// corruption depends on whether a page cache stands in front of the medium.
// A running incarnation's volatile image hides it until the next crash; on a
// crashed disk no FS has used since (a powered-off machine) there is no page
// cache, so the boot reads the damage. Before this rule the volatile image
// of a down node kept the pre-corruption bytes: the node booted from
// undamaged data while the oracle, reading the durable image, found damaged
// synced data (the corrupt scenario's S11 failures of seeds 96, 104, 111,
// 170 and 174).
func TestDiskCorruptDurableWhileDown(t *testing.T) {
	cases := []struct {
		name string
		// when runs the corruption at its moment of the power cycle and
		// returns the FS the next incarnation reads with.
		when func(d *Disk, corrupt func()) env.FS
		// readDamaged: the FS returned by when reads the damage.
		// crashDamaged: reads after one more crash see it.
		readDamaged, crashDamaged bool
	}{
		{"while running", func(d *Disk, corrupt func()) env.FS {
			corrupt()
			d.Crash()
			return d.FS(nil)
		}, true, true},
		{"while down", func(d *Disk, corrupt func()) env.FS {
			d.Crash()
			corrupt()
			return d.FS(nil)
		}, true, true},
		// Also the case of a node down after a failed boot: the process
		// exited, the OS keeps its page cache.
		{"after the boot's FS", func(d *Disk, corrupt func()) env.FS {
			d.Crash()
			fs := d.FS(nil)
			corrupt()
			return fs
		}, false, true},
	}
	// One synced block, then an unsynced write in the next block, which
	// the torn crash keeps (a kept block would carry the page cache's
	// undamaged copy of the synced one back to the medium).
	data := bytes.Repeat([]byte("abcdefghijklmnop"), 32)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultDiskConfig()
			cfg.TornKeepProb = 1
			s, d := newTestDisk(3, cfg)
			fs := d.FS(nil)
			f := mustCreate(t, fs, "a")
			mustWrite(t, f, data)
			if err := syncWait(t, s, f); err != nil {
				t.Fatal(err)
			}
			dirSyncWait(t, s, fs)
			mustWrite(t, f, []byte("unsynced")) // a torn crash keeps it
			corrupt := func() {
				if !d.CorruptDurable("a", 4, 2) {
					t.Fatal("CorruptDurable failed")
				}
			}
			fs = tc.when(d, corrupt)
			got, _ := readAll(t, fs, "a")
			if want := len(data) + len("unsynced"); len(got) != want {
				t.Fatalf("read %d bytes, want %d", len(got), want)
			}
			if damaged := !bytes.Equal(got[:len(data)], data); damaged != tc.readDamaged {
				t.Fatalf("reads see the damage = %v, want %v (%q)", damaged, tc.readDamaged, got)
			}
			if !bytes.Equal(got[:4], data[:4]) || !bytes.Equal(got[6:len(data)], data[6:]) {
				t.Fatalf("bytes outside the corrupted run changed: %q", got)
			}
			img, _ := d.DurableImage("a")
			if !bytes.Equal(got[len(data):], img[len(data):]) || bytes.Equal(img[:len(data)], data) {
				t.Fatalf("durable image %q, read %q", img, got)
			}
			d.Crash()
			again, _ := readAll(t, d.FS(nil), "a")
			if damaged := !bytes.Equal(again[:len(data)], data); damaged != tc.crashDamaged {
				t.Fatalf("after another crash reads see the damage = %v, want %v", damaged, tc.crashDamaged)
			}
			if tc.readDamaged && !bytes.Equal(again, got) {
				t.Fatalf("the boot read %q, the medium holds %q", got, again)
			}
		})
	}
}

func TestDiskConfigValidate(t *testing.T) {
	ok := DefaultDiskConfig()
	cases := []struct {
		name string
		mut  func(*DiskConfig)
		bad  bool
	}{
		{"default", func(*DiskConfig) {}, false},
		{"zero value", func(c *DiskConfig) { *c = DiskConfig{} }, false},
		{"negative prob", func(c *DiskConfig) { c.SyncEIOProb = -0.1 }, true},
		{"prob above 1", func(c *DiskConfig) { c.TornKeepProb = 1.5 }, true},
		{"inverted sync range", func(c *DiskConfig) { c.SyncMin = 2 * time.Millisecond }, true},
		{"negative stall", func(c *DiskConfig) { c.StallMin = -1 }, true},
		{"unbounded sync", func(c *DiskConfig) { c.SyncMax = time.Duration(1<<63 - 1) }, true},
		{"NaN prob", func(c *DiskConfig) { c.StallProb = math.NaN() }, true},
		{"huge block", func(c *DiskConfig) { c.BlockSize = 1 << 30 }, true},
		{"negative block", func(c *DiskConfig) { c.BlockSize = -1 }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mut(&c)
			err := c.Validate()
			if (err != nil) != tc.bad {
				t.Fatalf("Validate() = %v, want error %v", err, tc.bad)
			}
			if !tc.bad {
				_, d := newTestDisk(1, c)
				if d.Config().BlockSize <= 0 {
					t.Fatalf("BlockSize not defaulted: %d", d.Config().BlockSize)
				}
			}
		})
	}
}

// TestDiskSyncCopiesOnlyDirtyBlocks checks the memory claim: an append-only
// file synced after every small write copies about one block per sync, not
// the whole file.
func TestDiskSyncCopiesOnlyDirtyBlocks(t *testing.T) {
	s, d := newTestDisk(1, DefaultDiskConfig())
	fs := d.FS(nil)
	f := mustCreate(t, fs, "wal")
	const writes, size = 2000, 100
	for i := range writes {
		mustWrite(t, f, bytes.Repeat([]byte{byte(i)}, size))
		f.Sync(func(err error) {
			if err != nil {
				t.Error(err)
			}
		})
		s.RunFor(time.Millisecond)
	}
	s.RunFor(time.Second)
	st := d.Stats()
	bs := int64(d.Config().BlockSize)
	if limit := int64(writes) * (size + 2*bs); st.SyncBytes > limit {
		t.Fatalf("SyncBytes = %d for a %d-byte file, want <= %d", st.SyncBytes, writes*size, limit)
	}
	t.Logf("%d syncs of a file growing to %d bytes copied %d bytes", writes, writes*size, st.SyncBytes)
	vol, _ := readAll(t, fs, "wal")
	d.FS(nil).SyncDir(func(error) {})
	s.RunFor(time.Second)
	if img, _ := d.DurableImage("wal"); !bytes.Equal(img, vol) {
		t.Fatal("durable image differs from volatile after every write was synced")
	}
}

// BenchmarkDiskAppendSync measures the WAL pattern: append a batch, sync,
// let the sync complete, in a 16 MiB segment. The cost per op must not
// grow with the file.
func BenchmarkDiskAppendSync(b *testing.B) {
	for _, batch := range []int{100, 4096, 65536} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, d := newTestDisk(1, DefaultDiskConfig())
			fs := d.FS(nil)
			f, err := fs.Create("wal")
			if err != nil {
				b.Fatal(err)
			}
			p := bytes.Repeat([]byte{'x'}, batch)
			done := func(err error) {
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(batch))
			b.ReportAllocs()
			for b.Loop() {
				if f.Size() >= 16<<20 {
					// Roll the segment like a WAL, so the benchmark
					// measures steady state, not slice growth.
					if err := f.Truncate(0); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := f.Write(p); err != nil {
					b.Fatal(err)
				}
				f.Sync(done)
				s.RunFor(time.Millisecond)
			}
		})
	}
}

// TestDiskTornShrunkBlockTail: a crash that keeps a written block of a
// file that had shrunk, but not the shrink, leaves zeros in that block past
// the shrunk end (the page written back is zero there, as a truncate
// zeroes a partial block's tail), never the old bytes: a log reading on
// past its end must not find its truncated records again.
func TestDiskTornShrunkBlockTail(t *testing.T) {
	const bs = 512
	cases := []struct {
		name        string
		cut, newLen int64 // truncate to cut, then write up to newLen
	}{
		{"cut and rewrite inside block 0", 100, 150},
		{"cut in block 1, rewrite to its middle", 600, 700},
		{"cut at a block boundary, rewrite part of the next", 512, 520},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seen := 0
			for seed := uint64(1); seed <= 64; seed++ {
				cfg := DefaultDiskConfig()
				cfg.BlockSize = bs
				cfg.TornKeepProb = 0.5
				s, d := newTestDisk(seed, cfg)
				fs := d.FS(nil)
				f := mustCreate(t, fs, "log")
				dirSyncWait(t, s, fs)
				mustWrite(t, f, bytes.Repeat([]byte{'A'}, 3*bs))
				if err := syncWait(t, s, f); err != nil {
					t.Fatal(err)
				}
				if err := f.Truncate(tc.cut); err != nil {
					t.Fatal(err)
				}
				mustWrite(t, f, bytes.Repeat([]byte{'B'}, int(tc.newLen-tc.cut)))
				d.Crash()
				img, _ := d.DurableImage("log")
				if int64(len(img)) <= tc.newLen {
					continue // the shrink was kept
				}
				b := tc.newLen / bs
				if img[tc.cut] != 'B' {
					continue // the rewritten block was lost
				}
				seen++
				end := min((b+1)*bs, int64(len(img)))
				if tail := img[tc.newLen:end]; !bytes.Equal(tail, make([]byte, len(tail))) {
					t.Fatalf("seed %d: block %d past the shrunk end %d holds %q, want zeros", seed, b, tc.newLen, clip(tail))
				}
			}
			if seen == 0 {
				t.Fatal("no seed kept the rewritten block without the shrink")
			}
		})
	}
}

// TestDiskFailNextUnder: per-log fault budgets fail only the syncs (or
// writes) of the files under their prefix, or only directory syncs, in
// arming order, each as many times as armed.
func TestDiskFailNextUnder(t *testing.T) {
	type op struct {
		what string // "sync", "write" or "syncdir"
		file string
		fail bool
	}
	tests := []struct {
		name string
		arm  func(d *Disk)
		ops  []op
	}{
		{"syncs of one log", func(d *Disk) { d.FailNextSyncsUnder("wal/", false, 2) }, []op{
			{"sync", "raft/1", false}, {"syncdir", "", false}, {"sync", "wal/a", true},
			{"sync", "raft/1", false}, {"sync", "wal/b", true}, {"sync", "wal/a", false}}},
		{"directory syncs", func(d *Disk) { d.FailNextSyncsUnder("", true, 1) }, []op{
			{"sync", "wal/a", false}, {"syncdir", "", true}, {"syncdir", "", false}}},
		{"writes of one log", func(d *Disk) { d.FailNextWritesUnder("raft/", 1) }, []op{
			{"write", "wal/a", false}, {"sync", "raft/1", false}, {"write", "raft/1", true}, {"write", "raft/1", false}}},
		{"two budgets in arming order", func(d *Disk) {
			d.FailNextSyncsUnder("wal/", false, 1)
			d.FailNextSyncsUnder("", false, 1) // every file
		}, []op{{"sync", "raft/1", true}, {"sync", "wal/a", true}, {"sync", "wal/a", false}}},
		{"cleared", func(d *Disk) { d.FailNextSyncsUnder("wal/", false, 1); d.ClearFaults() }, []op{
			{"sync", "wal/a", false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, d := newTestDisk(1, DefaultDiskConfig())
			fs := d.FS(nil)
			files := map[string]env.File{}
			for _, o := range tc.ops {
				if o.file != "" && files[o.file] == nil {
					files[o.file] = mustCreate(t, fs, o.file)
				}
			}
			if err := dirSyncWait(t, s, fs); err != nil {
				t.Fatal(err)
			}
			tc.arm(d)
			for i, o := range tc.ops {
				var err error
				switch o.what {
				case "sync":
					err = syncWait(t, s, files[o.file])
				case "syncdir":
					err = dirSyncWait(t, s, fs)
				case "write":
					_, err = files[o.file].Write([]byte("x"))
				}
				if got := errors.Is(err, env.ErrIO); got != o.fail {
					t.Fatalf("op %d (%s %s): err %v, want failure %v", i, o.what, o.file, err, o.fail)
				}
			}
		})
	}
}
