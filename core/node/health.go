// This file is the node's side of availability under gray failure
// (DESIGN.md 3.9): it watches its own fsyncs, and a leader whose disk hangs
// steps aside; a node whose disk hangs does not campaign; a node that loses
// leadership answers every request it holds at once.

package node

import (
	"errors"
	"time"

	"go.etcd.io/raft/v3"

	"walraft/core/env"
)

// ErrLeadershipLost: the node stopped being the leader while it held the
// request; whether the write commits is unknown (the new leader may hold
// its entry). Indeterminate: the client may retry elsewhere (LeaderHint
// names the new leader when the node knows it).
var ErrLeadershipLost = errors.New("node: leadership lost while the request was pending")

// Defaults returns the configuration with every zero field set to its
// documented default (what the node runs with), for callers that derive
// bounds from it, such as the harness's availability oracle.
func (c Config) Defaults() Config { return c.withDefaults() }

// syncWatch tracks every sync (File.Sync and FS.SyncDir) the node has
// issued and not yet seen complete, with its start on the node's clock.
type syncWatch struct {
	clock env.Clock
	next  uint64
	open  map[uint64]time.Duration
}

// oldest returns the start of the oldest outstanding sync (ok false if
// none). The minimum does not depend on map order.
func (w *syncWatch) oldest() (time.Duration, bool) {
	var t time.Duration
	ok := false
	for _, s := range w.open {
		if !ok || s < t {
			t, ok = s, true
		}
	}
	return t, ok
}

// track registers a sync and returns the callback that ends it.
func (w *syncWatch) track(done func(error)) func(error) {
	w.next++
	id := w.next
	w.open[id] = w.clock.Now()
	return func(err error) {
		delete(w.open, id)
		done(err)
	}
}

// watchFS wraps an env.FS so that every sync through it is tracked.
type watchFS struct {
	env.FS
	w *syncWatch
}

func (f *watchFS) Create(name string) (env.File, error) {
	file, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &watchFile{File: file, w: f.w}, nil
}

func (f *watchFS) Open(name string) (env.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return &watchFile{File: file, w: f.w}, nil
}

func (f *watchFS) SyncDir(done func(error)) { f.FS.SyncDir(f.w.track(done)) }

type watchFile struct {
	env.File
	w *syncWatch
}

func (f *watchFile) Sync(done func(error)) { f.File.Sync(f.w.track(done)) }

// watchSyncs installs the sync watch on the node's environment; every WAL
// and Raft-log file is opened through it.
func (n *Node) watchSyncs(e env.Env) env.Env {
	n.syncs = &syncWatch{clock: e.Clock, open: map[uint64]time.Duration{}}
	e.FS = &watchFS{FS: e.FS, w: n.syncs}
	return e
}

// diskHung reports whether a sync has been outstanding for at least
// DiskStallTimeout on the node's clock.
func (n *Node) diskHung() bool {
	start, ok := n.syncs.oldest()
	return ok && n.env.Clock.Now()-start >= n.cfg.DiskStallTimeout
}

// onTick runs the Raft tick, unless the disk is hung: then a leader steps
// aside (transfers leadership to its most caught-up follower, and stops
// ticking so that, should the transfer fail, its silence lets the others
// elect a leader), and a follower or candidate does not tick, so it never
// campaigns, until the disk recovers. CheckQuorum stays on throughout.
//
// Unlike TransferLeadership, the step-down transfers while writes wait:
// they wait on the hung disk, so declining would leave the node leading on
// it. Raft drops every proposal during a transfer, so a write of this term
// that reaches its proposal before the transfer ends (the disk returned,
// the transfer failed to finish) aborts the transfer and is proposed
// (proposable, produce.go): a batch left unproposed by a node that still
// leads its term would be stranded, its acks=1 answered and nothing ever
// committing it.
func (n *Node) onTick() {
	hung := n.diskHung() || (n.bugs.HungMarkSticky && n.hung)
	if hung != n.hung {
		n.hung = hung
		// disk.hung: A=1 hung, 0 recovered; B=the node's raft state.
		n.trace("disk.hung", b2i(hung), int64(n.rn.BasicStatus().RaftState), 0, 0)
	}
	if !hung || n.bugs.NoStepDownOnHungDisk || (n.bugs.HungFollowerCampaigns && n.role != RoleLeader) {
		n.rn.Tick()
		return
	}
	st := n.rn.BasicStatus()
	if st.RaftState == raft.StateLeader && st.LeadTransferee == raft.None {
		if to := n.mostCaughtUp(); to != 0 {
			n.trace("leader.transfer", int64(to), int64(st.HardState.GetTerm()), 0, 0)
			n.rn.TransferLeader(to)
		}
	}
}

// mostCaughtUp returns the follower with the highest match index among
// those recently active (lowest id among equals), or 0.
func (n *Node) mostCaughtUp() uint64 {
	st := n.rn.Status()
	best, match := uint64(0), uint64(0)
	for _, id := range n.cfg.Peers {
		pr, ok := st.Progress[id]
		if (id == n.cfg.ID && !n.bugs.StepDownMayPickSelf) || !ok || !pr.RecentActive {
			continue
		}
		if best == 0 || pr.Match > match {
			best, match = id, pr.Match
		}
	}
	return best
}

// syncRole notices a lost leadership at once, even while a Ready is in
// flight (a hung Raft-log sync holds the Ready loop, and with it the
// SoftState that would report the change): a leader deposed by a message or
// by CheckQuorum answers the requests it holds now, not when the disk
// returns or the acks timeout fires.
func (n *Node) syncRole() {
	if n.role != RoleLeader || n.closed || n.failed != nil {
		return
	}
	if st := n.rn.BasicStatus(); st.RaftState != raft.StateLeader {
		n.onSoftState(st.SoftState)
	}
}

// lostLeadership answers every request the node holds as a former leader:
// acks=1 and acks=-1 requests still waiting for their WAL fsync, and acks=-1
// requests whose entries are proposed. All are indeterminate: an acks=1
// batch may still become durable locally, a proposed entry may still
// commit under the new leader.
func (n *Node) lostLeadership() {
	if n.bugs.HoldWaitersOnLeaderLoss {
		return
	}
	hint := n.leaderHint()
	held := 0
	for _, k := range n.sm.Keys() {
		for _, u := range n.queued[k] {
			if u.acks != AcksNone && !u.done {
				held++
				n.answer(u, ProduceResponse{Err: ErrLeadershipLost, Indeterminate: true, LeaderHint: hint})
			}
		}
	}
	ids := n.prop.IDs()
	for _, id := range ids {
		n.prop.Fail(id, ErrLeadershipLost)
	}
	// leader.lost: A=requests answered before proposal, B=batches failed,
	// C=the leader hint given.
	n.trace("leader.lost", int64(held), int64(len(ids)), int64(hint), 0)
}

// leaderHint is the newest leader this node knows (0 if none or itself),
// read from Raft directly so that it is current even while a Ready is in
// flight.
func (n *Node) leaderHint() uint64 {
	if n.standalone || n.rn == nil {
		return 0
	}
	if lead := n.rn.BasicStatus().Lead; lead != n.cfg.ID {
		return lead
	}
	return 0
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
