package sim

import (
	"time"

	"walraft/core/env"
)

// MsgOp says what happened to a message in a MsgEvent.
type MsgOp uint8

// Message operations a tap sees.
const (
	// MsgSend: the network accepted the message and scheduled its delivery
	// (ID is the delivery's id, as in net.deliver's D).
	MsgSend MsgOp = iota + 1
	// MsgDup: a duplicate copy was scheduled (a delivery of its own, ID).
	MsgDup
	// MsgDeliver: the message reached the destination's event loop.
	MsgDeliver
	// MsgDrop: the message was lost; ID is 0 when it was dropped at send
	// time (cut, loss, down destination, stale sender).
	MsgDrop
)

// String names the operation.
func (o MsgOp) String() string {
	switch o {
	case MsgSend:
		return "send"
	case MsgDup:
		return "dup"
	case MsgDeliver:
		return "deliver"
	case MsgDrop:
		return "drop"
	}
	return "?"
}

// MsgEvent is one message operation as a network tap sees it, with the
// message's bytes. Msg is only valid during the tap call: the receiver owns
// the slice afterwards.
type MsgEvent struct {
	At       time.Duration
	Op       MsgOp
	From, To env.NodeID
	ID       int64
	Why      DropReason // MsgDrop only
	Msg      []byte
}

// SetTap makes the network call fn for every message it sends, duplicates,
// delivers or drops, with the message's bytes (nil fn: no tap). A tap is
// for reports: it observes only, draws no randomness and adds no trace
// event, so a run with a tap has the same trace hash as one without.
func (n *Net) SetTap(fn func(MsgEvent)) { n.tap = fn }

// tapped calls the tap, if any.
func (n *Net) tapped(op MsgOp, from, to env.NodeID, id int64, why DropReason, msg []byte) {
	if n.tap != nil {
		n.tap(MsgEvent{At: n.w.sched.Now(), Op: op, From: from, To: to, ID: id, Why: why, Msg: msg})
	}
}
