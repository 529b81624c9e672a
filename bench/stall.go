package bench

import (
	"sync/atomic"
	"time"
)

// A disk-stall drill (Config.StallLeaderDiskAfter and StallFor): that long
// into the measured window, the leader's fsyncs stop completing for
// StallFor (osenv.SyncGate: its fsync threads block before the system
// call, as in a hung fsync), while its loop and network run on. The node's
// DiskStallTimeout makes it hand leadership to a follower; the producers
// follow the NotLeader hints, and the run reports the longest stretch in
// which no request was acknowledged, the time from the stall to the first
// acknowledgement by another node, and (as always) verifies every
// acknowledged message.

// ackClock tracks acknowledgements across producers: the longest gap
// between consecutive ones in the measured window, and the first one
// after the stall from a node other than the stalled one. Safe for
// concurrent use.
type ackClock struct {
	last     atomic.Int64 // UnixNano of the latest ack in the window (0: none yet)
	gap      atomic.Int64 // longest gap, ns
	gapStart atomic.Int64 // UnixNano where the longest gap began

	stalledAt   atomic.Int64  // UnixNano of the stall (0: none)
	stalled     atomic.Uint64 // the stalled node
	firstOther  atomic.Int64  // UnixNano of the first ack after the stall by another node
	afterStall  atomic.Int64  // acks after the stall began
	staleAcking atomic.Int64  // acks by the stalled node after the stall began
}

// start opens the window: gaps count from now.
func (a *ackClock) start(now time.Time) { a.last.Store(now.UnixNano()) }

// ack records an acknowledgement by node from at now.
func (a *ackClock) ack(now time.Time, from uint64) {
	t := now.UnixNano()
	prev := a.last.Swap(t)
	if prev != 0 && t > prev {
		for {
			g := a.gap.Load()
			if t-prev <= g {
				break
			}
			if a.gap.CompareAndSwap(g, t-prev) {
				a.gapStart.Store(prev)
				break
			}
		}
	}
	if s := a.stalledAt.Load(); s != 0 && t >= s {
		a.afterStall.Add(1)
		if from == a.stalled.Load() {
			a.staleAcking.Add(1)
		} else {
			a.firstOther.CompareAndSwap(0, t)
		}
	}
}

// close ends the window at now: a gap still open counts.
func (a *ackClock) close(now time.Time) {
	if prev := a.last.Load(); prev != 0 {
		if t := now.UnixNano(); t-prev > a.gap.Load() {
			a.gap.Store(t - prev)
			a.gapStart.Store(prev)
		}
	}
}

// report fills the result's drill fields.
func (a *ackClock) report(res *Result, windowStart time.Time) {
	res.NoAckGapMs = float64(a.gap.Load()) / float64(time.Millisecond)
	if g := a.gapStart.Load(); g != 0 {
		res.NoAckGapAtMs = float64(g-windowStart.UnixNano()) / float64(time.Millisecond)
	}
	s := a.stalledAt.Load()
	if s == 0 {
		return
	}
	res.StalledLeader = a.stalled.Load()
	res.AckedAfterStall = a.afterStall.Load()
	res.AckedByStalled = a.staleAcking.Load()
	if f := a.firstOther.Load(); f != 0 {
		res.StallFailoverMs = float64(f-s) / float64(time.Millisecond)
	}
}

// acceptingLeader asks every live member now (no cache) and returns the one
// that accepts produce, or nil.
func (c *cluster) acceptingLeader() *member {
	for _, m := range c.members {
		if m.accepts() {
			return m
		}
	}
	return nil
}
