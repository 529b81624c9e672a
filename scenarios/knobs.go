package scenarios

// Swarmed knobs: every seed draws the node configuration too (FoundationDB's
// BUGGIFY idea), so code that only runs at a boundary (a segment rotation, a
// batch cut by size, back-pressure, a short election timeout) runs in some
// seeds. The draws come from their own stream ("knobs"), so the rest of a
// seed's options do not shift.

import (
	"fmt"
	"strings"
	"time"

	"walraft/core/node"
	"walraft/core/reclog"
	"walraft/sim"
)

// Knobs are the node configuration a seed draws. A zero field keeps the
// node's default (core/node Config, core/wal Config), so the zero Knobs is
// the configuration every run had before knobs were swarmed, and a case file
// without knobs replays as it did.
type Knobs struct {
	// WALSegmentBytes and RaftSegmentBytes are the segment sizes of each
	// partition's WAL and of the Raft log (drawn 4-64 KiB, so runs rotate).
	WALSegmentBytes  int64 `json:"wal_segment_bytes,omitempty"`
	RaftSegmentBytes int64 `json:"raft_segment_bytes,omitempty"`
	// BatchBytes and BatchRecords cut a WAL batch (wal.Config
	// MaxBatchBytes, MaxBatchRecords).
	BatchBytes   int `json:"batch_bytes,omitempty"`
	BatchRecords int `json:"batch_records,omitempty"`
	// Linger is how long an idle WAL waits for more appends (node clock).
	Linger time.Duration `json:"linger,omitempty"`
	// ElectionTicks and HeartbeatTicks are Raft's timing in 10 ms ticks.
	ElectionTicks  int `json:"election_ticks,omitempty"`
	HeartbeatTicks int `json:"heartbeat_ticks,omitempty"`
	// MaxPendingBatches and MaxQueuedUnits bound proposed-unresolved
	// batches and accepted-unproposed requests (back-pressure beyond).
	MaxPendingBatches int `json:"max_pending_batches,omitempty"`
	MaxQueuedUnits    int `json:"max_queued_units,omitempty"`
	// WALPendingBytes bounds the bytes a WAL queues before writing (not
	// drawn: see drawKnobs).
	WALPendingBytes int `json:"wal_pending_bytes,omitempty"`
	// CommittedPerReady is etcd raft's MaxCommittedSizePerReady in bytes:
	// small values split a new leader's backlog of committed entries over
	// several Readies, so writes and ticks run between its applies (the
	// moment the leadership gate guards).
	CommittedPerReady uint64 `json:"committed_per_ready,omitempty"`
	// RaftRecordBytes is the Raft log's record limit (reclog
	// MaxRecordBytes, default 4 MiB): a Ready whose entries exceed it is
	// saved as several records. Drawn just above the largest entry the
	// workload can make, so that a follower catching up, or a leader with
	// a backlog, splits its saves (a red-team bug framed every split
	// record after the first with the first's sizes, and no run split).
	RaftRecordBytes int `json:"raft_record_bytes,omitempty"`
}

// Bounds that knobs must respect, drawn or hand-written.
const (
	minKnobSegment  = 4 << 10
	maxKnobTicks    = 1000
	minKnobPending  = 1 << 16
	knobSwarmChance = 0.6
)

// drawKnobs draws o's knobs and acks timeout from the seed's "knobs"
// stream: each knob is swarmed with probability knobSwarmChance, else left
// at its default.
func drawKnobs(o *Options, seed uint64) {
	rng := sim.NewStreams(seed).Stream("knobs")
	k := &o.Knobs
	pick := func() bool { return rng.Chance(knobSwarmChance) }
	if pick() {
		k.WALSegmentBytes = int64(minKnobSegment + rng.IntN(60<<10))
	}
	if pick() {
		k.RaftSegmentBytes = int64(minKnobSegment + rng.IntN(60<<10))
	}
	if pick() {
		k.BatchBytes = 512 + rng.IntN(64<<10)
	}
	if pick() {
		k.BatchRecords = 1 + rng.IntN(64)
	}
	if pick() {
		k.Linger = rng.Duration(0, 5*time.Millisecond)
	}
	if pick() {
		k.ElectionTicks = 5 + rng.IntN(26)
		k.HeartbeatTicks = 1 + rng.IntN(max(1, k.ElectionTicks/4))
	}
	if pick() {
		k.MaxPendingBatches = 4 + rng.IntN(252)
	}
	if pick() {
		k.MaxQueuedUnits = 16 + rng.IntN(1009)
	}
	// WALPendingBytes is not drawn: a follower's apply and a restarted
	// node's re-apply append through the WAL's bounded queue, and a limit
	// below what one Ready (or recovery) applies at once makes the append
	// fail with back-pressure, the node fail-stop, and its re-apply panic
	// ("log end below committed end"). Swarming found it; until the core
	// handles it, hand-written cases may still set the knob.
	if pick() {
		o.AcksTimeout = rng.Duration(2*time.Second, 8*time.Second)
	}
	// Drawn last: a knob added later must not change the earlier draws.
	if pick() {
		k.CommittedPerReady = uint64(1<<10 + rng.IntN(63<<10))
	}
	if pick() {
		entry := maxEntryBytes(*o)
		k.RaftRecordBytes = entry + rng.IntN(3*entry)
	}
}

// maxEntryBytes bounds the encoding of one Raft entry the workload can
// make: a batch holds at most every producer's request and one resend of
// each (an indeterminate retry), each of MaxBatchRecs records of up to
// MsgMax bytes, with a generous per-record and per-entry overhead.
func maxEntryBytes(o Options) int {
	return 2*max(o.Producers, 1)*max(o.MaxBatchRecs, 1)*(o.MsgMax+64) + 4096
}

// apply sets the drawn knobs in a node's configuration.
func (k Knobs) apply(c *node.Config) {
	c.WAL.SegmentBytes = k.WALSegmentBytes
	c.RaftLog.SegmentBytes = k.RaftSegmentBytes
	c.WAL.MaxBatchBytes = k.BatchBytes
	c.WAL.MaxBatchRecords = k.BatchRecords
	c.WAL.Linger = k.Linger
	c.WAL.MaxPendingBytes = k.WALPendingBytes
	c.ElectionTicks = k.ElectionTicks
	c.HeartbeatTicks = k.HeartbeatTicks
	c.MaxPendingBatches = k.MaxPendingBatches
	c.MaxQueuedUnits = k.MaxQueuedUnits
	c.MaxCommittedSizePerReady = k.CommittedPerReady
	c.RaftLog.MaxRecordBytes = k.RaftRecordBytes
}

// describe renders the knobs on one line ("default" for each unset one).
func (k Knobs) describe() string {
	var parts []string
	add := func(name string, v any, set bool) {
		if set {
			parts = append(parts, fmt.Sprintf("%s=%v", name, v))
		}
	}
	add("wal-segment", k.WALSegmentBytes, k.WALSegmentBytes != 0)
	add("raft-segment", k.RaftSegmentBytes, k.RaftSegmentBytes != 0)
	add("batch-bytes", k.BatchBytes, k.BatchBytes != 0)
	add("batch-records", k.BatchRecords, k.BatchRecords != 0)
	add("linger", k.Linger, k.Linger != 0)
	add("election-ticks", k.ElectionTicks, k.ElectionTicks != 0)
	add("heartbeat-ticks", k.HeartbeatTicks, k.HeartbeatTicks != 0)
	add("max-pending-batches", k.MaxPendingBatches, k.MaxPendingBatches != 0)
	add("max-queued", k.MaxQueuedUnits, k.MaxQueuedUnits != 0)
	add("wal-pending-bytes", k.WALPendingBytes, k.WALPendingBytes != 0)
	add("committed-per-ready", k.CommittedPerReady, k.CommittedPerReady != 0)
	add("raft-record-bytes", k.RaftRecordBytes, k.RaftRecordBytes != 0)
	if len(parts) == 0 {
		return "defaults"
	}
	return strings.Join(parts, " ")
}

// validate reports knobs a node cannot run with, or that would make a
// hand-edited case run without bound: negative values, segments below 4 KiB
// or above reclog's limit, more than 1000 ticks, a WAL queue below 64 KiB
// (a request could then never be queued), and whatever node.Config rejects.
func (k Knobs) validate(o Options) error {
	seg := func(name string, v int64) error {
		if v != 0 && (v < minKnobSegment || v > reclog.MaxSegmentBytes) {
			return fmt.Errorf("knob %s %d outside [%d, %d]", name, v, minKnobSegment, reclog.MaxSegmentBytes)
		}
		return nil
	}
	if err := seg("wal_segment_bytes", k.WALSegmentBytes); err != nil {
		return err
	}
	if err := seg("raft_segment_bytes", k.RaftSegmentBytes); err != nil {
		return err
	}
	switch {
	case k.CommittedPerReady > 1<<30:
		return fmt.Errorf("knob committed_per_ready %d above %d", k.CommittedPerReady, 1<<30)
	case k.BatchBytes < 0 || k.BatchRecords < 0 || k.Linger < 0 || k.MaxPendingBatches < 0 || k.MaxQueuedUnits < 0:
		return fmt.Errorf("negative knob in %s", k.describe())
	case k.ElectionTicks < 0 || k.ElectionTicks > maxKnobTicks || k.HeartbeatTicks < 0 || k.HeartbeatTicks > maxKnobTicks:
		return fmt.Errorf("knob ticks election %d heartbeat %d (0..%d)", k.ElectionTicks, k.HeartbeatTicks, maxKnobTicks)
	case k.Linger > time.Second:
		return fmt.Errorf("knob linger %v (at most 1s)", k.Linger)
	case k.WALPendingBytes != 0 && k.WALPendingBytes < minKnobPending:
		return fmt.Errorf("knob wal_pending_bytes %d (at least %d)", k.WALPendingBytes, minKnobPending)
	case k.RaftRecordBytes != 0 && k.RaftRecordBytes < maxEntryBytes(o):
		return fmt.Errorf("knob raft_record_bytes %d below %d, the largest entry this workload can make", k.RaftRecordBytes, maxEntryBytes(o))
	}
	c := node.Config{ID: 1, Peers: []uint64{1, 2}, Topics: o.Topics, AcksTimeout: o.AcksTimeout, Path: o.Path}
	k.apply(&c)
	if err := c.Validate(); err != nil {
		return fmt.Errorf("knobs %s: %w", k.describe(), err)
	}
	return nil
}
