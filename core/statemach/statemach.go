// Package statemach is walraft's replicated state machine: it decodes
// committed Raft entries (the `batch` and legacy `canonical` formats) and
// applies them to the partition logs, moving each partition's high
// watermark.
//
// The rules (DESIGN.md section 3):
//
//   - An entry applies only when its base offset equals the partition's
//     committed end. Otherwise it was written by a deposed leader over offsets
//     that another entry already holds: it is stale, rejected, and its waiters
//     fail with a retriable error.
//   - Applying writes the entry's records at its offsets. On the leader that
//     wrote the batch the records are already in its WAL, and applying is
//     idempotent. If the log holds different bytes there (an uncommitted
//     suffix of an older term), the log is truncated at the first difference
//     and the committed records are written.
//   - The high watermark is the committed end: it never exceeds what is
//     committed, never exceeds the log end, never moves backward.
package statemach

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
)

// ErrUnknownPartition: an entry or request names a partition this node does
// not host.
var ErrUnknownPartition = errors.New("statemach: unknown topic or partition")

// PartitionLog is the storage of one partition: the WAL (*wal.WAL satisfies
// it).
type PartitionLog interface {
	Append(records [][]byte, done func(error)) (int64, error)
	// AppendDeferred is Append for records that need no fsync of their own
	// (wal.WAL.AppendDeferred): Options.DeferApplySync.
	AppendDeferred(records [][]byte, done func(error)) (int64, error)
	End() int64
	Read(offset int64, maxBytes int) ([][]byte, error)
	Truncate(offset int64, done func(error))
	// Err is non-nil once the log failed (fail-stop).
	Err() error
}

// Result says what Apply did with an entry.
type Result int

const (
	// Applied: the entry's records are at their offsets and the committed
	// end moved past them.
	Applied Result = iota
	// Stale: the entry's base was not the committed end; nothing changed.
	Stale
)

// String names the result.
func (r Result) String() string {
	if r == Applied {
		return "applied"
	}
	return "stale"
}

// Key names a partition.
type Key struct {
	Topic     string
	Partition int32
}

// Partition is the applied state of one partition.
type Partition struct {
	Key Key
	Log PartitionLog

	committed int64 // committed end: every offset below it is committed
	hwm       int64 // visible end; equals committed unless a known-bad variant moves it early
	own       map[int64]BatchID
}

// Committed returns the committed end offset.
func (p *Partition) Committed() int64 { return p.committed }

// HWM returns the high watermark: consumers read below it.
func (p *Partition) HWM() int64 { return p.hwm }

// NoteOwn records that this node wrote batch id at base in its own log, so
// applying that batch can skip reading the bytes back to compare them.
func (p *Partition) NoteOwn(base int64, id BatchID) {
	if p.own == nil {
		p.own = make(map[int64]BatchID)
	}
	p.own[base] = id
}

// ForgetOwnFrom drops own-batch notes at or after offset (after the log was
// truncated there).
func (p *Partition) ForgetOwnFrom(offset int64) {
	for b := range p.own {
		if b >= offset {
			delete(p.own, b)
		}
	}
}

// SetDurable moves the committed end and the HWM forward to v: standalone
// mode, where what is fsynced is committed. It panics if v is behind: a
// backward HWM is a broken invariant, not an expected condition.
func (p *Partition) SetDurable(v int64) {
	if v < p.hwm || v < p.committed {
		panic(fmt.Sprintf("statemach: %s/%d HWM would move backward from %d to %d", p.Key.Topic, p.Key.Partition, p.hwm, v))
	}
	p.hwm, p.committed = v, v
}

// BugHWMAhead moves the HWM (not the committed end) forward to v before the
// entry commits: the known-bad variant "HWM before commit" only.
func (p *Partition) BugHWMAhead(v int64) {
	if v > p.hwm {
		p.hwm = v
	}
}

// Options carry the known-bad variants that change how entries apply. The
// zero value is the correct behaviour.
type Options struct {
	// NoTruncate (a known bug) keeps whatever the log holds at an applied
	// entry's offsets instead of replacing a different uncommitted suffix.
	NoTruncate bool
	// HWMAhead (a known bug) lets the node move the HWM before commit; Apply
	// then never moves it backward to the committed end.
	HWMAhead bool
	// AcceptStale (a known bug) applies an entry whose base is not the
	// committed end at its own base (when the log reaches it) instead of
	// rejecting it as stale: records already committed there are replaced.
	AcceptStale bool
	// TrustOwn (a known bug) applies a batch noted with NoteOwn without
	// writing it even when the log does not hold it (the "WAL suffix not
	// rebuilt" variant of the pipelined path).
	TrustOwn bool
	// DeferApplySync writes applied records with AppendDeferred: the Raft
	// log holds every committed entry and recovery rewrites whatever the
	// partition log lost (the pipelined path, core/node/pipeline.go), so
	// the records need no fsync of their own. This is a choice of the
	// correct system, not a bug.
	DeferApplySync bool
}

// StateMachine holds every partition a node hosts.
type StateMachine struct {
	opts  Options
	parts map[Key]*Partition
	keys  []Key // sorted, for deterministic iteration
	onErr func(error)
}

// New returns a state machine over the given partition logs. onErr is
// called when a log write or truncation the state machine issued fails (the
// node must then stop: its log is fail-stop).
func New(logs map[Key]PartitionLog, opts Options, onErr func(error)) *StateMachine {
	sm := &StateMachine{opts: opts, parts: make(map[Key]*Partition, len(logs)), onErr: onErr}
	for k, l := range logs {
		sm.parts[k] = &Partition{Key: k, Log: l}
		sm.keys = append(sm.keys, k)
	}
	sort.Slice(sm.keys, func(i, j int) bool {
		if sm.keys[i].Topic != sm.keys[j].Topic {
			return sm.keys[i].Topic < sm.keys[j].Topic
		}
		return sm.keys[i].Partition < sm.keys[j].Partition
	})
	return sm
}

// Partition returns the named partition or nil.
func (sm *StateMachine) Partition(k Key) *Partition { return sm.parts[k] }

// Keys returns the partition keys in sorted order.
func (sm *StateMachine) Keys() []Key { return sm.keys }

// Apply applies one decoded, committed entry.
func (sm *StateMachine) Apply(e *Entry) (Result, error) {
	p := sm.parts[Key{e.Topic, e.Partition}]
	if p == nil {
		return Stale, fmt.Errorf("%w: %s/%d", ErrUnknownPartition, e.Topic, e.Partition)
	}
	if e.Base != p.committed && !(sm.opts.AcceptStale && e.Base < p.committed) {
		return Stale, nil
	}
	if err := p.Log.Err(); err != nil {
		return Stale, fmt.Errorf("statemach: %s/%d: log failed: %w", e.Topic, e.Partition, err)
	}
	end := e.Base + e.Count
	logEnd := p.Log.End()
	trusted := sm.opts.TrustOwn && !e.ID.IsZero() && p.own[e.Base] == e.ID
	if trusted {
		logEnd = max(logEnd, e.Base+e.Count)
	}
	if logEnd < e.Base && !e.MetadataOnly {
		panic(fmt.Sprintf("statemach: %s/%d log end %d below committed end %d", e.Topic, e.Partition, logEnd, e.Base))
	}
	if !e.MetadataOnly {
		sm.write(p, e, logEnd)
	}
	delete(p.own, e.Base)
	if end < p.committed {
		end = p.committed // AcceptStale only: the committed end never moves back
	}
	p.committed = end
	if end > p.hwm || !sm.opts.HWMAhead {
		if end < p.hwm {
			panic(fmt.Sprintf("statemach: %s/%d HWM %d ahead of committed end %d", e.Topic, e.Partition, p.hwm, end))
		}
		p.hwm = end
	}
	return Applied, nil
}

// write makes the log hold e's records at their offsets.
func (sm *StateMachine) write(p *Partition, e *Entry, logEnd int64) {
	match := 0
	if logEnd > e.Base {
		if id, ok := p.own[e.Base]; ok && id == e.ID && !id.IsZero() && logEnd >= e.Base+e.Count {
			return // our own batch, already in our log
		}
		match = sm.matching(p, e, logEnd)
		if match == len(e.Records) || sm.opts.NoTruncate {
			return
		}
		at := e.Base + int64(match)
		p.ForgetOwnFrom(at)
		p.Log.Truncate(at, sm.report)
	}
	appendFn := p.Log.Append
	if sm.opts.DeferApplySync {
		appendFn = p.Log.AppendDeferred
	}
	if _, err := appendFn(e.Records[match:], sm.report); err != nil {
		sm.report(err)
	}
}

// matching counts how many of e's records the log already holds, from the
// start of e.
func (sm *StateMachine) matching(p *Partition, e *Entry, logEnd int64) int {
	// Read no more than the entry's own bytes: the log may hold a long
	// suffix after it.
	size := 0
	for _, r := range e.Records {
		size += len(r)
	}
	n := 0
	for n < len(e.Records) && e.Base+int64(n) < logEnd {
		recs, err := p.Log.Read(e.Base+int64(n), size)
		if err != nil || len(recs) == 0 {
			return n
		}
		for _, r := range recs {
			if n >= len(e.Records) || !bytes.Equal(r, e.Records[n]) {
				return n
			}
			size -= len(r)
			n++
		}
	}
	return n
}

func (sm *StateMachine) report(err error) {
	if err != nil && sm.onErr != nil {
		sm.onErr(err)
	}
}
