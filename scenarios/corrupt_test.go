package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"walraft/core/reclog"
	"walraft/sim"
)

// TestProvenSpotsAreDetected: every byte provenSpots offers for corruption
// (segment headers, chunk headers and chunk data, in several segments) is
// one whose damage reclog recovery reports as ErrCorrupt, or whose damage
// leaves every record intact; never one that recovery silently cuts away.
// It also checks that the spots are not empty and include segment headers,
// so the corrupt scenario does reach them, and that the known-bad
// CutAtCorruption recovery does cut at them (so the test can fail).
func TestProvenSpotsAreDetected(t *testing.T) {
	s := sim.NewScheduler()
	d := sim.NewDisk(s, sim.NewStreams(5).Stream("disk"), sim.DefaultDiskConfig())
	fs := d.FS(func(fn func()) { fn() })
	l, err := reclog.Open(fs, "raft", reclog.Options{SegmentBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := range 60 {
		rec := bytes.Repeat([]byte{byte(i)}, 100+(i*997)%3000)
		copy(rec, fmt.Sprintf("record %d|", i))
		if _, err := l.Append(rec); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec)
		if i%5 == 4 {
			done := false
			l.Sync(func(err error) {
				if err != nil {
					t.Fatal(err)
				}
				done = true
			})
			s.RunWhile(func() bool { return !done }, s.Now()+time.Minute)
		}
	}
	spots := provenSpots(d, "raft")
	var total int64
	segHeaders := 0
	for _, sp := range spots {
		total += sp.end - sp.start
		if sp.start < rlSegHeader {
			segHeaders++
		}
	}
	if total == 0 || segHeaders < 2 {
		t.Fatalf("%d proven bytes, %d segment headers among them: the log should offer both", total, segHeaders)
	}
	// Every segment-header byte offered, and a spread of the rest.
	type spot struct {
		file string
		off  int64
	}
	var tries []spot
	step := max(total/300, 1)
	for _, sp := range spots {
		for off := sp.start; off < sp.end; off++ {
			if off < rlSegHeader || (off-sp.start)%step == 0 {
				tries = append(tries, spot{sp.file, off})
			}
		}
	}
	open := func(sp spot, bugs reclog.Bugs) ([][]byte, error) {
		ss := sim.NewScheduler()
		scratch := sim.NewDisk(ss, sim.NewStreams(1).Stream("scratch"), sim.DiskConfig{})
		sfs := scratch.FS(nil)
		for _, name := range d.DurableFiles() {
			img, _ := d.DurableImage(name)
			if name == sp.file {
				img = bytes.Clone(img)
				img[sp.off] ^= 0x5a
			}
			f, err := sfs.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(img); err != nil {
				t.Fatal(err)
			}
		}
		rl, err := reclog.OpenWithBugs(sfs, "raft", reclog.Options{SegmentBytes: 16 << 10}, bugs)
		if err != nil {
			return nil, err
		}
		var got [][]byte
		err = rl.Scan(rl.First(), func(_ uint64, rec []byte) error {
			got = append(got, bytes.Clone(rec))
			return nil
		})
		return got, err
	}
	cut := 0
	for _, sp := range tries {
		got, err := open(sp, reclog.Bugs{})
		switch {
		case errors.Is(err, reclog.ErrCorrupt):
		case err != nil:
			t.Fatalf("%s byte %d: %v", sp.file, sp.off, err)
		case len(got) != len(want):
			t.Fatalf("%s byte %d damaged: recovery kept %d of %d records without an error", sp.file, sp.off, len(got), len(want))
		default:
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("%s byte %d damaged: record %d changed without an error", sp.file, sp.off, i)
				}
			}
		}
		if got, err := open(sp, reclog.Bugs{CutAtCorruption: true}); err == nil && len(got) < len(want) {
			cut++
		}
	}
	var durable int
	for _, name := range d.DurableFiles() {
		img, _ := d.DurableImage(name)
		durable += len(img)
	}
	t.Logf("%d spots tried (%d proven bytes of %d synced, %d segment headers); the cut-at-corruption recovery shortened the log at %d",
		len(tries), total, durable, segHeaders, cut)
	if cut == 0 {
		t.Fatalf("the known-bad recovery never cut: the test cannot tell it from the correct one")
	}
}
