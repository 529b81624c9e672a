// Package proposer holds the RaftBatchProposer's pending acks=-1 waiters.
//
// The node proposes one Raft entry per WAL batch (after the batch's fsync)
// and registers the batch here under its BatchID. Each pending batch ends
// exactly once:
//
//   - success, when its own entry applies: matched by BatchID and by the
//     (term, index) the entry was given, never by index alone;
//   - a definite, retriable failure when its entry is rejected as stale, when
//     another entry is applied at or past the index it was given (its entry
//     was overwritten by a newer leader), or when Raft dropped the proposal;
//   - an indeterminate timeout, decided by the node's timer.
//
// Registration happens in the same event as the proposal, before any Ready
// can apply the entry, so it can never race with the notification.
package proposer

import (
	"errors"
	"fmt"
	"sort"

	"walraft/core/statemach"
)

// Errors a waiter can end with.
var (
	// ErrStale: the batch's entry committed but was rejected as stale (its
	// offsets were taken by another leader's entry). Definite: it is not in
	// the log.
	ErrStale = errors.New("proposer: batch rejected as stale")
	// ErrEntryLost: another entry committed at the batch's index; the batch
	// will never commit. Definite.
	ErrEntryLost = errors.New("proposer: batch's raft entry was replaced")
	// ErrDuplicate: a batch id registered twice (a broken invariant in the
	// caller, returned rather than panicking so the caller can add context).
	ErrDuplicate = errors.New("proposer: duplicate batch id")
)

// Result ends a waiter.
type Result struct {
	Err error
	// Term and Index of the entry that resolved the batch (on success).
	Term, Index uint64
}

// Waiter is called exactly once with the batch's result.
type Waiter func(Result)

type batch struct {
	id          statemach.BatchID
	term, index uint64 // index 0 until learned from a Ready
	waiters     []Waiter
}

// Config bounds the proposer.
type Config struct {
	// MaxPending is the number of batches proposed but not yet resolved at
	// which Full reports true (back-pressure). Default 4096. The caller
	// enforces it when it accepts work, before the records are written:
	// Add itself never refuses a batch for it.
	MaxPending int
	// ByIndexOnly is a known-bad variant: resolve a waiter by whichever
	// entry applies at its index.
	ByIndexOnly bool
}

// Proposer tracks pending batches.
type Proposer struct {
	cfg      Config
	pending  map[statemach.BatchID]*batch
	assigned []*batch // batches with a known index, sorted by index
}

// New returns an empty proposer.
func New(cfg Config) *Proposer {
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 4096
	}
	return &Proposer{cfg: cfg, pending: make(map[statemach.BatchID]*batch)}
}

// Len returns the number of pending batches.
func (p *Proposer) Len() int { return len(p.pending) }

// Full reports whether a new batch would exceed MaxPending.
func (p *Proposer) Full() bool { return len(p.pending) >= p.cfg.MaxPending }

// Add registers a batch about to be proposed with its waiters. It never
// refuses a batch for MaxPending, even when Full: the node checks Full when
// it accepts a request, and cannot refuse the entries of a request it
// accepted, since acks=1 may already be answered for the same WAL batch.
// The only error is ErrDuplicate.
func (p *Proposer) Add(id statemach.BatchID, waiters []Waiter) error {
	if _, ok := p.pending[id]; ok {
		return fmt.Errorf("%w: %+v", ErrDuplicate, id)
	}
	p.pending[id] = &batch{id: id, waiters: waiters}
	return nil
}

// Assigned records the (term, index) a pending batch's entry was given, as
// seen in a Ready's entries. Unknown ids are ignored (entries of other
// nodes, or of batches already resolved).
func (p *Proposer) Assigned(id statemach.BatchID, term, index uint64) {
	b := p.pending[id]
	if b == nil {
		return
	}
	if b.index != 0 {
		p.remove(b)
		p.pending[id] = b
	}
	b.term, b.index = term, index
	i := sort.Search(len(p.assigned), func(i int) bool { return p.assigned[i].index > index })
	p.assigned = append(p.assigned, nil)
	copy(p.assigned[i+1:], p.assigned[i:])
	p.assigned[i] = b
}

// Applied reports that the entry at (term, index), with batch id id (zero if
// none), was applied with result res. It resolves the batch that owns the
// entry and fails every batch whose entry was overtaken.
func (p *Proposer) Applied(term, index uint64, id statemach.BatchID, res statemach.Result) {
	if p.cfg.ByIndexOnly {
		p.appliedByIndex(term, index, res)
		return
	}
	if b := p.pending[id]; b != nil && !id.IsZero() && (b.index == 0 || (b.term == term && b.index == index)) {
		if res == statemach.Applied {
			p.finish(b, Result{Term: term, Index: index})
		} else {
			p.finish(b, Result{Err: ErrStale, Term: term, Index: index})
		}
	}
	for len(p.assigned) > 0 && p.assigned[0].index <= index {
		b := p.assigned[0]
		p.finish(b, Result{Err: fmt.Errorf("%w: index %d (term %d) now holds another entry (term %d)", ErrEntryLost, b.index, b.term, term)})
	}
}

// appliedByIndex is the known-bad variant: whatever applies at a batch's
// index resolves it as a success.
func (p *Proposer) appliedByIndex(term, index uint64, res statemach.Result) {
	for len(p.assigned) > 0 && p.assigned[0].index <= index {
		b := p.assigned[0]
		if b.index == index && res == statemach.Applied {
			p.finish(b, Result{Term: term, Index: index})
		} else {
			p.finish(b, Result{Err: ErrEntryLost})
		}
	}
}

// Fail ends a pending batch with err (e.g. Raft dropped the proposal).
func (p *Proposer) Fail(id statemach.BatchID, err error) {
	if b := p.pending[id]; b != nil {
		p.finish(b, Result{Err: err})
	}
}

// IDs returns the pending batch ids in a deterministic order (by term, node,
// seq), for callers that must fail them all.
func (p *Proposer) IDs() []statemach.BatchID {
	ids := make([]statemach.BatchID, 0, len(p.pending))
	for id := range p.pending {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := ids[i], ids[j]
		if a.Term != b.Term {
			return a.Term < b.Term
		}
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		return a.Seq < b.Seq
	})
	return ids
}

func (p *Proposer) finish(b *batch, r Result) {
	p.remove(b)
	for _, w := range b.waiters {
		w(r)
	}
}

func (p *Proposer) remove(b *batch) {
	delete(p.pending, b.id)
	if b.index == 0 {
		return
	}
	i := sort.Search(len(p.assigned), func(i int) bool { return p.assigned[i].index >= b.index })
	for ; i < len(p.assigned) && p.assigned[i].index == b.index; i++ {
		if p.assigned[i] == b {
			p.assigned = append(p.assigned[:i], p.assigned[i+1:]...)
			return
		}
	}
}
