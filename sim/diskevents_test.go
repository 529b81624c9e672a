package sim

import (
	"errors"
	"slices"
	"testing"
	"time"

	"walraft/core/env"
)

// TestDiskEventsCounted: every disk operation and completion is one event of
// its kind, numbered from 1, in the order it took effect.
func TestDiskEventsCounted(t *testing.T) {
	s, d := newTestDisk(1, DefaultDiskConfig())
	var got []DiskEvent
	var nums []uint64
	d.SetEventHook(func(n uint64, k DiskEvent) {
		nums = append(nums, n)
		got = append(got, k)
	})
	fs := d.FS(nil)
	f := mustCreate(t, fs, "a")
	mustWrite(t, f, []byte("hello"))
	mustWrite(t, f, []byte("world"))
	must(t, syncWait(t, s, f))
	must(t, f.Truncate(3))
	must(t, dirSyncWait(t, s, fs))
	must(t, fs.Remove("a"))
	if _, err := fs.Open("nope"); err == nil {
		t.Fatal("Open of a missing file succeeded")
	}
	want := []DiskEvent{DiskEventCreate, DiskEventWrite, DiskEventWrite, DiskEventSync, DiskEventSyncDone,
		DiskEventTruncate, DiskEventSyncDir, DiskEventSyncDirDone, DiskEventRemove}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i, n := range nums {
		if n != uint64(i+1) {
			t.Fatalf("event %d numbered %d", i+1, n)
		}
	}
	if d.Events() != uint64(len(want)) {
		t.Fatalf("Events() = %d, want %d", d.Events(), len(want))
	}
	for _, k := range DiskEventKinds {
		if k.String() == "" || k.String()[0] == 'D' {
			t.Fatalf("kind %d has no name: %q", k, k)
		}
		if back, err := ParseDiskEvent(k.String()); err != nil || back != k {
			t.Fatalf("ParseDiskEvent(%q) = %v, %v", k, back, err)
		}
	}
	if _, err := ParseDiskEvent("fsync"); err == nil {
		t.Fatal("ParseDiskEvent accepted an unknown kind")
	}
}

// walker is a test node that, at boot and after each sync completes, writes
// one more record and syncs it, until it wrote "abcd"; it sends a message
// after each sync so a test can see that a crashed incarnation sends
// nothing more.
type walker struct {
	e    env.Env
	f    env.File
	next byte
	errs *[]error
}

func (n *walker) Receive(env.NodeID, []byte) {}

func (n *walker) step() {
	if n.next > 'd' {
		return
	}
	b := n.next
	n.next++
	if _, err := n.f.Write([]byte{b}); err != nil {
		*n.errs = append(*n.errs, err)
		return
	}
	n.f.Sync(func(err error) {
		if err != nil {
			*n.errs = append(*n.errs, err)
			return
		}
		n.e.Net.Send(2, []byte{b})
		n.step()
	})
}

// TestDiskEventCrashPoints crashes the node at each of its disk events in
// turn (from the hook, inside the node's own call) and checks the disk keeps
// exactly what was durable at that event, the crashed incarnation has no
// effect after it (its next calls fail with env.ErrClosed, it sends
// nothing) and a crash inside boot leaves the node down.
func TestDiskEventCrashPoints(t *testing.T) {
	// Boot: create (1), syncdir (2), write a (3), sync (4); then
	// syncdir.done, sync.done, write b, sync, ... The durable content after
	// event k, for a clean crash: what the completed syncs covered.
	run := func(crashAt uint64) (durable string, sent int, errs []error, down bool, events uint64) {
		w, err := NewWorld(7, WorldConfig{Net: LinkConfig{Latency: time.Millisecond}})
		must(t, err)
		defer w.Close()
		boot := func(id env.NodeID, e env.Env) (Receiver, error) {
			n := &walker{e: e, next: 'a', errs: &errs}
			if id != 1 {
				return n, nil
			}
			f, err := e.FS.Create("log")
			if err != nil {
				errs = append(errs, err)
				return nil, err
			}
			n.f = f
			e.FS.SyncDir(func(error) {})
			n.step()
			return n, nil
		}
		must(t, w.AddNode(1, boot, DiskConfig{SyncMin: time.Millisecond, SyncMax: time.Millisecond}))
		must(t, w.AddNode(2, func(id env.NodeID, e env.Env) (Receiver, error) { return &walker{}, nil }, DiskConfig{}))
		d := w.Disk(1)
		d.SetEventHook(func(n uint64, k DiskEvent) {
			if n == crashAt {
				must(t, w.Crash(1))
			}
		})
		must(t, w.Start())
		w.Sched().RunUntil(time.Second)
		img, _ := d.DurableImage("log")
		return string(img), int(w.Net().Stats().Delivered), errs, w.Process(1).State() == StateDown, d.Events()
	}
	_, sent, errs, _, total := run(0)
	if len(errs) > 0 || sent != 4 {
		t.Fatalf("no crash: %d messages, errors %v; want 4 and none", sent, errs)
	}
	tests := []struct {
		k       uint64
		durable string
		sent    int
	}{
		{1, "", 0},    // create: the name is not durable yet
		{2, "", 0},    // syncdir issued
		{3, "", 0},    // write a, unsynced
		{4, "", 0},    // sync of a issued, not complete
		{5, "", 0},    // syncdir done: the empty file is durable
		{6, "a", 0},   // sync of a done: durable, but the node never heard (no message)
		{7, "a", 1},   // write b
		{10, "ab", 2}, // sync of b done, then write c
		{total, "abcd", 3},
	}
	for _, tt := range tests {
		durable, sent, errs, down, _ := run(tt.k)
		if durable != tt.durable || sent != tt.sent || !down {
			t.Errorf("crash at event %d: durable %q, %d messages sent, down %v; want %q, %d, true", tt.k, durable, sent, down, tt.durable, tt.sent)
		}
		for _, err := range errs {
			if !errors.Is(err, env.ErrClosed) {
				t.Errorf("crash at event %d: the crashed incarnation saw %v, want only env.ErrClosed", tt.k, err)
			}
		}
	}
}
