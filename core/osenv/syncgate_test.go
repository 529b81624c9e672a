package osenv

import (
	"testing"
	"time"

	"walraft/core/env"
)

// TestSyncGateHoldsFsyncs: while the gate is held, a file sync and a
// directory sync block in their workers (the loop keeps running) and
// complete, successfully, only after the hold ends; through an open gate
// they complete as usual.
func TestSyncGateHoldsFsyncs(t *testing.T) {
	const hold = 150 * time.Millisecond
	for _, tc := range []struct {
		name string
		hold time.Duration
	}{{"held", hold}, {"open", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLoop()
			t.Cleanup(l.Close)
			gate := &SyncGate{}
			fs, err := NewFSWithGate(t.TempDir(), l, gate)
			if err != nil {
				t.Fatal(err)
			}
			var f env.File
			l.Do(func() { f, err = fs.Create("wal/a") })
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			gate.Hold(tc.hold)
			start := time.Now()
			fileDone, dirDone := make(chan error, 1), make(chan error, 1)
			l.Do(func() {
				f.Sync(func(err error) { fileDone <- err })
				fs.SyncDir(func(err error) { dirDone <- err })
			})
			// The loop is not blocked by the held fsyncs.
			ran := make(chan struct{})
			l.Post(func() { close(ran) })
			select {
			case <-ran:
			case <-time.After(hold / 2):
				t.Fatal("the loop is blocked while the fsyncs are held")
			}
			if err := waitErr(t, fileDone, "Sync"); err != nil {
				t.Fatal(err)
			}
			if err := waitErr(t, dirDone, "SyncDir"); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			if tc.hold > 0 && took < tc.hold {
				t.Fatalf("syncs completed after %v, inside the %v hold", took, tc.hold)
			}
			if gate.Blocked() != 0 {
				t.Fatalf("%d workers still blocked", gate.Blocked())
			}
		})
	}
}
