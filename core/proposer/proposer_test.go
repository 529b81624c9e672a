package proposer

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"walraft/core/statemach"
)

type outcome struct {
	Batch       uint64
	Err         error
	Term, Index uint64
}

// step is one event fed to the proposer.
type step struct {
	add      uint64 // add batch with this seq
	assign   uint64 // assign batch seq → (term, index)
	applied  bool   // an entry applies at (term, index) with id seq (0 = none)
	fail     uint64
	seq      uint64
	term     uint64
	index    uint64
	stale    bool
	checkLen int
}

func TestProposer(t *testing.T) {
	id := func(seq uint64) statemach.BatchID { return statemach.BatchID{Node: 1, Term: 5, Seq: seq} }
	tests := []struct {
		name   string
		cfg    Config
		steps  []step
		want   []outcome
		errors []error // errors.Is targets, parallel to want
	}{
		{
			name:  "own entry resolves its batch",
			steps: []step{{add: 1}, {assign: 1, term: 5, index: 10}, {applied: true, seq: 1, term: 5, index: 10}},
			want:  []outcome{{Batch: 1, Term: 5, Index: 10}},
		},
		{
			name:  "stale entry fails definitely",
			steps: []step{{add: 1}, {assign: 1, term: 5, index: 10}, {applied: true, seq: 1, term: 5, index: 10, stale: true}},
			want:  []outcome{{Batch: 1, Err: ErrStale, Term: 5, Index: 10}},
		},
		{
			name:  "another term's entry at the index fails the waiter",
			steps: []step{{add: 1}, {assign: 1, term: 5, index: 10}, {applied: true, seq: 0, term: 6, index: 10}},
			want:  []outcome{{Batch: 1, Err: ErrEntryLost}},
		},
		{
			name: "entries past the index sweep overtaken batches in index order",
			steps: []step{{add: 1}, {add: 2}, {add: 3}, {assign: 2, term: 5, index: 11}, {assign: 1, term: 5, index: 10},
				{assign: 3, term: 5, index: 12}, {applied: true, seq: 99, term: 6, index: 11, checkLen: 1}},
			want: []outcome{{Batch: 1, Err: ErrEntryLost}, {Batch: 2, Err: ErrEntryLost}},
		},
		{
			name:  "known bug: by index only accepts a foreign entry",
			cfg:   Config{ByIndexOnly: true},
			steps: []step{{add: 1}, {assign: 1, term: 5, index: 10}, {applied: true, seq: 0, term: 6, index: 10}},
			want:  []outcome{{Batch: 1, Term: 6, Index: 10}},
		},
		{
			name:  "dropped proposal fails",
			steps: []step{{add: 1}, {fail: 1}, {applied: true, seq: 1, term: 5, index: 10, checkLen: 0}},
			want:  []outcome{{Batch: 1, Err: errDropped}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(tt.cfg)
			var got []outcome
			for _, s := range tt.steps {
				switch {
				case s.add != 0:
					seq := s.add
					if err := p.Add(id(seq), []Waiter{func(r Result) { got = append(got, outcome{seq, r.Err, r.Term, r.Index}) }}); err != nil {
						t.Fatal(err)
					}
				case s.assign != 0:
					p.Assigned(id(s.assign), s.term, s.index)
				case s.fail != 0:
					p.Fail(id(s.fail), errDropped)
				case s.applied:
					res := statemach.Applied
					if s.stale {
						res = statemach.Stale
					}
					var bid statemach.BatchID
					if s.seq != 0 {
						bid = id(s.seq)
					}
					p.Applied(s.term, s.index, bid, res)
					if p.Len() != s.checkLen {
						t.Fatalf("after apply: %d pending, want %d", p.Len(), s.checkLen)
					}
				}
			}
			opt := cmp.Comparer(func(a, b error) bool { return errors.Is(a, b) || errors.Is(b, a) })
			if diff := cmp.Diff(tt.want, got, opt, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

// errDropped stands for the node's error when raft drops a proposal.
var errDropped = errors.New("proposal dropped")

func TestBackpressureAndDuplicates(t *testing.T) {
	p := New(Config{MaxPending: 2})
	id := func(seq uint64) statemach.BatchID { return statemach.BatchID{Node: 1, Term: 1, Seq: seq} }
	if err := p.Add(id(1), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(id(1), nil); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate add: %v", err)
	}
	if err := p.Add(id(2), nil); err != nil {
		t.Fatal(err)
	}
	if !p.Full() {
		t.Fatal("two batches pending with MaxPending 2: not Full")
	}
	// Full is the caller's admission check; Add takes a batch anyway.
	if err := p.Add(id(3), nil); err != nil {
		t.Fatalf("third add: %v, want it taken beyond MaxPending", err)
	}
	if got := p.IDs(); !cmp.Equal(got, []statemach.BatchID{id(1), id(2), id(3)}) {
		t.Fatalf("IDs = %v", got)
	}
}
