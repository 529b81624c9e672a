package reclog

import (
	"bytes"
	"fmt"
	"testing"

	"walraft/sim"
)

// TestRestartDuringTruncation restarts the process (machine up, page cache
// kept) while a truncation it issued is not durable yet, lets the next
// process append at once, and then cuts the power with torn persistence.
//
// The next process reads the truncation back from the page cache, while
// the disk still holds the old, longer file (or the old segments). If it
// wrote its records before its recovery sync made that state durable, a
// crash could keep some of its blocks next to the old size or namespace:
// old chunks whose seqs continue the new ones' then come back after them
// (the same-size case), or an old segment no longer continues the new
// tail while its chunks prove the spot synced, and Open reports corruption
// that is not there (the segments case). A rapid property test of the WAL
// found the first (an old, truncated record recovered after a newer one).
//
// Whatever the crash keeps, recovery must give a prefix of the log before
// the truncation (the truncation was never durable) or a prefix of the
// new process's log, and Open must succeed. Once the new process's own sync
// completed, its records must all survive (held appends are written).
func TestRestartDuringTruncation(t *testing.T) {
	tests := []struct {
		name     string
		segBytes int64
		// old are the payload sizes the first process appends; it syncs
		// after each group, then truncates at truncAt and exits at once.
		old     [][]int
		truncAt uint64
		// fresh are the payload sizes the next process appends right
		// after Open.
		fresh []int
		// kill: the process dies (ProcessExit, a new FS); otherwise the
		// log is closed and reopened on the same FS.
		kill bool
	}{
		// 40-byte header + 2 chunks of 28+208 bytes end at 512, the disk's
		// block: the new records fill block 0, the old third record
		// starts block 1 with the seq that follows them.
		{name: "same-size-close", old: [][]int{{208, 208, 208}}, truncAt: 0, fresh: []int{208, 208}},
		{name: "same-size-kill", old: [][]int{{208, 208, 208}}, truncAt: 0, fresh: []int{208, 208}, kill: true},
		// Segments of 1 KiB: segment 1 holds records 0-2 (208 B), 2 and 3
		// three 300-B records each, the last written after a sync past
		// segment 2. Truncate(1) removes segments 2 and 3 (their removal
		// not yet durable) before it shrinks segment 1; the next process
		// finds segment 1 whole and appends record 3 into it.
		{name: "segments-close", segBytes: 1 << 10, old: [][]int{{208, 208, 208, 300, 300, 300}, {300, 300, 300}}, truncAt: 1, fresh: []int{208}},
		{name: "segments-kill", segBytes: 1 << 10, old: [][]int{{208, 208, 208, 300, 300, 300}, {300, 300, 300}}, truncAt: 1, fresh: []int{208}, kill: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{SegmentBytes: tt.segBytes}
			restored := 0 // seeds whose crash undid the truncation
			for seed := uint64(1); seed <= uint64(seeds(40)); seed++ {
				for _, syncFirst := range []bool{false, true} {
					cfg := sim.DefaultDiskConfig()
					cfg.TornKeepProb = 0.5
					h := newHarness(t, seed, cfg)
					l := h.open(opts)
					var old [][]byte
					for _, group := range tt.old {
						for _, n := range group {
							p := payload(0, uint64(len(old)), n)
							if _, err := l.Append(p); err != nil {
								t.Fatal(err)
							}
							old = append(old, p)
						}
						if err := h.sync(l); err != nil {
							t.Fatal(err)
						}
					}
					l.Truncate(tt.truncAt, func(error) {})
					if tt.kill {
						h.gen++
						h.disk.ProcessExit()
						h.boot()
					} else {
						l.Close()
					}
					l = h.open(opts)
					log := records(t, l)
					written := h.disk.Stats().BytesWritten
					for _, n := range tt.fresh {
						p := payload(1, uint64(len(log)), n)
						if _, err := l.Append(p); err != nil {
							t.Fatal(err)
						}
						log = append(log, p)
					}
					if w := h.disk.Stats().BytesWritten; w != written {
						t.Fatalf("seed %d: appends wrote %d bytes before the recovery sync completed", seed, w-written)
					}
					synced := false
					l.Sync(func(err error) { synced = err == nil })
					if syncFirst {
						h.run(func() bool { return synced })
					}
					h.crash()
					l2, err := Open(h.fs, "log", opts)
					if err != nil {
						t.Fatalf("seed %d (sync first %v): Open after the crash: %v", seed, syncFirst, err)
					}
					got := records(t, l2)
					switch {
					case syncFirst && !equalRecords(got, log):
						t.Fatalf("seed %d: the synced log did not survive: %s", seed, diffRecords(got, log))
					case isPrefix(got, log):
					case isPrefix(got, old):
						restored++
					default:
						t.Fatalf("seed %d: recovered %d records, a prefix of neither the log before the truncation nor the log after it (versions %v)", seed, len(got), versionsOf(got))
					}
				}
			}
			if restored == 0 {
				t.Fatalf("no crash undid the truncation: the test exercises nothing")
			}
		})
	}
}

func isPrefix(got, log [][]byte) bool {
	if len(got) > len(log) {
		return false
	}
	for i := range got {
		if !bytes.Equal(got[i], log[i]) {
			return false
		}
	}
	return true
}

// versionsOf lists the payload versions (see payload) of recs.
func versionsOf(recs [][]byte) string {
	var b bytes.Buffer
	for _, p := range recs {
		fmt.Fprintf(&b, "%d", int(p[0])|int(p[1])<<8)
	}
	return b.String()
}
