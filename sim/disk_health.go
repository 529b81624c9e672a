package sim

import "time"

// This file exposes the disk's fault state as ground truth for the
// harness's availability oracle (A1 in DESIGN.md section 6): whether a
// node's disk completes fsyncs within a normal latency is read from here,
// never from what the node reports about itself.

// SlowUntil returns the global time until which the disk is known to be
// slow: the end of an injected stall (StallSyncsUntil), or the completion
// time of the latest pending sync whose latency (completion minus issue)
// exceeds normal. A result at or before Now means every sync issued so far
// completes within normal latency. It draws nothing and changes nothing.
func (d *Disk) SlowUntil(normal time.Duration) time.Duration {
	until := d.stallUntil
	for _, op := range d.pending {
		if op.at-op.issued > normal && op.at > until {
			until = op.at
		}
	}
	return until
}

// IOErrors returns how many writes, file syncs and directory syncs of this
// disk have failed with env.ErrIO so far (injected or drawn), over the
// disk's life. A node whose disk failed stays sick until its process
// restarts: the count only grows, so a caller compares it across samples.
func (d *Disk) IOErrors() int64 {
	return d.stats.WriteErrors + d.stats.SyncErrors + d.stats.DirSyncErrors
}

// FailureArmed reports whether a fault budget is still armed on the disk:
// writes, syncs or reads it will fail (EIO or ENOSPC) whenever the node
// next issues them. A full disk stays full between the failures it causes,
// so the availability oracle counts such a disk as sick, not only after
// each failure it has already returned. It draws nothing and changes nothing.
func (d *Disk) FailureArmed() bool {
	return d.failWrites > 0 || d.failSyncs > 0 || d.noSpace > 0 || d.failReads > 0 ||
		len(d.failWritesUnder) > 0 || len(d.failSyncsUnder) > 0
}
