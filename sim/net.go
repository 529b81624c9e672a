package sim

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"walraft/core/env"
)

// LinkConfig sets the behaviour of a directed link. The zero value is an
// instant, lossless, in-order link.
type LinkConfig struct {
	// Latency is the base one-way delay; each message adds a uniform
	// jitter in [0, Jitter].
	Latency, Jitter time.Duration
	// DropProb: a message is lost.
	DropProb float64
	// DupProb: a message is delivered twice (each copy with its own delay).
	DupProb float64
	// ReorderProb: a message is held back an extra uniform delay in
	// [0, ReorderDelay], so later messages overtake it.
	ReorderProb  float64
	ReorderDelay time.Duration
}

// Validate reports a config the network cannot use.
func (c LinkConfig) Validate() error {
	for _, p := range []struct {
		name string
		p    float64
	}{{"DropProb", c.DropProb}, {"DupProb", c.DupProb}, {"ReorderProb", c.ReorderProb}} {
		if math.IsNaN(p.p) || p.p < 0 || p.p > 1 {
			return fmt.Errorf("sim link config: %s = %v, want a probability in [0, 1]: %w", p.name, p.p, ErrInvalidConfig)
		}
	}
	if c.Latency < 0 || c.Jitter < 0 || c.ReorderDelay < 0 {
		return fmt.Errorf("sim link config: negative delay (latency %v, jitter %v, reorder %v): %w",
			c.Latency, c.Jitter, c.ReorderDelay, ErrInvalidConfig)
	}
	return nil
}

// String renders the config on one stable line.
func (c LinkConfig) String() string {
	return fmt.Sprintf("latency=%v jitter=%v drop=%v dup=%v reorder=%v/%v",
		c.Latency, c.Jitter, c.DropProb, c.DupProb, c.ReorderProb, c.ReorderDelay)
}

// Link is a directed link between two nodes.
type Link struct{ From, To env.NodeID }

// DropReason says why the network dropped a message (C of a net.drop trace
// event).
type DropReason int64

// Drop reasons.
const (
	// DropCut: the link was cut by a partition when the message was sent.
	DropCut DropReason = iota + 1
	// DropLoss: random loss (LinkConfig.DropProb).
	DropLoss
	// DropDown: the destination was down when the message was sent, or
	// the incarnation it was sent to crashed before delivery.
	DropDown
	// DropStale: the sender's incarnation had crashed (a stale handle).
	DropStale
	// DropUnknown: no such destination node.
	DropUnknown
)

// String names the reason.
func (r DropReason) String() string {
	switch r {
	case DropCut:
		return "cut"
	case DropLoss:
		return "loss"
	case DropDown:
		return "down"
	case DropStale:
		return "stale"
	case DropUnknown:
		return "unknown"
	}
	return "DropReason(" + strconv.FormatInt(int64(r), 10) + ")"
}

// NetStats counts what the network did.
type NetStats struct {
	Sent       int64 // Send calls
	BytesSent  int64
	Delivered  int64 // Receive calls (duplicates included)
	Duplicated int64 // extra copies scheduled
	Reordered  int64 // messages held back by ReorderProb
	// Dropped, by reason (indexed by DropReason; index 0 unused).
	DroppedBy [DropUnknown + 1]int64
}

// Dropped returns the total of dropped messages.
func (s NetStats) Dropped() int64 {
	var n int64
	for _, v := range s.DroppedBy {
		n += v
	}
	return n
}

// Net is the simulated network between a world's processes.
//
// A message is checked against the partition when it is SENT: a message
// already in flight when a link is cut is still delivered (it was past the
// switch), and one sent across a cut is lost even if the cut heals before
// it would have arrived. That keeps the rule simple and deterministic.
// Delivery is bound to the incarnation of the destination at send time: if
// it crashes before the message arrives, the message is dropped, as a
// restart breaks the connections it came on. A message that arrives while
// the destination is paused waits for Resume.
//
// Randomness (loss, delay, duplication, reordering) comes only from the
// network's own stream, drawn in a fixed order per message.
type Net struct {
	w     *World
	rng   *Rand
	def   LinkConfig
	links map[Link]LinkConfig
	cuts  map[Link]struct{}
	stats NetStats
	msgs  int64 // message ids, for the trace

	// free holds delivery objects that have run or been dropped, for
	// reuse: one per message in flight is all a run ever allocates.
	free []*delivery

	tap func(MsgEvent) // SetTap (nettap.go); nil almost always
	// observe, if set, sees every message a live process sends (see
	// World.SetSendObserver).
	observe func(from, to env.NodeID, msg []byte)
}

func newNet(w *World, rng *Rand, def LinkConfig) *Net {
	return &Net{w: w, rng: rng, def: def, links: map[Link]LinkConfig{}, cuts: map[Link]struct{}{}}
}

// Default returns the config of links without an override.
func (n *Net) Default() LinkConfig { return n.def }

// SetDefault replaces the config of links without an override.
func (n *Net) SetDefault(cfg LinkConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	n.def = cfg
	return nil
}

// SetLink overrides the config of the directed link from -> to.
func (n *Net) SetLink(from, to env.NodeID, cfg LinkConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := n.known(from, to); err != nil {
		return err
	}
	n.links[Link{from, to}] = cfg
	return nil
}

// ClearLink removes the override of from -> to.
func (n *Net) ClearLink(from, to env.NodeID) { delete(n.links, Link{from, to}) }

// LinkConfig returns the config in force on from -> to.
func (n *Net) LinkConfig(from, to env.NodeID) LinkConfig {
	if c, ok := n.links[Link{from, to}]; ok {
		return c
	}
	return n.def
}

// Stats returns the counters.
func (n *Net) Stats() NetStats { return n.stats }

// Connected reports whether from -> to is not cut. A node is always
// connected to itself.
func (n *Net) Connected(from, to env.NodeID) bool {
	_, cut := n.cuts[Link{from, to}]
	return !cut
}

// Cuts returns the cut links, sorted.
func (n *Net) Cuts() []Link {
	out := make([]Link, 0, len(n.cuts))
	for l := range n.cuts {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Link) int {
		if a.From != b.From {
			return cmpID(a.From, b.From)
		}
		return cmpID(a.To, b.To)
	})
	return out
}

func cmpID(a, b env.NodeID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Partition replaces every cut with a partition into groups: a link is up
// only between two nodes of the same group. Groups must be disjoint; a node
// in no group is isolated.
func (n *Net) Partition(groups ...[]env.NodeID) error {
	if err := n.setGroups(groups, false); err != nil {
		return err
	}
	n.w.eventText(0, "net.partition", int64(len(n.cuts)), 0, 0, 0, renderGroups(groups))
	return nil
}

// PartitionMinority replaces every cut with a partition of the listed nodes
// (a strict minority of the world) from all the others.
func (n *Net) PartitionMinority(minority ...env.NodeID) error {
	all := n.w.Nodes()
	if len(minority) == 0 || 2*len(minority) >= len(all) {
		return fmt.Errorf("sim net: %d of %d nodes is not a strict minority: %w", len(minority), len(all), ErrInvalidArgument)
	}
	in := map[env.NodeID]bool{}
	for _, id := range minority {
		in[id] = true
	}
	var rest []env.NodeID
	for _, id := range all {
		if !in[id] {
			rest = append(rest, id)
		}
	}
	return n.Partition(minority, rest)
}

// Bridge replaces every cut with a bridge partition: nodes of a and nodes
// of b cannot talk to each other, but the bridge node talks to both sides.
// Nodes in neither group (nor the bridge) are isolated.
func (n *Net) Bridge(a, b []env.NodeID, bridge env.NodeID) error {
	for _, id := range append(slices.Clone(a), b...) {
		if id == bridge {
			return fmt.Errorf("sim net: bridge node %d is also in a group: %w", bridge, ErrInvalidArgument)
		}
	}
	ga := append(slices.Clone(a), bridge)
	gb := append(slices.Clone(b), bridge)
	// a and b must be disjoint: check them as a partition first.
	if err := n.checkGroups([][]env.NodeID{a, b}, false); err != nil {
		return err
	}
	if err := n.setGroups([][]env.NodeID{ga, gb}, true); err != nil {
		return err
	}
	n.w.eventText(0, "net.bridge", int64(len(n.cuts)), int64(bridge), 0, 0, renderGroups([][]env.NodeID{a, b}))
	return nil
}

// Cut cuts the directed link from -> to (one-way), adding to the current
// cuts.
func (n *Net) Cut(from, to env.NodeID) error {
	if err := n.known(from, to); err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("sim net: cut %d -> %d: a node cannot be cut from itself: %w", from, to, ErrInvalidArgument)
	}
	n.cuts[Link{from, to}] = struct{}{}
	n.w.event(0, "net.cut", int64(from), int64(to), 0, 0)
	return nil
}

// Isolate cuts every link to and from id, adding to the current cuts.
func (n *Net) Isolate(id env.NodeID) error {
	if err := n.known(id); err != nil {
		return err
	}
	for _, o := range n.w.Nodes() {
		if o != id {
			n.cuts[Link{id, o}] = struct{}{}
			n.cuts[Link{o, id}] = struct{}{}
		}
	}
	n.w.event(0, "net.isolate", int64(id), 0, 0, 0)
	return nil
}

// Heal removes every cut.
func (n *Net) Heal() {
	clear(n.cuts)
	n.w.event(0, "net.heal", 0, 0, 0, 0)
}

// known checks that every id names a node.
func (n *Net) known(ids ...env.NodeID) error {
	for _, id := range ids {
		if _, ok := n.w.procs[id]; !ok {
			return fmt.Errorf("sim net: node %d: %w", id, ErrUnknownNode)
		}
	}
	return nil
}

// checkGroups reports unknown ids, and ids in two groups unless overlap is
// allowed.
func (n *Net) checkGroups(groups [][]env.NodeID, overlap bool) error {
	seen := map[env.NodeID]int{}
	for gi, g := range groups {
		for _, id := range g {
			if err := n.known(id); err != nil {
				return err
			}
			if prev, ok := seen[id]; ok && (!overlap || prev == gi) {
				return fmt.Errorf("sim net: node %d listed twice in partition %s: %w", id, renderGroups(groups), ErrInvalidArgument)
			}
			seen[id] = gi
		}
	}
	return nil
}

// setGroups replaces the cuts: x -> y is cut unless some group holds both.
func (n *Net) setGroups(groups [][]env.NodeID, overlap bool) error {
	if err := n.checkGroups(groups, overlap); err != nil {
		return err
	}
	member := map[env.NodeID][]int{}
	for gi, g := range groups {
		for _, id := range g {
			member[id] = append(member[id], gi)
		}
	}
	clear(n.cuts)
	all := n.w.Nodes()
	for _, x := range all {
		for _, y := range all {
			if x == y {
				continue
			}
			shared := false
			for _, g := range member[x] {
				if slices.Contains(member[y], g) {
					shared = true
					break
				}
			}
			if !shared {
				n.cuts[Link{x, y}] = struct{}{}
			}
		}
	}
	return nil
}

// renderGroups renders groups as "1,2|3,4,5" (stable text for the trace).
func renderGroups(groups [][]env.NodeID) string {
	var b []byte
	for gi, g := range groups {
		if gi > 0 {
			b = append(b, '|')
		}
		for i, id := range g {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, id, 10)
		}
	}
	return string(b)
}

// send is Network.Send of sender's incarnation epoch.
func (n *Net) send(sender *Process, epoch uint64, to env.NodeID, msg []byte) {
	n.stats.Sent++
	n.stats.BytesSent += int64(len(msg))
	n.w.sched.Charge(uint64(len(msg)) >> 10) // the storm guard counts traffic too
	from := sender.id
	if !sender.live(epoch) {
		n.tapped(MsgDrop, from, to, 0, DropStale, msg)
		n.drop(from, to, len(msg), DropStale)
		return
	}
	if n.observe != nil {
		n.observe(from, to, msg)
	}
	dst, ok := n.w.procs[to]
	if !ok {
		n.tapped(MsgDrop, from, to, 0, DropUnknown, msg)
		n.drop(from, to, len(msg), DropUnknown)
		return
	}
	if dst.state == StateDown {
		n.tapped(MsgDrop, from, to, 0, DropDown, msg)
		n.drop(from, to, len(msg), DropDown)
		return
	}
	if !n.Connected(from, to) {
		n.tapped(MsgDrop, from, to, 0, DropCut, msg)
		n.drop(from, to, len(msg), DropCut)
		return
	}
	cfg := n.LinkConfig(from, to)
	if n.rng.Chance(cfg.DropProb) {
		n.tapped(MsgDrop, from, to, 0, DropLoss, msg)
		n.drop(from, to, len(msg), DropLoss)
		return
	}
	n.schedule(from, dst, msg, cfg)
	n.tapped(MsgSend, from, to, n.msgs, 0, msg)
	if n.rng.Chance(cfg.DupProb) {
		n.stats.Duplicated++
		n.w.event(0, "net.dup", int64(from), int64(to), int64(len(msg)), 0)
		// A copy: the receiver owns each delivered slice.
		n.schedule(from, dst, slices.Clone(msg), cfg)
		n.tapped(MsgDup, from, to, n.msgs, 0, msg)
	}
}

// schedule draws a delay and queues one delivery to dst's current
// incarnation.
func (n *Net) schedule(from env.NodeID, dst *Process, msg []byte, cfg LinkConfig) {
	delay := cfg.Latency + n.rng.Duration(0, cfg.Jitter)
	if n.rng.Chance(cfg.ReorderProb) {
		n.stats.Reordered++
		delay += n.rng.Duration(0, cfg.ReorderDelay)
	}
	n.msgs++
	var d *delivery
	if k := len(n.free); k > 0 {
		d = n.free[k-1]
		n.free[k-1] = nil
		n.free = n.free[:k-1]
	} else {
		d = &delivery{n: n}
	}
	d.from, d.dst, d.epoch, d.id, d.msg = from, dst, dst.epoch, n.msgs, msg
	n.w.sched.schedule(&d.item, n.w.sched.Now()+max(delay, 0), d)
}

// delivery is one message in flight to one incarnation of dst. Nothing
// outside the network keeps a delivery, so it goes back to Net.free once it
// has run or been dropped.
type delivery struct {
	item  Item
	n     *Net
	from  env.NodeID
	dst   *Process
	epoch uint64
	id    int64
	msg   []byte
}

// fire is the delivery's scheduler event: the message arrives at the
// destination's event loop.
func (d *delivery) fire() { d.dst.dispatchEvent(d.epoch, d) }

// run hands the message to the destination node.
func (d *delivery) run() {
	n, from, dst, msg := d.n, d.from, d.dst, d.msg
	n.stats.Delivered++
	n.w.event(0, "net.deliver", int64(from), int64(dst.id), int64(len(msg)), d.id)
	n.tapped(MsgDeliver, from, dst.id, d.id, 0, msg)
	d.release()
	dst.receiver.Receive(from, msg)
}

// drop counts the message lost with the incarnation it was sent to.
func (d *delivery) drop() {
	n, from, to, size := d.n, d.from, d.dst.id, len(d.msg)
	n.tapped(MsgDrop, from, to, d.id, DropDown, d.msg)
	d.release()
	n.drop(from, to, size, DropDown)
}

// release returns d to the free list; d must not be used afterwards.
func (d *delivery) release() {
	d.dst, d.msg = nil, nil
	d.n.free = append(d.n.free, d)
}

func (n *Net) drop(from, to env.NodeID, size int, why DropReason) {
	n.stats.DroppedBy[why]++
	n.w.event(0, "net.drop", int64(from), int64(to), int64(why), int64(size))
}

// netHandle is the env.Network of one process incarnation.
type netHandle struct {
	n     *Net
	p     *Process
	epoch uint64
}

var _ env.Network = (*netHandle)(nil)

// Send implements env.Network.
func (h *netHandle) Send(to env.NodeID, msg []byte) { h.n.send(h.p, h.epoch, to, msg) }
