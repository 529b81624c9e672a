package statemach

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// memLog is an in-memory PartitionLog for unit tests.
type memLog struct {
	recs      [][]byte
	truncates []int64
	appends   int
	deferred  int // appends made with AppendDeferred
}

func (m *memLog) AppendDeferred(records [][]byte, done func(error)) (int64, error) {
	m.deferred++
	return m.Append(records, done)
}

func (m *memLog) Append(records [][]byte, done func(error)) (int64, error) {
	base := int64(len(m.recs))
	m.recs = append(m.recs, records...)
	m.appends++
	return base, nil
}
func (m *memLog) End() int64 { return int64(len(m.recs)) }
func (m *memLog) Err() error { return nil }
func (m *memLog) Read(off int64, maxBytes int) ([][]byte, error) {
	if off < 0 || off > int64(len(m.recs)) {
		return nil, errors.New("out of range")
	}
	return m.recs[off:], nil
}
func (m *memLog) Truncate(off int64, done func(error)) {
	m.truncates = append(m.truncates, off)
	m.recs = m.recs[:off]
}

func recs(vals ...string) [][]byte {
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out
}

func TestCodecRoundTrip(t *testing.T) {
	id := BatchID{Node: 3, Term: 7, Seq: 99}
	tests := []struct {
		name string
		data []byte
		want Entry
	}{
		{"batch", EncodeBatch(id, "orders", 2, 40, recs("a", "bb", ""), false),
			Entry{Tag: TagBatch, ID: id, Topic: "orders", Partition: 2, Base: 40, Count: 3, Records: recs("a", "bb", "")}},
		{"metadata-only", EncodeBatch(id, "t", 0, 5, recs("x", "y"), true),
			Entry{Tag: TagBatch, ID: id, Topic: "t", Partition: 0, Base: 5, Count: 2, MetadataOnly: true}},
		{"canonical with id", EncodeCanonical(id, "t", 1, 9, []byte("rec")),
			Entry{Tag: TagCanonical, ID: id, Topic: "t", Partition: 1, Base: 9, Count: 1, Records: recs("rec")}},
		{"canonical legacy without id", EncodeCanonical(BatchID{}, "t", 1, 9, []byte("rec")),
			Entry{Tag: TagCanonical, Topic: "t", Partition: 1, Base: 9, Count: 1, Records: recs("rec")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("decode mismatch (-want +got):\n%s", diff)
			}
			pid, ok := PeekID(tt.data)
			if ok != !tt.want.ID.IsZero() || pid != tt.want.ID {
				t.Fatalf("PeekID = %v, %v; want %v", pid, ok, tt.want.ID)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	good := EncodeBatch(BatchID{1, 1, 1}, "t", 0, 0, recs("a", "b"), false)
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"unknown tag", []byte{9, formatVersion, 0}, ErrUnknownFormat},
		{"unknown version", []byte{TagBatch, 77, 0}, ErrUnknownFormat},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"trailing", append(append([]byte{}, good...), 0), ErrMalformed},
		{"huge count", append(EncodeBatch(BatchID{1, 1, 1}, "t", 0, 0, nil, false)[:len(EncodeBatch(BatchID{1, 1, 1}, "t", 0, 0, nil, false))-1], 0xff, 0xff, 0xff, 0x7f), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.data); !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(EncodeBatch(BatchID{1, 2, 3}, "t", 0, 10, recs("a", "b"), false))
	f.Add(EncodeCanonical(BatchID{}, "t", 0, 10, []byte("a")))
	f.Add([]byte{TagBatch, formatVersion})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			return
		}
		if !e.MetadataOnly && int64(len(e.Records)) != e.Count {
			t.Fatalf("decoded %d records, count %d", len(e.Records), e.Count)
		}
		// Re-encoding a decoded entry must decode to the same entry.
		var again []byte
		if e.Tag == TagBatch {
			again = EncodeBatch(e.ID, e.Topic, e.Partition, e.Base, e.Records, e.MetadataOnly)
			if e.MetadataOnly {
				return // the count is not recoverable from records
			}
		} else {
			again = EncodeCanonical(e.ID, e.Topic, e.Partition, e.Base, e.Records[0])
		}
		e2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if diff := cmp.Diff(e, e2); diff != "" {
			t.Fatalf("round trip mismatch:\n%s", diff)
		}
	})
}

func TestApply(t *testing.T) {
	k := Key{"t", 0}
	id := func(s uint64) BatchID { return BatchID{Node: 1, Term: 2, Seq: s} }
	batch := func(s uint64, base int64, vals ...string) Entry {
		e, err := Decode(EncodeBatch(id(s), "t", 0, base, recs(vals...), false))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	tests := []struct {
		name      string
		opts      Options
		log       []string // initial log content
		own       map[int64]uint64
		entries   []Entry
		want      []Result
		wantLog   []string
		wantHWM   int64
		truncates []int64
		deferred  int // appends made with AppendDeferred
	}{
		{name: "follower appends", entries: []Entry{batch(1, 0, "a", "b"), batch(2, 2, "c")},
			want: []Result{Applied, Applied}, wantLog: []string{"a", "b", "c"}, wantHWM: 3},
		{name: "leader's own batch is idempotent", log: []string{"a", "b"}, own: map[int64]uint64{0: 1},
			entries: []Entry{batch(1, 0, "a", "b")}, want: []Result{Applied}, wantLog: []string{"a", "b"}, wantHWM: 2},
		{name: "same bytes without own note", log: []string{"a", "b", "x"},
			entries: []Entry{batch(1, 0, "a", "b")}, want: []Result{Applied}, wantLog: []string{"a", "b", "x"}, wantHWM: 2},
		{name: "different uncommitted suffix is replaced", log: []string{"a", "x", "y"},
			entries: []Entry{batch(1, 0, "a", "b")}, want: []Result{Applied}, wantLog: []string{"a", "b"}, wantHWM: 2, truncates: []int64{1}},
		{name: "stale base rejected", entries: []Entry{batch(1, 0, "a"), batch(2, 0, "z"), batch(3, 5, "q")},
			want: []Result{Applied, Stale, Stale}, wantLog: []string{"a"}, wantHWM: 1},
		{name: "known bug: no truncate keeps the old suffix", opts: Options{NoTruncate: true}, log: []string{"x"},
			entries: []Entry{batch(1, 0, "a")}, want: []Result{Applied}, wantLog: []string{"x"}, wantHWM: 1},
		{name: "deferred apply writes without fsync", opts: Options{DeferApplySync: true}, log: []string{"a", "x"},
			entries: []Entry{batch(1, 0, "a", "b"), batch(2, 2, "c")},
			want:    []Result{Applied, Applied}, wantLog: []string{"a", "b", "c"}, wantHWM: 3, truncates: []int64{1}, deferred: 2},
		{name: "mixed canonical and batch", entries: func() []Entry {
			c, _ := Decode(EncodeCanonical(BatchID{}, "t", 0, 0, []byte("a")))
			c2, _ := Decode(EncodeCanonical(BatchID{}, "t", 0, 1, []byte("b")))
			return []Entry{c, c2, batch(1, 2, "c", "d")}
		}(), want: []Result{Applied, Applied, Applied}, wantLog: []string{"a", "b", "c", "d"}, wantHWM: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ml := &memLog{recs: recs(tt.log...)}
			var errs []error
			sm := New(map[Key]PartitionLog{k: ml}, tt.opts, func(err error) { errs = append(errs, err) })
			p := sm.Partition(k)
			for b, s := range tt.own {
				p.NoteOwn(b, id(s))
			}
			var got []Result
			for i := range tt.entries {
				r, err := sm.Apply(&tt.entries[i])
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, r)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			var gotLog []string
			for _, r := range ml.recs {
				gotLog = append(gotLog, string(r))
			}
			if diff := cmp.Diff(tt.wantLog, gotLog); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
			if p.HWM() != tt.wantHWM || p.Committed() != tt.wantHWM {
				t.Errorf("HWM %d committed %d, want %d", p.HWM(), p.Committed(), tt.wantHWM)
			}
			if diff := cmp.Diff(tt.truncates, ml.truncates); diff != "" {
				t.Errorf("truncates (-want +got):\n%s", diff)
			}
			if ml.deferred != tt.deferred {
				t.Errorf("%d deferred appends, want %d", ml.deferred, tt.deferred)
			}
			if len(errs) > 0 {
				t.Errorf("storage errors: %v", errs)
			}
		})
	}
}

func TestApplyUnknownPartition(t *testing.T) {
	sm := New(map[Key]PartitionLog{{"t", 0}: &memLog{}}, Options{}, nil)
	e, _ := Decode(EncodeBatch(BatchID{1, 1, 1}, "other", 0, 0, recs("a"), false))
	if _, err := sm.Apply(&e); !errors.Is(err, ErrUnknownPartition) {
		t.Fatalf("err = %v, want ErrUnknownPartition", err)
	}
}

func TestHWMNeverBackward(t *testing.T) {
	sm := New(map[Key]PartitionLog{{"t", 0}: &memLog{recs: recs("a", "b", "c")}}, Options{}, nil)
	p := sm.Partition(Key{"t", 0})
	p.SetDurable(3)
	defer func() {
		r := recover()
		if r == nil || !bytes.Contains([]byte(fmt.Sprint(r)), []byte("backward")) {
			t.Fatalf("SetDurable backward: recover() = %v, want a panic about moving backward", r)
		}
	}()
	p.SetDurable(2)
}

func TestMetadataOnlyMovesHWMPastLogEnd(t *testing.T) {
	ml := &memLog{}
	sm := New(map[Key]PartitionLog{{"t", 0}: ml}, Options{}, nil)
	e, _ := Decode(EncodeBatch(BatchID{1, 1, 1}, "t", 0, 0, recs("a", "b"), true))
	if r, err := sm.Apply(&e); err != nil || r != Applied {
		t.Fatal(r, err)
	}
	if p := sm.Partition(Key{"t", 0}); p.HWM() != 2 || ml.End() != 0 {
		t.Fatalf("HWM %d log end %d: the variant must leave followers without the bytes", p.HWM(), ml.End())
	}
}

// TestAcceptStaleIsCaughtByTheRule: the stale-batch rule (DESIGN.md 3.2)
// against its planted bug. A deposed leader's batch at base 0 commits after
// another batch already covered offsets 0..1: the correct state machine
// rejects it and keeps the committed records; with AcceptStale it replaces
// committed records (what S2/S4 would see in a cluster).
func TestAcceptStaleIsCaughtByTheRule(t *testing.T) {
	for _, bug := range []bool{false, true} {
		log := &memLog{}
		k := Key{"t", 0}
		sm := New(map[Key]PartitionLog{k: log}, Options{AcceptStale: bug}, func(err error) { t.Fatal(err) })
		first, _ := Decode(EncodeBatch(BatchID{Node: 2, Term: 2, Seq: 1}, "t", 0, 0, recs("new-a", "new-b"), false))
		if res, err := sm.Apply(&first); err != nil || res != Applied {
			t.Fatalf("bug=%v: first batch: %v %v", bug, res, err)
		}
		stale, _ := Decode(EncodeBatch(BatchID{Node: 1, Term: 1, Seq: 7}, "t", 0, 0, recs("zombie"), false))
		res, err := sm.Apply(&stale)
		if err != nil {
			t.Fatalf("bug=%v: stale batch: %v", bug, err)
		}
		got := string(bytes.Join(log.recs, []byte(",")))
		switch {
		case !bug && (res != Stale || got != "new-a,new-b"):
			t.Fatalf("correct: stale batch %v, log %q; want rejected and the log unchanged", res, got)
		case bug && (res != Applied || got == "new-a,new-b"):
			t.Fatalf("AcceptStale: stale batch %v, log %q; want the planted bug to overwrite committed records", res, got)
		}
		if p := sm.Partition(k); p.Committed() != 2 || p.HWM() != 2 {
			t.Fatalf("bug=%v: committed %d HWM %d, want 2 (never backward)", bug, p.Committed(), p.HWM())
		}
	}
}
