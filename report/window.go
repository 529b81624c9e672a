package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"walraft/sim"
)

// stateKinds are the trace events that carry a node's HWM and log end; a
// timeline starts with the latest of each per node and partition before
// its window, so every node's state is on screen.
var stateKinds = []string{"obs", "hwm"}

// Window keeps the trace events a timeline shows around a centre time, fed
// one event at a time (from a finished trace, or live from a run through
// RunConfig.OnTrace): the last Before shown events at or before the centre,
// the first After shown events after it, and the last state event (obs,
// hwm) of each node and partition before the first kept event. Its memory
// is bounded by the window, not by the run.
type Window struct {
	center time.Duration
	before int
	after  int
	hide   []string
	node   uint64

	seq     uint64
	total   uint64
	ring    []winEvent // shown events at or before center, oldest first
	post    []winEvent // shown events after center
	pending []winEvent // state events not yet before the ring's start
	state   map[stateKey]winEvent
}

type winEvent struct {
	seq  uint64
	e    sim.TraceEvent
	note string
}

type stateKey struct {
	node uint64
	kind string
	part int64
}

// NewWindow returns a window of before events up to center and after
// events past it (center < 0: the end of the run), leaving out the kinds in
// hide (exact kinds, or prefixes ending in '.') and, when node is not 0,
// events of other nodes (network events count when node is an endpoint).
func NewWindow(center time.Duration, before, after int, hide []string, node uint64) *Window {
	if center < 0 {
		center = math.MaxInt64
	}
	return &Window{center: center, before: before, after: after, hide: hide, node: node, state: map[stateKey]winEvent{}}
}

// Hidden reports whether kind matches one of the hide items: an exact
// kind, or a prefix ending in '.'.
func Hidden(kind string, hide []string) bool {
	for _, h := range hide {
		if kind == h || (strings.HasSuffix(h, ".") && strings.HasPrefix(kind, h)) {
			return true
		}
	}
	return false
}

// ofNode reports whether e belongs to node n: its own events, and network
// events with n as an endpoint (A and B are from and to).
func ofNode(e sim.TraceEvent, n uint64) bool {
	if e.Node != 0 {
		return e.Node == n
	}
	if strings.HasPrefix(e.Kind, "net.") {
		return e.A == int64(n) || e.B == int64(n) || e.Kind == "net.heal" || e.Kind == "net.partition" || e.Kind == "net.bridge"
	}
	return true
}

// Add feeds the next event, with an optional note rendered after it (a
// message's kind, term and index).
func (w *Window) Add(e sim.TraceEvent, note string) {
	w.seq++
	w.total++
	we := winEvent{seq: w.seq, e: e, note: note}
	if e.At <= w.center && slices.Contains(stateKinds, e.Kind) {
		w.pending = append(w.pending, we)
	}
	if Hidden(e.Kind, w.hide) || (w.node != 0 && !ofNode(e, w.node)) {
		return
	}
	if e.At > w.center {
		if len(w.post) < w.after {
			w.post = append(w.post, we)
		}
		return
	}
	w.ring = append(w.ring, we)
	if len(w.ring) > w.before {
		// Amortised: drop the oldest half of the excess at once.
		drop := len(w.ring) - w.before
		if cap(w.ring) > 4*w.before+64 {
			w.ring = slices.Clone(w.ring[drop:])
		} else {
			w.ring = w.ring[drop:]
		}
		w.fold()
	}
}

// fold moves pending state events older than the ring's first event into
// the state before the window.
func (w *Window) fold() {
	if len(w.ring) == 0 {
		return
	}
	first := w.ring[0].seq
	k := 0
	for k < len(w.pending) && w.pending[k].seq < first {
		p := w.pending[k]
		w.state[stateKey{p.e.Node, p.e.Kind, p.e.A}] = p
		k++
	}
	w.pending = w.pending[k:]
}

// Lines renders the window: the state before it, a header, the events with
// a ">>> time label" marker line at the centre, the events after.
func (w *Window) Lines(label string) []string {
	w.fold()
	var out []string
	keys := make([]stateKey, 0, len(w.state))
	for k := range w.state {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b stateKey) int {
		if a.node != b.node {
			return int(a.node) - int(b.node)
		}
		if a.part != b.part {
			return int(a.part - b.part)
		}
		return strings.Compare(a.kind, b.kind)
	})
	if len(keys) > 0 {
		out = append(out, "node state before the window (each node's last obs/hwm event per partition; obs: a=partition b=HWM c=log end d=term):")
		for _, k := range keys {
			out = append(out, "  "+w.state[k].e.String())
		}
	}
	note := ""
	if len(w.hide) > 0 {
		note = ", hiding " + strings.Join(w.hide, ",")
	}
	if w.node != 0 {
		note += fmt.Sprintf(", node %d only", w.node)
	}
	out = append(out, fmt.Sprintf("%d of %d events%s:", len(w.ring)+len(w.post), w.total, note))
	for _, x := range w.ring {
		out = append(out, line(x))
	}
	at := w.center
	if at == math.MaxInt64 && len(w.ring) > 0 {
		at = w.ring[len(w.ring)-1].e.At
	}
	out = append(out, fmt.Sprintf(">>> %.9fs %s", at.Seconds(), label))
	for _, x := range w.post {
		out = append(out, line(x))
	}
	return out
}

func line(x winEvent) string {
	if x.note != "" {
		return x.e.String() + "  " + x.note
	}
	return x.e.String()
}

// MsgNotes follows messages through a run's network tap and names the
// message of each net.deliver and net.drop trace event ("MsgApp n2->n3
// term 4 index 17 entries 1"). It keeps only messages in flight, so its
// memory is bounded by the network, not by the run.
type MsgNotes struct {
	inflight map[int64]string
	lastDrop string
}

// NewMsgNotes returns an empty tracker.
func NewMsgNotes() *MsgNotes { return &MsgNotes{inflight: map[int64]string{}} }

// Tap is the RunConfig.NetTap to install.
func (m *MsgNotes) Tap(e sim.MsgEvent) {
	switch e.Op {
	case sim.MsgSend, sim.MsgDup:
		m.inflight[e.ID] = describeMsg(e)
	case sim.MsgDeliver:
		delete(m.inflight, e.ID)
	case sim.MsgDrop:
		m.lastDrop = describeMsg(e) + " dropped: " + e.Why.String()
		delete(m.inflight, e.ID)
	}
}

// Note returns the note of a trace event: the message of a net.deliver or
// net.drop, "" for other events. Call it as the event is added (before
// the tap sees the delivery).
func (m *MsgNotes) Note(e sim.TraceEvent) string {
	switch e.Kind {
	case "net.deliver":
		return m.inflight[e.D]
	case "net.drop":
		return m.lastDrop
	}
	return ""
}

// describeMsg renders a Raft message on one line: kind, from, to, term,
// index, log term, entries, commit, reject.
func describeMsg(e sim.MsgEvent) string {
	var msg pb.Message
	if err := proto.Unmarshal(e.Msg, &msg); err != nil {
		return fmt.Sprintf("%d bytes n%d->n%d (not a Raft message)", len(e.Msg), e.From, e.To)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s n%d->n%d term %d index %d", msg.GetType(), e.From, e.To, msg.GetTerm(), msg.GetIndex())
	if msg.GetLogTerm() != 0 {
		fmt.Fprintf(&b, " logterm %d", msg.GetLogTerm())
	}
	if len(msg.Entries) > 0 {
		fmt.Fprintf(&b, " entries %d", len(msg.Entries))
	}
	if msg.GetCommit() != 0 {
		fmt.Fprintf(&b, " commit %d", msg.GetCommit())
	}
	if msg.GetReject() {
		b.WriteString(" REJECT")
	}
	return b.String()
}
