package scenarios

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"walraft/core/env"
	"walraft/core/node"
	"walraft/core/raftlog"
	"walraft/core/reclog"
	"walraft/core/statemach"
	"walraft/core/wal"
	"walraft/sim"
)

// The oracle judges nodes against ground truth: the simulator's durable
// disk images, decoded read-only with the core's own readers
// (raftlog.Image, wal.Image), never against what a node says about itself.
//
//   - S9 "durable before promised": every Raft message a node sends is
//     checked when it leaves (sim's send observer, before the network
//     decides its fate) against the sender's durable Raft log: no message
//     carries a term above the durable term; a vote grant needs the term
//     and vote durable; an append response claiming index i needs entries up
//     to i durable with the terms the node's log has. Pre-votes persist
//     nothing and are exempt; a leader's early appends (sent while its own
//     copy syncs) promise nothing about its own disk.
//   - Reply evidence: at every acks=1 reply, and every acks=-1 reply in
//     standalone mode, the harness reads the leader's durable WAL image and
//     records how far the replied records really are on disk
//     (Evidence.DurableEnd, judged by S5 and S7), next to what the node
//     reported (Evidence.ReportedDurableEnd, S10 flags a report above the
//     truth).
//   - S3 against the truth: at every observation where a node's HWM moved
//     up, the HWM must not exceed the cluster's committed end judged from
//     the disks: the longest Raft-log prefix a majority holds durably with
//     the same terms, replayed through the state machine's apply rule
//     (standalone: the durable WAL end).
//   - S11 "no silent shortening": a node that boots must recover exactly
//     what its durable Raft log holds (HardState and entries; after a
//     process kill with the machine up, what its page cache shows: the
//     node reads through it, bootImage), must refuse
//     to open a log whose synced data is damaged (reclog's rules, applied by
//     the oracle's own read-only scan), and must not come back with a term
//     or vote behind what it promised before the crash. Entries it
//     acknowledged were durable when it did (S9), so a recovery equal to
//     the disk keeps them unless a leader overwrote them durably since, or
//     corruption hit the one spot no reader can tell from a torn tail
//     (reclog's documented blind spot).
//
// Images are decoded lazily (only when a message, reply or observation
// needs them) and incrementally, re-read only when the disk's durable
// version changed.

// s10Every is the shortest interval between two judgements of one node's
// reported WAL durable end at observations (observeDurable).
const s10Every = 100 * time.Millisecond

// maxOracleViolations bounds each oracle invariant's harness violations
// per run: a systematic bug would otherwise report every message.
const maxOracleViolations = 20

type oracle struct {
	h      *harness
	nodes  []*nodeTruth // by id-1
	judged map[string]bool
	count  map[string]int
	// A3: which nodes lead (from etcd raft's log), and the step-downs
	// whose held requests are still to be judged.
	leading map[uint64]bool
	deposed []deposal

	// lastHWM is the highest HWM judged per node and partition.
	lastHWM map[hwmKey]int64
	// lastDurable is the highest durable end a node's incarnation
	// reported per partition and S10 judged (reset when it boots), and
	// durableAt when it was judged.
	lastDurable map[hwmKey]int64
	durableAt   map[hwmKey]time.Duration
	commit      commitCursor
	// commitVers are the Raft log directories' durable versions commit was
	// computed at.
	commitVers []uint64
	commitEnds map[statemach.Key]int64
}

type hwmKey struct {
	node uint64
	part statemach.Key
}

// nodeTruth is one node's decoded durable state, and what it promised.
type nodeTruth struct {
	id   uint64
	disk *sim.Disk
	src  sim.DurableSource
	raft *imageCache[*raftlog.Image]
	wals map[statemach.Key]*imageCache[*wal.Image]
	// damaged names the logs whose damage S11 reported (undamaged).
	damaged map[string]bool
	// promise is the latest append response and vote the node sent that
	// the monitor accepted: a recovery must not come back behind them.
	promise promise
	// bootLast is the last index of the durable Raft log when the node
	// last started (onBoot); toldRecovering: checkRecovering reported
	// this incarnation already.
	bootLast       uint64
	toldRecovering bool
}

type promise struct {
	term, vote uint64 // durable term and vote when it last sent
}

// imageCache updates an image only when the durable version of its log's
// directory moved: the syncs of a node's other logs (every WAL batch, the
// partition logs) leave a Raft log image alone without even a look.
type imageCache[T interface {
	Update(reclog.ImageSource) error
}] struct {
	img T
	src *dirSource
	ver uint64
	ok  bool
	err error
}

func newImageCache[T interface {
	Update(reclog.ImageSource) error
}](img T, d *sim.Disk, dir string) *imageCache[T] {
	return &imageCache[T]{img: img, src: &dirSource{DurableSource: d.DurableSource(), prefix: dir + "/"}}
}

func (c *imageCache[T]) get() (T, error) {
	if v := c.src.Version(); !c.ok || v != c.ver {
		c.err = c.img.Update(c.src)
		c.ver, c.ok = v, true
	}
	return c.img, c.err
}

// dirSource is a disk's durable view whose Version is the version of one
// directory (sim.DurableSource.PrefixVersion): it moves when a file under
// the directory or the durable names under it change, not when another
// directory's files are synced or its names change. A reader that lists,
// stats and reads only names under the directory (a log's Scanner) sees
// every change it can see through the whole disk's version: the versions
// are values of the same counter, so a file's ChangedFrom after a
// directory version still reports every change of that file since.
type dirSource struct {
	sim.DurableSource
	prefix string
}

// Version is the directory's durable version.
func (s *dirSource) Version() uint64 { return s.PrefixVersion(s.prefix) }

// commitCursor replays committed entries along one durable log.
type commitCursor struct {
	index, term uint64
	ends        map[statemach.Key]int64
}

func newOracle(h *harness) *oracle {
	o := &oracle{h: h, judged: map[string]bool{}, count: map[string]int{}, leading: map[uint64]bool{}, lastHWM: map[hwmKey]int64{}, lastDurable: map[hwmKey]int64{}, durableAt: map[hwmKey]time.Duration{}}
	for _, id := range h.ids {
		cfg := h.nodeConfig(id)
		d := h.w.Disk(id)
		ri, err := node.NewRaftImage(cfg)
		if err != nil {
			panic(fmt.Sprintf("scenarios: oracle: %v", err))
		}
		nt := &nodeTruth{id: id, disk: d, src: d.DurableSource(), raft: newImageCache(ri, d, node.RaftLogDir(cfg)),
			wals: map[statemach.Key]*imageCache[*wal.Image]{}}
		for _, t := range cfg.Topics {
			for p := int32(0); p < t.Partitions; p++ {
				wi, err := node.NewWALImage(cfg, t.Name, p)
				if err != nil {
					panic(fmt.Sprintf("scenarios: oracle: %v", err))
				}
				nt.wals[statemach.Key{Topic: t.Name, Partition: p}] = newImageCache(wi, d, node.WALDir(cfg, t.Name, p))
			}
		}
		o.nodes = append(o.nodes, nt)
	}
	return o
}

// violation records a harness-time violation of inv, at most
// maxOracleViolations per invariant (then one summary at the end).
func (o *oracle) violation(inv, format string, args ...any) {
	o.judged[inv] = true
	o.count[inv]++
	if o.count[inv] <= maxOracleViolations {
		o.h.harnessViolation(inv, fmt.Sprintf(format, args...))
	}
}

// finish adds the summary of violations not listed.
func (o *oracle) finish() {
	for _, inv := range []string{InvS3, InvS8, InvS9, InvS11, InvA2, InvA3} {
		if n := o.count[inv] - maxOracleViolations; n > 0 {
			o.h.harnessViolation(inv, fmt.Sprintf("... and %d more %s violations found by the oracle not listed", n, inv))
		}
	}
}

// patchReport makes the report's verdicts agree with the oracle's
// harness-time judgements (which Check does not see).
func (o *oracle) patchReport(rep *Report) {
	for i, v := range rep.Verdicts {
		switch {
		case o.count[v.Invariant] > 0:
			rep.Verdicts[i].Verdict = VerdictViolated
		case o.judged[v.Invariant] && v.Verdict == VerdictNA:
			rep.Verdicts[i].Verdict = VerdictOK
		}
	}
}

// onCampaign is the A2 monitor, fed when a node starts a campaign (etcd
// raft's hup, which logs "is starting a new election" for an election
// timeout and for a leadership transfer's MsgTimeoutNow alike): a node that
// has reported its disk hung (trace disk.hung, core/node/health.go) must
// not campaign until it reports it back, since it could win and then lead
// on a disk that takes no writes while a healthy majority waits for it
// (README, Availability). The node's own report says when it counts as
// hung (its clock, its DiskStallTimeout, its tick), and the simulated disk
// confirms it: a sync issued at least hungMin ago is still pending and not
// due now, so a report made stale by a disk that just returned (the node
// notices at its next tick) does not count. Whether a node reports a hung
// disk at all is judged by what its leader then does (A1).
func (o *oracle) onCampaign(id uint64) {
	if o.h.o.Nodes == 1 {
		return
	}
	o.judged[InvA2] = true
	since, hung := o.h.hungSince[id]
	if !hung {
		return
	}
	now := o.h.s.Now()
	issued, due, pending := o.h.w.Disk(id).OldestPendingSync()
	if pending && now-issued >= hungMin && due > now {
		o.violation(InvA2, "n%d started an election at %v while its disk is hung (it reported so at %v; a sync pending since %v): a node with a hung disk must not campaign",
			id, now, since, issued)
	}
}

// onStepAside is A2's second clause, fed when a leader whose disk hangs
// hands leadership over (trace leader.transfer, core/node/health.go): the
// transferee must be another member of the cluster (README, Availability:
// it transfers to its most caught-up follower). A leader that named itself
// (raft ignores a transfer to the leader) keeps leading on a hung disk
// until CheckQuorum or an election ends it: inside A1's bound, so A1 alone
// does not see it (red-team round 10).
func (o *oracle) onStepAside(id, to uint64) {
	o.judged[InvA2] = true
	if to == id || !slices.Contains(o.h.ids, to) {
		o.violation(InvA2, "n%d stepping aside from a hung disk at %v handed leadership to n%d: a sick leader must transfer to another member", id, o.h.s.Now(), to)
	}
}

// A3: a leader that loses leadership answers every request it holds at
// once, acks=1 ones waiting for their WAL fsync included, as indeterminate
// naming the new leader (DESIGN.md 3.9 for acks=-1; README, Availability,
// for every request), so that their clients go to the new leader instead
// of waiting on a disk or a timer. The loss is read from etcd raft itself
// ("became follower", logged as the leader steps down, which no node code
// can skip) and the requests from the harness's own record of what the node
// took and has not answered (harness.held, Op.Served): whatever it still
// holds a3Grace later, and not across a pause, crash or clock step,
// violates A3.

// onRaftRole follows a node's raft role from etcd raft's log lines.
func (o *oracle) onRaftRole(id uint64, text string) {
	switch {
	case strings.Contains(text, "became leader at term"):
		o.leading[id] = true
	case strings.Contains(text, "became follower at term") && o.leading[id]:
		o.leading[id] = false
		o.judged[InvA3] = true
		var ops []OpID
		for op := range o.h.held[id] {
			ops = append(ops, op)
		}
		if len(ops) == 0 {
			return
		}
		slices.Sort(ops)
		o.deposed = append(o.deposed, deposal{node: id, at: o.h.s.Now(), ops: ops})
	}
}

// deposal is a leader's step-down with the requests it held then.
type deposal struct {
	node uint64
	at   time.Duration
	ops  []OpID
}

// a3Grace is how long a deposed leader may take to answer what it held:
// the step-down is noticed in the same event or the next (no disk wait).
const a3Grace = 5 * time.Millisecond

// checkDeposed judges the step-downs older than a3Grace (called on every
// trace event while one is pending).
func (o *oracle) checkDeposed() {
	now := o.h.s.Now()
	k := 0
	for ; k < len(o.deposed) && now-o.deposed[k].at >= a3Grace; k++ {
		d := o.deposed[k]
		for _, op := range d.ops {
			sv := o.h.held[d.node][op]
			if sv == nil || sv.Interrupted {
				continue // answered, or the process stopped meanwhile
			}
			o.violation(InvA3, "n%d lost leadership at %v and still held acks=%d op %d unanswered %v later: a deposed leader answers what it holds at once",
				d.node, d.at, o.h.rec.r.History().Ops[op-1].Acks, op, now-d.at)
		}
	}
	o.deposed = o.deposed[k:]
}

// hungMin is how long a sync must have been pending for A2 to take a
// node's hung report as current: half the harness's DiskStallTimeout.
const hungMin = diskStallTimeout / 2

// raftImage returns node id's durable Raft log, decoded now. err wraps
// reclog.ErrCorrupt or raftlog.ErrCorrupt when the image holds damaged
// synced data (the image then holds the valid prefix).
func (o *oracle) raftImage(id uint64) (*raftlog.Image, error) {
	nt := o.nodes[id-1]
	img, err := nt.raft.get()
	o.undamaged(id, "Raft log", err)
	return img, err
}

// undamaged judges an image's decode error: a node no corrupt fault
// touched must never hold damaged synced data (a write over synced bytes,
// a record framed wrong, a durable mark that proves what was never
// synced), since its recovery would then refuse to open or cut what is
// durable (S11). The checks that need the image skip a damaged one, so
// without this judgement such damage would go unjudged until a restart.
// Reported once per node and log.
func (o *oracle) undamaged(id uint64, log string, err error) {
	if err == nil || o.h.corrupted[id] != nil {
		return
	}
	nt := o.nodes[id-1]
	if nt.damaged[log] {
		return
	}
	if nt.damaged == nil {
		nt.damaged = map[string]bool{}
	}
	nt.damaged[log] = true
	o.violation(InvS11, "n%d's durable %s does not decode at %v, and no corruption was injected into it: %v", id, log, o.h.s.Now(), err)
}

// bootImage returns the Raft log node id recovers as it boots now: its
// durable log after a power loss, or, after a process kill with the
// machine up, what its page cache shows (sim.Disk.VolatileSource: the
// writes that had not reached the disk are read back too), decoded afresh.
func (o *oracle) bootImage(id uint64) (*raftlog.Image, error) {
	if !o.h.killed[id] {
		return o.raftImage(id)
	}
	img, err := node.NewRaftImage(o.h.nodeConfig(id))
	if err != nil {
		panic(fmt.Sprintf("scenarios: oracle: %v", err))
	}
	return img, img.Update(o.h.w.Disk(id).VolatileSource())
}

// walImage returns node id's durable WAL of partition k, decoded now.
func (o *oracle) walImage(id uint64, k statemach.Key) (*wal.Image, error) {
	nt := o.nodes[id-1]
	c := nt.wals[k]
	if c == nil {
		return nil, fmt.Errorf("scenarios: oracle: no partition %s/%d", k.Topic, k.Partition)
	}
	img, err := c.get()
	o.undamaged(id, fmt.Sprintf("WAL of %s/%d", k.Topic, k.Partition), err)
	return img, err
}

// onSend is the S9 monitor: sim calls it for every message a live node
// sends, before the network drops or delivers it.
func (o *oracle) onSend(from, to env.NodeID, msg []byte) {
	if o.h.o.Nodes == 1 {
		return
	}
	m, err := node.PeekMessage(msg)
	if err != nil {
		return // not a Raft message: the receiver reports it
	}
	if m.Term == 0 || !promisesTerm(m) {
		return
	}
	nt := o.nodes[from-1]
	if nt.raft.ok && nt.raft.err == nil && o.provenBy(nt.raft.img, from, m) {
		// The image as last decoded already proves the promise, and
		// durable state only grows past it (terms and votes never go
		// back; an entry the node's log still holds with the durable
		// term stays durable): no need to decode the disk again.
		o.judged[InvS9] = true
		nt.promised(nt.raft.img, m)
		return
	}
	img, err := o.raftImage(from)
	if err != nil {
		// The durable log is damaged (injected corruption): what the node
		// promised is no longer on disk through no fault of its own; S11
		// judges how it recovers.
		return
	}
	o.judged[InvS9] = true
	term, vote, _ := img.HardState()
	now := o.h.s.Now()
	what := func() string { return fmt.Sprintf("n%d sent %s to n%d (term %d", from, m.Type, to, m.Term) }
	if m.Term > term {
		o.violation(InvS9, "%s) at %v while its durable term is %d: the term it speaks in is not persisted", what(), now, term)
		return
	}
	switch {
	case m.Type == pb.MsgVoteResp && !m.Reject:
		// A durable term above the vote's makes the vote durable in
		// effect: the node can never vote in m.Term again. (Messages of
		// several terms can leave together after one sync: raft steps on
		// while a Ready is being persisted.)
		if term == m.Term && vote != m.To {
			o.violation(InvS9, "%s, vote granted) at %v while its durable HardState holds term %d vote %d", what(), now, term, vote)
			return
		}
		nt.promised(img, m)
	case m.Type == pb.MsgAppResp && !m.Reject && m.Index > 0:
		dt, _ := img.Term(m.Index)
		var lt uint64
		ok := false
		if n := o.h.nodes[from-1]; n != nil {
			lt, ok = n.RaftLogTerm(m.Index)
		}
		if why := appRespUnproven(m.Index, m.Term, img.LastIndex(), dt, lt, ok); why != "" {
			o.violation(InvS9, "%s, accepts up to index %d) at %v %s", what(), m.Index, now, why)
			return
		}
		nt.promised(img, m)
	}
}

// appRespUnproven says why an append response accepting entries up to
// index, sent in term, promises what the sender's durable Raft log does
// not hold ("" when it holds it): the durable log ends at last and has
// term dt at index; the node's own log has term lt there (when ok).
//
//   - index past the durable end: the entries are not on disk yet.
//   - dt > term: a leader of a later term replaced the entry there, so the
//     term's leader would count a copy this node no longer holds (etcd
//     raft's asynchronous writes can hand out such a response after the
//     overwrite was synced; the node must drop it as stale).
//   - lt != dt: the node's log and its disk disagree at index.
func appRespUnproven(index, term, last, dt, lt uint64, ok bool) string {
	switch {
	case index > last:
		return fmt.Sprintf("while its durable log ends at index %d", last)
	case dt > term:
		return fmt.Sprintf("while its durable log holds term %d there: a later leader's entry replaced what it acknowledges", dt)
	case ok && lt != dt:
		return fmt.Sprintf("while its log has term %d there, its durable log term %d", lt, dt)
	}
	return ""
}

// promisesTerm reports whether a message promises that its sender's term
// (and what goes with it) is durable, so that S9 must find it on disk:
//
//   - a vote granted (the term and the vote: a node never votes twice in a
//     term, restarts included);
//   - an append accepted (the entries, in the term that sent them);
//   - a leader's messages (append, heartbeat, snapshot, timeout-now): a
//     node leads term T only on a quorum that includes its own vote in T,
//     which must be durable, or a restart could let it vote for another
//     candidate of T.
//
// The rest promise nothing durable and may leave before their term is
// synced: a vote request (a candidate counts its own vote only once it is
// durable; if it crashes first it never used it), a pre-vote (it changes no
// state), a heartbeat response and every refusal. This is the contract of
// etcd raft's asynchronous storage writes (raft.Config.AsyncStorageWrites,
// which the pipelined path runs): only vote and append responses wait for
// the local append, and the Raft paper's rule "persist before responding
// to RPCs" concerns exactly those. The one-Ready loop sends everything after
// the sync and passes a stricter check all the same.
func promisesTerm(m node.MessageHeader) bool {
	switch m.Type {
	case pb.MsgVoteResp, pb.MsgAppResp:
		return !m.Reject
	case pb.MsgApp, pb.MsgHeartbeat, pb.MsgSnap, pb.MsgTimeoutNow:
		return true
	}
	return false
}

// onApply is S9 for the HWM: node id applied Raft entry index of term,
// which moves its HWM (a promise to every client that fetches from it), so
// the entry must be durable in its own Raft log. Committed alone is not
// enough: a follower that applies an entry it has not synced and then
// crashes comes back with a log that ends below the HWM it exposed
// (recovery withholds the HWM only up to the durable last index), so its
// HWM would move backward (S3). Checked at the apply itself, so no crash
// is needed to see the broken promise.
func (o *oracle) onApply(id, index, term uint64) {
	if o.h.o.Nodes == 1 || id == 0 || int(id) > len(o.nodes) {
		return
	}
	nt := o.nodes[id-1]
	if nt.raft.ok && nt.raft.err == nil {
		// An entry an earlier decoding holds with this term stays durable
		// while the node's log holds it with that term (Raft's log
		// matching): no need to decode the disk again.
		if t, ok := nt.raft.img.Term(index); ok && t == term {
			o.judged[InvS9] = true
			return
		}
	}
	img, err := o.raftImage(id)
	if err != nil {
		return // damaged durable log (injected corruption): S11 judges recovery
	}
	o.judged[InvS9] = true
	if t, ok := img.Term(index); !ok || t != term {
		o.violation(InvS9, "n%d applied entry %d (term %d) at %v while its durable log does not hold it (durable last index %d): its HWM covers an entry it could lose in a crash",
			id, index, term, o.h.s.Now(), img.LastIndex())
	}
}

// onGateOpen is S8's leadership gate (DESIGN.md 3.2): node id, leader of
// term, opens its produce gate with applied index applied. The rule is
// that a new leader takes writes only once it applied an entry of its own
// term, which proves every entry committed before its term is applied, so
// the offsets it hands out start at the committed end and the suffix it
// truncates was never committed. A gate opened on an older term's entry can
// let a write in before the previous leader's committed batches apply: it
// is judged here, at the moment, because the loss needs a write to slip
// into that gap, which runs rarely arrange.
func (o *oracle) onGateOpen(id, term, applied uint64) {
	if o.h.o.Nodes == 1 || id == 0 || int(id) > len(o.h.nodes) {
		return
	}
	n := o.h.nodes[id-1]
	if n == nil {
		return
	}
	o.judged[InvS8] = true
	if t, ok := n.RaftLogTerm(applied); !ok || t != term {
		o.violation(InvS8, "n%d opened its produce gate as leader of term %d at %v with applied index %d of term %d: a leader takes writes only after applying an entry of its own term",
			id, term, o.h.s.Now(), applied, t)
	}
}

// onProduce is S8's gate again, judged whenever a client's produce reaches
// node id (st: its status then): a node whose status says it takes writes must lead, and its
// applied index must hold an entry of its current term. onGateOpen sees a
// gate opened too early; this sees one that was never closed (a former
// leader elected again takes writes at once, before its own-term entry
// applied), which leaves no gate.open event to judge.
func (o *oracle) onProduce(id uint64, n *node.Node, st node.Status) {
	if o.h.o.Nodes == 1 {
		return
	}
	if !st.Gate {
		return
	}
	o.judged[InvS8] = true
	if t, ok := n.RaftLogTerm(st.Applied); st.Role != node.RoleLeader || !ok || t != st.Term {
		o.violation(InvS8, "n%d took a produce at %v with its gate open as %v of term %d with applied index %d of term %d: only a leader that applied an entry of its own term takes writes",
			id, o.h.s.Now(), st.Role, st.Term, st.Applied, t)
	}
}

// onBoot notes the last index of node id's durable Raft log as it
// (re)starts: what its recovery reads, so the furthest it may have to
// re-apply before it ends recovering (node.Status Recovering).
func (o *oracle) onBoot(id uint64) {
	if o.h.o.Nodes == 1 || id == 0 || int(id) > len(o.nodes) {
		return
	}
	o.nodes[id-1].bootLast, o.nodes[id-1].toldRecovering = 0, false
	if img, err := o.bootImage(id); err == nil {
		o.nodes[id-1].bootLast = img.LastIndex()
	}
}

// checkRecovering is L1's clause on recovery, judged at observations: a
// restarted node withholds its HWMs (and refuses fetches) only until it
// has applied the log it recovered; one that has applied past its durable
// last index at boot and still says it is recovering keeps its partitions
// unreadable for no reason, until some later write happens to end it.
func (o *oracle) checkRecovering(id uint64, st node.Status) {
	if o.h.o.Nodes == 1 || id == 0 || int(id) > len(o.nodes) || !st.Recovering {
		return
	}
	nt := o.nodes[id-1]
	if nt.bootLast == 0 || st.Applied < nt.bootLast || nt.toldRecovering {
		return
	}
	nt.toldRecovering = true
	o.violation(InvL1, "n%d still recovering at %v with applied index %d, though the Raft log it recovered ended at %d: its HWMs stay withheld for nothing",
		id, o.h.s.Now(), st.Applied, nt.bootLast)
}

// promised records the durable term and vote behind a vote grant or an
// append acknowledgement that left: a recovery must not come back behind
// them (S11).
func (nt *nodeTruth) promised(img *raftlog.Image, m node.MessageHeader) {
	if !(m.Type == pb.MsgVoteResp || m.Type == pb.MsgAppResp) || m.Reject {
		return
	}
	if t, v, _ := img.HardState(); t > nt.promise.term || (t == nt.promise.term && nt.promise.vote == 0) {
		nt.promise.term, nt.promise.vote = t, v
	}
}

// provenBy reports whether img, an earlier or current decoding of node
// from's durable Raft log, already shows that message m promises nothing
// that is not durable. It is the cheap path of onSend; false means "decode
// the disk and judge".
func (o *oracle) provenBy(img *raftlog.Image, from uint64, m node.MessageHeader) bool {
	term, vote, _ := img.HardState()
	if m.Term > term {
		return false
	}
	switch {
	case m.Type == pb.MsgVoteResp && !m.Reject:
		return term > m.Term || vote == m.To
	case m.Type == pb.MsgAppResp && !m.Reject && m.Index > 0:
		dt, ok := img.Term(m.Index)
		if !ok || dt > m.Term {
			return false
		}
		n := o.h.nodes[from-1]
		if n == nil {
			return false
		}
		lt, ok := n.RaftLogTerm(m.Index)
		return ok && lt == dt
	}
	return true
}

// replyEvidence fills the ground-truth part of a produce reply's evidence:
// for an acks=1 success (and an acks=-1 success in standalone mode) how far
// the replied records are in the replying node's durable WAL image.
func (o *oracle) replyEvidence(id uint64, op *clientOp, resp node.ProduceResponse, ev *evidence) {
	if resp.Err != nil || !(op.req.Acks == node.AcksLeader || (op.req.Acks == node.AcksAll && o.h.o.Nodes == 1)) {
		return
	}
	k := statemach.Key{Topic: op.req.Topic, Partition: op.req.Partition}
	img, err := o.walImage(id, k)
	if err != nil {
		return // damaged by injected corruption: no truth to judge by
	}
	src := o.nodes[id-1].src
	end := img.End()
	for i, want := range op.req.Records {
		off := resp.BaseOffset + int64(i)
		if off >= end {
			break
		}
		got, err := img.Record(src, off)
		if err != nil || string(got) != string(want) {
			end = off
			break
		}
	}
	o.judged[InvS10] = true
	ev.Truth = true
	ev.ReportedDurableEnd = ev.DurableEnd
	ev.DurableEnd = max(end, 0)
}

// observeDurable is S10 at observations: the durable end node id reports
// for each partition (durable, parallel to parts) must not exceed the end
// of its durable WAL image. Judged when a report moved up since this
// incarnation's last judgement, at most once per s10Every per node and
// partition (each judgement decodes the WAL image's new durable part), so
// a report that runs ahead of the disk is seen even when no acks=1 reply
// happens while it does.
func (o *oracle) observeDurable(id uint64, parts []PartState, durable []int64) {
	now := o.h.s.Now()
	for i, p := range parts {
		k := hwmKey{id, statemach.Key{Topic: p.Topic, Partition: p.Partition}}
		if durable[i] <= o.lastDurable[k] {
			continue
		}
		if at, ok := o.durableAt[k]; ok && now-at < s10Every {
			continue
		}
		o.lastDurable[k], o.durableAt[k] = durable[i], now
		img, err := o.walImage(id, k.part)
		if err != nil {
			continue // damaged: no truth to judge by (undamaged judged it)
		}
		o.judged[InvS10] = true
		if end := img.End(); durable[i] > end {
			o.violation(InvS10, "n%d %s/%d reports durable end %d at %v while its durable WAL image ends at %d", id, p.Topic, p.Partition, durable[i], o.h.s.Now(), end)
		}
	}
}

// observe judges S3 against the truth for one observation of node id:
// only partitions whose HWM moved up since the last judgement.
func (o *oracle) observe(id uint64, parts []PartState) {
	var moved []PartState
	for _, p := range parts {
		k := hwmKey{id, statemach.Key{Topic: p.Topic, Partition: p.Partition}}
		if p.HWM > o.lastHWM[k] {
			o.lastHWM[k] = p.HWM
			moved = append(moved, p)
		}
	}
	if len(moved) == 0 {
		return
	}
	for _, p := range moved {
		k := statemach.Key{Topic: p.Topic, Partition: p.Partition}
		var end int64
		var why string
		if o.h.o.Nodes == 1 {
			img, err := o.walImage(id, k)
			if err != nil {
				continue
			}
			end, why = img.End(), "its durable WAL end"
		} else {
			ends, ok := o.committedEnds()
			if !ok {
				continue
			}
			end, why = ends[k], "the committed end a majority holds durably"
		}
		o.judged[InvS3] = true
		if p.HWM > end {
			o.violation(InvS3, "n%d %s/%d HWM %d at %v exceeds %s (%d)", id, p.Topic, p.Partition, p.HWM, o.h.s.Now(), why, end)
		}
	}
}

// committedEnds returns, per partition, the committed end judged from the
// durable Raft logs: the longest prefix a majority holds durably with the
// same terms, replayed with the state machine's apply rule. ok is false
// when no node's log can be decoded. A node whose log holds damaged synced
// data counts as agreeing with every prefix (its loss is the fault's, not
// a promise broken), so corruption can only weaken the check.
func (o *oracle) committedEnds() (map[statemach.Key]int64, bool) {
	vers := make([]uint64, len(o.nodes))
	for i, nt := range o.nodes {
		vers[i] = nt.raft.src.Version()
	}
	if o.commitEnds != nil && slices.Equal(vers, o.commitVers) {
		return o.commitEnds, true
	}
	imgs := make([]*raftlog.Image, len(o.nodes))
	bad := make([]bool, len(o.nodes))
	for i, nt := range o.nodes {
		img, err := o.raftImage(nt.id)
		imgs[i], bad[i] = img, err != nil
	}
	q := len(o.nodes)/2 + 1
	best, pivot := uint64(0), -1
	lens := make([]uint64, len(o.nodes))
	for p := range imgs {
		if bad[p] {
			continue
		}
		for x := range imgs {
			if bad[x] {
				lens[x] = imgs[p].LastIndex()
			} else {
				lens[x] = commonPrefix(imgs[p], imgs[x])
			}
		}
		slices.Sort(lens)
		if c := lens[len(lens)-q]; pivot < 0 || c > best {
			best, pivot = c, p
		}
	}
	if pivot < 0 {
		return nil, false
	}
	o.commit.advance(imgs[pivot], best)
	o.commitVers, o.commitEnds = vers, o.commit.ends
	return o.commitEnds, true
}

// commonPrefix returns the longest prefix on which a and b hold the same
// terms. Raft's log matching makes agreement prefix-closed (same term at i
// means the same entries up to i), so a binary search finds it.
func commonPrefix(a, b *raftlog.Image) uint64 {
	hi := min(a.LastIndex(), b.LastIndex())
	same := func(i uint64) bool {
		ta, _ := a.Term(i)
		tb, _ := b.Term(i)
		return ta == tb
	}
	// First index in [1, hi] where the terms differ; hi+1 if none.
	f := uint64(sort.Search(int(hi), func(i int) bool { return !same(uint64(i) + 1) })) + 1
	return f - 1
}

// advance replays img's entries up to index to, continuing from the
// cursor when img agrees with the cursor's position, else from index 1.
func (c *commitCursor) advance(img *raftlog.Image, to uint64) {
	if t, ok := img.Term(c.index); c.ends == nil || c.index > to || (c.index > 0 && (!ok || t != c.term)) {
		c.index, c.term = 0, 0
		c.ends = map[statemach.Key]int64{}
	}
	// A new map whenever it changes: the cached map handed out stays
	// valid for its versions.
	if c.index < to {
		c.ends = cloneEnds(c.ends)
	}
	for ; c.index < to; c.index++ {
		e, _ := img.Entry(c.index + 1)
		c.term = e.Term
		if e.Type != pb.EntryNormal || len(e.Data) == 0 {
			continue
		}
		ent, err := statemach.Decode(e.Data)
		if err != nil {
			continue // the node fails on it: nothing applies
		}
		k := statemach.Key{Topic: ent.Topic, Partition: ent.Partition}
		if ent.Base == c.ends[k] {
			c.ends[k] = ent.Base + ent.Count
		}
	}
}

func cloneEnds(m map[statemach.Key]int64) map[statemach.Key]int64 {
	out := make(map[statemach.Key]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// booted is S11: node id has just recovered. Its Raft state must be what
// its durable Raft log holds (and it must refuse a log whose synced data is
// damaged), and must cover what it promised before.
func (o *oracle) booted(id uint64, n *node.Node) {
	// S10 judges each incarnation's durability reports afresh.
	for k := range o.lastDurable {
		if k.node == id {
			delete(o.lastDurable, k)
			delete(o.durableAt, k)
		}
	}
	if o.h.o.Nodes == 1 || o.h.variant.bugs.InMemoryRaftLog {
		return
	}
	nt := o.nodes[id-1]
	img, err := o.bootImage(id)
	o.judged[InvS11] = true
	now := o.h.s.Now()
	if err != nil && (errors.Is(err, reclog.ErrCorrupt) || errors.Is(err, raftlog.ErrCorrupt)) {
		o.violation(InvS11, "n%d opened at %v although its durable Raft log holds damaged synced data (%v): it must refuse to open or repair itself", id, now, err)
		return
	}
	term, vote, _ := img.HardState()
	rt, rv, _ := n.RaftHardState()
	last := img.LastIndex()
	dt, _ := img.Term(last)
	switch {
	case rt != term || rv != vote:
		o.violation(InvS11, "n%d recovered term %d vote %d at %v, its durable HardState holds term %d vote %d", id, rt, rv, now, term, vote)
	case rt < nt.promise.term || (rt == nt.promise.term && rv != nt.promise.vote && nt.promise.vote != 0):
		o.violation(InvS11, "n%d recovered term %d vote %d at %v, behind the term %d vote %d it promised before its restart", id, rt, rv, now, nt.promise.term, nt.promise.vote)
	}
	if lt, ok := n.RaftLogTerm(last); last > 0 && (!ok || lt != dt) {
		o.violation(InvS11, "n%d recovered a Raft log without its durable entry %d (term %d) at %v: a silently shortened log", id, last, dt, now)
	} else if _, ok := n.RaftLogTerm(last + 1); ok {
		o.violation(InvS11, "n%d recovered a Raft log past its durable last index %d at %v", id, last, now)
	}
	nt.promise = promise{}
}
