package sim

import (
	"fmt"
	"math/bits"
	"strconv"
	"time"

	"walraft/core/env"
)

// TraceEvent is one event of a simulation's trace: a node's env.Event or one
// of the world's own events (crash, restart, pause, partition, message drop,
// ...), stamped with global virtual time. Node is 0 for events that belong to
// no node (network events carry their endpoints in A and B).
type TraceEvent struct {
	At         time.Duration
	Node       env.NodeID
	Kind       string
	A, B, C, D int64
	Text       string
}

// String renders the event on one stable line, for example
//
//	12.345678901s n2 wal.sync a=1 b=4096 c=0 d=0
//	3.000000000s world net.heal a=0 b=0 c=0 d=0
//
// with Text, when present, appended Go-quoted. The time has nanosecond
// precision, so two events render equal exactly when their fields are equal.
func (e TraceEvent) String() string {
	b := make([]byte, 0, 64+len(e.Kind)+len(e.Text))
	b = appendSeconds(b, e.At)
	if e.Node == 0 {
		b = append(b, " world "...)
	} else {
		b = append(b, " n"...)
		b = strconv.AppendUint(b, e.Node, 10)
		b = append(b, ' ')
	}
	b = append(b, e.Kind...)
	for i, v := range [4]int64{e.A, e.B, e.C, e.D} {
		b = append(b, ' ', "abcd"[i], '=')
		b = strconv.AppendInt(b, v, 10)
	}
	if e.Text != "" {
		b = append(b, ' ')
		b = strconv.AppendQuote(b, e.Text)
	}
	return string(b)
}

// appendSeconds renders d as seconds with nine decimals ("12.345678901s").
func appendSeconds(b []byte, d time.Duration) []byte {
	u := uint64(d)
	if d < 0 {
		b = append(b, '-')
		u = uint64(-d) // the minimum Duration wraps to itself, which is its magnitude
	}
	b = strconv.AppendUint(b, u/1e9, 10)
	b = append(b, '.')
	frac := strconv.AppendUint(nil, u%1e9, 10)
	for i := len(frac); i < 9; i++ {
		b = append(b, '0')
	}
	b = append(b, frac...)
	return append(b, 's')
}

// FirstDivergence returns the index of the first event where a and b
// differ; when one trace is a prefix of the other, that is the length of
// the shorter. ok is false (and i is -1) when the traces are equal.
func FirstDivergence(a, b []TraceEvent) (i int, ok bool) {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i, true
		}
	}
	if len(a) != len(b) {
		return n, true
	}
	return -1, false
}

// MaxTraceRing bounds TraceConfig.Ring so a bad config cannot allocate
// without bound.
const MaxTraceRing = 1 << 20

// TraceConfig chooses what a Trace keeps besides its hash. The zero value
// keeps only the hash, which is the fast default for campaigns.
type TraceConfig struct {
	// Record keeps every event (memory grows with the run; for replays and
	// determinism checks).
	Record bool
	// Ring keeps the last Ring events (0 keeps none; at most MaxTraceRing),
	// for the timeline around a violation.
	Ring int
}

// Validate reports a config a Trace cannot use.
func (c TraceConfig) Validate() error {
	if c.Ring < 0 || c.Ring > MaxTraceRing {
		return fmt.Errorf("sim trace config: Ring = %d, want [0, %d]: %w", c.Ring, MaxTraceRing, ErrInvalidConfig)
	}
	return nil
}

// hashSeed starts every trace's hash; hashMul is the multiplier of the
// mixing step (the 64-bit golden ratio, odd).
const (
	hashSeed uint64 = 0xcbf29ce484222325 // FNV-1a's offset basis
	hashMul  uint64 = 0x9e3779b97f4a7c15
)

// Trace is a simulation's event trace: a running 64-bit hash over a fixed
// binary encoding of every event, plus, when configured, the events
// themselves. Adding an event does not allocate unless the events are kept.
//
// The encoding is a sequence of 64-bit words: At, Node, A, B, C, D, then
// Kind and Text, each as its length followed by its bytes in little-endian
// words (the last one zero-padded). Each word w is mixed in as
// h = hi ^ lo of the 128-bit product (h ^ w) * hashMul: like FNV-1a but a
// word at a time (several times faster, which matters because every event of
// every run is hashed), and folding the high half back so every input bit
// reaches every output bit.
type Trace struct {
	cfg    TraceConfig
	hash   uint64
	n      uint64
	events []TraceEvent
	ring   []TraceEvent
	next   int // ring: index of the oldest event once the ring is full

	listener func(TraceEvent)
}

// SetListener makes the trace call fn with every event after it is added
// (the harness counts probes this way). fn must not add events itself.
func (t *Trace) SetListener(fn func(TraceEvent)) { t.listener = fn }

// NewTrace returns an empty trace. It fails if cfg is invalid.
func NewTrace(cfg TraceConfig) (*Trace, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Trace{cfg: cfg, hash: hashSeed}, nil
}

// Add appends an event.
func (t *Trace) Add(e TraceEvent) {
	h := t.hash
	h = mix(h, uint64(e.At))
	h = mix(h, e.Node)
	h = mix(h, uint64(e.A))
	h = mix(h, uint64(e.B))
	h = mix(h, uint64(e.C))
	h = mix(h, uint64(e.D))
	h = mixString(h, e.Kind)
	h = mixString(h, e.Text)
	t.hash = h
	t.n++
	if t.cfg.Record {
		t.events = append(t.events, e)
	}
	if t.cfg.Ring > 0 {
		if len(t.ring) < t.cfg.Ring {
			t.ring = append(t.ring, e)
		} else {
			t.ring[t.next] = e
			t.next = (t.next + 1) % len(t.ring)
		}
	}
	if t.listener != nil {
		t.listener(e)
	}
}

// mix folds one word into the hash.
func mix(h, w uint64) uint64 {
	hi, lo := bits.Mul64(h^w, hashMul)
	return hi ^ lo
}

// mixString folds a string's length and bytes into the hash.
func mixString(h uint64, s string) uint64 {
	h = mix(h, uint64(len(s)))
	n := len(s)
	i := 0
	for ; i+8 <= n; i += 8 {
		h = mix(h, le64(s[i:]))
	}
	r := n - i
	if r == 0 {
		return h
	}
	// The last word holds the r trailing bytes, little-endian, zero above.
	var w uint64
	switch {
	case n >= 8:
		// The string's last 8 bytes, shifted down past the ones already
		// mixed.
		w = le64(s[n-8:]) >> (8 * (8 - r))
	case r >= 4:
		// Two 4-byte loads that overlap; the shared bytes are the same.
		w = uint64(le32(s)) | uint64(le32(s[r-4:]))<<(8*(r-4))
	default:
		for k := 0; k < r; k++ {
			w |= uint64(s[k]) << (8 * k)
		}
	}
	return mix(h, w)
}

// le64 and le32 read the first 8 and 4 bytes of s, little-endian (the
// compiler turns each into one load).
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func le32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// Hash returns the running hash over every event added so far.
func (t *Trace) Hash() uint64 { return t.hash }

// Len returns how many events were added.
func (t *Trace) Len() uint64 { return t.n }

// Config returns the trace's config.
func (t *Trace) Config() TraceConfig { return t.cfg }

// Events returns every event added, in order, when the trace records (nil
// otherwise). The slice is the trace's own: do not modify it.
func (t *Trace) Events() []TraceEvent { return t.events }

// Last returns the events kept in the ring, oldest first, in a new slice.
func (t *Trace) Last() []TraceEvent {
	out := make([]TraceEvent, 0, len(t.ring))
	out = append(out, t.ring[t.next:]...)
	return append(out, t.ring[:t.next]...)
}

// nodeTracer is the env.Tracer of one process incarnation: it stamps each
// event with the global time and the node id, and ignores events from an
// incarnation that has crashed.
type nodeTracer struct {
	p     *Process
	epoch uint64
}

var _ env.Tracer = (*nodeTracer)(nil)

// Trace implements env.Tracer.
func (t *nodeTracer) Trace(e env.Event) {
	if !t.p.live(t.epoch) {
		return
	}
	w := t.p.w
	w.trace.Add(TraceEvent{At: w.sched.Now(), Node: t.p.id, Kind: e.Kind, A: e.A, B: e.B, C: e.C, D: e.D, Text: e.Text})
}
