package sim

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"walraft/core/env"
)

// The reference model of the disk: whole-file copies for every snapshot,
// no cleverness, so it is obviously right. The randomized test below runs
// the same operations on both and compares every image after every step.

type modelInode struct {
	vol, dur []byte
	queue    [][]byte // snapshots of pending syncs, in issue order
}

type diskModel struct {
	vol, dur map[string]*modelInode
	dirQueue []map[string]*modelInode
}

func (m *diskModel) check(t *testing.T, d *Disk, step int, what string) {
	t.Helper()
	if got, want := d.Files(), slices.Sorted(maps.Keys(m.vol)); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("step %d (%s): Files = %q, want %q", step, what, got, want)
	}
	if got, want := d.DurableFiles(), slices.Sorted(maps.Keys(m.dur)); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("step %d (%s): DurableFiles = %q, want %q", step, what, got, want)
	}
	for name, mi := range m.vol {
		if got, _ := d.VolatileImage(name); !bytes.Equal(got, mi.vol) {
			t.Fatalf("step %d (%s): volatile %q = %s, want %s", step, what, name, clip(got), clip(mi.vol))
		}
	}
	for name, mi := range m.dur {
		if got, _ := d.DurableImage(name); !bytes.Equal(got, mi.dur) {
			t.Fatalf("step %d (%s): durable %q = %s, want %s", step, what, name, clip(got), clip(mi.dur))
		}
	}
}

// runDiskModel runs steps random operations from seed, with writes of up to
// maxWrite bytes, and returns a fingerprint of everything observable, for
// the determinism check.
func runDiskModel(t *testing.T, seed uint64, steps, maxWrite int) string {
	streams := NewStreams(seed)
	ops := streams.Stream("ops")
	cfg := DiskConfig{
		SyncMin:     0,
		SyncMax:     time.Duration(ops.IntN(3)) * time.Millisecond,
		StallProb:   0.05,
		StallMin:    5 * time.Millisecond,
		StallMax:    50 * time.Millisecond,
		SyncEIOProb: []float64{0, 0.1, 0.5}[ops.IntN(3)],
		BlockSize:   []int{1, 7, 64, 512}[ops.IntN(4)],
	}
	s := NewScheduler()
	d := NewDisk(s, streams.Stream("disk"), cfg)
	m := &diskModel{vol: map[string]*modelInode{}, dur: map[string]*modelInode{}}
	gen := 0
	fs := d.FS(nil)
	handles := map[string]env.File{}
	var log bytes.Buffer
	names := []string{"a", "b", "c"}

	for step := range steps {
		name := names[ops.IntN(len(names))]
		mi := m.vol[name]
		f := handles[name]
		what := ""
		switch op := ops.IntN(100); {
		case op < 30 && mi != nil:
			n := ops.IntN(maxWrite)
			p := make([]byte, n)
			ops.Read(p)
			if ops.Chance(0.05) {
				d.FailNextWrites(1)
			}
			got, err := f.Write(p)
			if err != nil && !errors.Is(err, env.ErrIO) {
				t.Fatalf("step %d: write: %v", step, err)
			}
			mi.vol = append(mi.vol, p[:got]...)
			what = fmt.Sprintf("write %s %d/%d %v", name, got, n, err != nil)
		case op < 40 && mi != nil:
			size := ops.Int64N(int64(len(mi.vol)) + 1)
			if err := f.Truncate(size); err != nil {
				t.Fatalf("step %d: truncate: %v", step, err)
			}
			mi.vol = mi.vol[:size:size]
			what = fmt.Sprintf("truncate %s %d", name, size)
		case op < 60 && mi != nil:
			if ops.Chance(0.1) {
				d.FailNextSyncs(1)
			}
			mi.queue = append(mi.queue, slices.Clone(mi.vol))
			myGen := gen
			f.Sync(func(err error) {
				if myGen != gen {
					t.Errorf("sync from before a crash completed")
					return
				}
				snap := mi.queue[0]
				mi.queue = mi.queue[1:]
				if err == nil {
					mi.dur = snap
				} else if !errors.Is(err, env.ErrIO) {
					t.Errorf("sync: %v", err)
				}
				fmt.Fprintf(&log, "%v sync %s %v\n", s.Now(), name, err != nil)
			})
			what = "sync " + name
		case op < 65:
			m.dirQueue = append(m.dirQueue, maps.Clone(m.vol))
			myGen := gen
			fs.SyncDir(func(err error) {
				if myGen != gen {
					t.Errorf("dir sync from before a crash completed")
					return
				}
				snap := m.dirQueue[0]
				m.dirQueue = m.dirQueue[1:]
				if err == nil {
					m.dur = snap
				}
				fmt.Fprintf(&log, "%v syncdir %v\n", s.Now(), err != nil)
			})
			what = "syncdir"
		case op < 70 && mi == nil:
			nf, err := fs.Create(name)
			if err != nil {
				t.Fatalf("step %d: create: %v", step, err)
			}
			handles[name] = nf
			m.vol[name] = &modelInode{}
			what = "create " + name
		case op < 73 && mi != nil:
			if err := fs.Remove(name); err != nil {
				t.Fatalf("step %d: remove: %v", step, err)
			}
			delete(handles, name)
			delete(m.vol, name)
			what = "remove " + name
		case op < 76:
			// Crash with a torn probability of 0 or 1 (both exactly
			// predictable) or in between (checked byte by byte).
			p := []float64{0, 1, 0.5}[ops.IntN(3)]
			c := d.Config()
			c.TornKeepProb = p
			d.SetConfig(c)
			before := map[string][2][]byte{}
			for name, mi := range m.dur {
				before[name] = [2][]byte{mi.dur, mi.vol}
			}
			d.Crash()
			gen++
			for _, name := range slices.Sorted(maps.Keys(m.dur)) {
				mi := m.dur[name]
				got, _ := d.DurableImage(name)
				switch p {
				case 0:
				case 1:
					mi.dur = slices.Clone(mi.vol)
				default:
					checkTorn(t, step, name, got, mi.dur, mi.vol)
					mi.dur = got
				}
				mi.vol = slices.Clone(mi.dur)
				mi.queue = nil
				fmt.Fprintf(&log, "crash %s %x\n", name, got)
			}
			m.vol = maps.Clone(m.dur)
			m.dirQueue = nil
			fs = d.FS(nil)
			handles = map[string]env.File{}
			for name := range m.vol {
				h, err := fs.Open(name)
				if err != nil {
					t.Fatalf("step %d: reopen %q after crash: %v", step, name, err)
				}
				handles[name] = h
			}
			what = fmt.Sprintf("crash p=%v", p)
		default:
			d := time.Duration(ops.IntN(3000)) * time.Microsecond
			s.RunFor(d)
			what = fmt.Sprintf("run %v", d)
		}
		m.check(t, d, step, what)
	}
	s.RunFor(time.Hour)
	m.check(t, d, steps, "drain")
	fmt.Fprintf(&log, "%+v\n", d.Stats())
	return log.String()
}

// checkTorn checks that every byte of a torn image comes from the durable
// image, the volatile image, or is a zero-filled gap.
func checkTorn(t *testing.T, step int, name string, got, dur, vol []byte) {
	t.Helper()
	if len(got) > max(len(dur), len(vol)) {
		t.Fatalf("step %d: torn %q has %d bytes, more than durable %d and volatile %d", step, name, len(got), len(dur), len(vol))
	}
	for i, b := range got {
		if (i < len(dur) && b == dur[i]) || (i < len(vol) && b == vol[i]) || b == 0 {
			continue
		}
		t.Fatalf("step %d: torn %q byte %d = %#x, from neither image", step, name, i, b)
	}
}

func TestDiskModel(t *testing.T) {
	seeds, steps := 40, 400
	if v, err := strconv.Atoi(os.Getenv("RAPID_CHECKS")); err == nil && v > 0 {
		seeds, steps = v, 2000
	}
	for seed := range uint64(seeds) {
		a := runDiskModel(t, seed, steps, 1200)
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
		if seed%8 == 0 {
			if b := runDiskModel(t, seed, steps, 1200); a != b {
				t.Fatalf("seed %d: two runs differ", seed)
			}
		}
	}
}

// TestDiskModelBigFiles is TestDiskModel with writes of up to three image
// pages, so files span many pages: appends cross page boundaries, synced
// pages are shared between the durable and the volatile image (settle),
// and crashes, torn writes, truncates and failed syncs hit shared pages.
func TestDiskModelBigFiles(t *testing.T) {
	seeds, steps := 12, 300
	if v, err := strconv.Atoi(os.Getenv("RAPID_CHECKS")); err == nil && v > 0 {
		seeds, steps = v/4+1, 1000
	}
	for seed := range uint64(seeds) {
		runDiskModel(t, seed, steps, 3*pageSize)
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
	}
}
