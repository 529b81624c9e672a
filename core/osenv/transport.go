package osenv

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"walraft/core/env"
)

// Transport defaults, used when the TransportConfig field is zero.
const (
	DefaultMaxFrame       = 64 << 20
	DefaultDialBackoffMin = 10 * time.Millisecond
	DefaultDialBackoffMax = time.Second
	DefaultSendQueue      = 4096
	DefaultWriteTimeout   = 10 * time.Second
)

// Transport errors, reported through TransportConfig.OnError and counted in
// TransportStats; test with errors.Is.
var (
	// ErrFrameTooLarge: a frame (sent or received) is larger than MaxFrame.
	// A receiver closes the connection on it without allocating the frame.
	ErrFrameTooLarge = errors.New("frame larger than MaxFrame")
	// ErrHandshake: a connection opened with a bad handshake (wrong magic,
	// sender id 0, or addressed to another node).
	ErrHandshake = errors.New("bad transport handshake")
	// ErrUnknownPeer: Send to a node with no address.
	ErrUnknownPeer = errors.New("no address for peer")
)

// Wire format. Each connection carries one direction, sender -> receiver.
// The sender opens it with a handshake
//
//	magic uint32 | from uint64 | to uint64      (big endian)
//
// then writes frames
//
//	length uint32 | payload [length]byte
//
// The receiver checks length against MaxFrame before allocating.
const (
	wireMagic     uint32 = 0x57524654 // "WRFT"
	handshakeLen         = 4 + 8 + 8
	frameHdrLen          = 4
	ioBufSize            = 64 << 10
	maxBatchFlush        = 256 // messages written before a flush even if more are queued
	handshakeWait        = 5 * time.Second
)

// TransportConfig configures a Transport. Zero durations and sizes take the
// Default* values.
type TransportConfig struct {
	// ID is this node's id (non-zero).
	ID env.NodeID
	// Listen is the address to accept peers on; "127.0.0.1:0" picks a port
	// (see Transport.Addr).
	Listen string
	// Peers maps node ids to addresses. Addresses may also be set or
	// changed later with SetPeer, for example once every listener is up.
	Peers map[env.NodeID]string
	// MaxFrame is the largest message, in bytes, sent or accepted (default
	// 64 MiB, at most 4 GiB-1). A larger incoming frame closes the
	// connection with ErrFrameTooLarge; a larger outgoing one is dropped.
	MaxFrame int
	// DialBackoffMin and DialBackoffMax bound the exponential backoff
	// between reconnect attempts to a peer.
	DialBackoffMin, DialBackoffMax time.Duration
	// SendQueue is the per-peer bounded send queue, in messages. When it is
	// full Send drops the message: the network is allowed to drop, and
	// raft retries.
	SendQueue int
	// WriteTimeout bounds one batch of writes to a peer; a peer that stops
	// reading for that long has its connection closed and redialled.
	WriteTimeout time.Duration
	// OnError, if set, is called with every connection-level error (dial
	// failures, bad handshakes, oversized frames, I/O errors). It runs on
	// transport goroutines, not on the loop, and must be safe for
	// concurrent use and quick.
	OnError func(error)
}

// TransportStats counts a transport's traffic since it started.
type TransportStats struct {
	Sent        uint64 // messages written to a connection (not necessarily delivered)
	Flushes     uint64 // batches of messages flushed to a connection (about one write system call each)
	SendDropped uint64 // messages Send dropped: queue full, unknown peer, too large, closed
	Received    uint64 // frames read from connections
	RecvDropped uint64 // received messages dropped because the loop queue was full
	Dials       uint64 // successful outbound connections
	DialErrors  uint64 // failed dials
	ConnErrors  uint64 // connections closed on an error (I/O, handshake, frame size)
}

// Transport is one node's env.Network over TCP. Each peer gets a writer
// goroutine with a bounded queue and its own outbound connection, redialled
// with exponential backoff when it breaks; inbound connections each get a
// reader goroutine that posts recv(from, msg) to the loop. Writes are
// batched in a bufio.Writer and flushed when the queue drains.
//
// Received messages are posted with Loop.TryPost: when the node's loop is
// backed up they are dropped (and counted) rather than blocking the reader.
type Transport struct {
	cfg  TransportConfig
	loop *Loop
	recv func(from env.NodeID, msg []byte)
	ln   net.Listener

	ctx    context.Context // cancelled by Close: aborts dials and backoff waits
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool

	mu    sync.RWMutex
	peers map[env.NodeID]*peer
	addrs map[env.NodeID]string
	conns map[net.Conn]struct{} // every open connection, closed by Close

	sent, sendDropped, received, recvDropped atomic.Uint64
	flushes                                  atomic.Uint64
	dials, dialErrors, connErrors            atomic.Uint64
}

var _ env.Network = (*Transport)(nil)

// peer is the outbound side towards one node.
type peer struct {
	id   env.NodeID
	q    chan []byte
	kick chan struct{} // cap 1: the address changed; cut backoff and the current conn short

	mu   sync.Mutex
	conn net.Conn // current outbound connection, nil while dialling
}

// NewTransport listens on cfg.Listen and returns a transport that posts
// every received message to loop as recv(from, msg). recv owns msg.
func NewTransport(cfg TransportConfig, loop *Loop, recv func(from env.NodeID, msg []byte)) (*Transport, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if loop == nil || recv == nil {
		return nil, errors.New("osenv: NewTransport needs a loop and a recv func")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("osenv: transport %d: listen %q: %w", cfg.ID, cfg.Listen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg:    cfg,
		loop:   loop,
		recv:   recv,
		ln:     ln,
		ctx:    ctx,
		cancel: cancel,
		peers:  map[env.NodeID]*peer{},
		addrs:  map[env.NodeID]string{},
		conns:  map[net.Conn]struct{}{},
	}
	for id, a := range cfg.Peers {
		t.addrs[id] = a
	}
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

func (c *TransportConfig) fill() error {
	if c.ID == 0 {
		return errors.New("osenv: TransportConfig.ID must be non-zero")
	}
	for id := range c.Peers {
		if id == 0 {
			return errors.New("osenv: TransportConfig.Peers has node id 0")
		}
	}
	if c.MaxFrame < 0 || c.SendQueue < 0 || c.DialBackoffMin < 0 || c.DialBackoffMax < 0 || c.WriteTimeout < 0 {
		return errors.New("osenv: TransportConfig has a negative size or duration")
	}
	if uint64(c.MaxFrame) > math.MaxUint32 {
		return fmt.Errorf("osenv: TransportConfig.MaxFrame %d does not fit the uint32 frame length", c.MaxFrame)
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.DialBackoffMin == 0 {
		c.DialBackoffMin = DefaultDialBackoffMin
	}
	if c.DialBackoffMax == 0 {
		c.DialBackoffMax = DefaultDialBackoffMax
	}
	if c.DialBackoffMax < c.DialBackoffMin {
		c.DialBackoffMax = c.DialBackoffMin
	}
	if c.SendQueue == 0 {
		c.SendQueue = DefaultSendQueue
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	return nil
}

// Addr returns the address the transport listens on.
func (t *Transport) Addr() string { return t.ln.Addr().String() }

// ID returns this node's id.
func (t *Transport) ID() env.NodeID { return t.cfg.ID }

// Stats returns the transport's counters.
func (t *Transport) Stats() TransportStats {
	return TransportStats{
		Sent:        t.sent.Load(),
		Flushes:     t.flushes.Load(),
		SendDropped: t.sendDropped.Load(),
		Received:    t.received.Load(),
		RecvDropped: t.recvDropped.Load(),
		Dials:       t.dials.Load(),
		DialErrors:  t.dialErrors.Load(),
		ConnErrors:  t.connErrors.Load(),
	}
}

// SetPeer sets or changes the address of node id. If the address changed
// while connected, the current connection is closed and the writer redials
// at once.
func (t *Transport) SetPeer(id env.NodeID, addr string) {
	if id == 0 {
		panic("osenv: Transport.SetPeer with node id 0")
	}
	t.mu.Lock()
	old := t.addrs[id]
	t.addrs[id] = addr
	p := t.peers[id]
	t.mu.Unlock()
	if p == nil || old == addr {
		return
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
	p.mu.Lock()
	if p.conn != nil {
		p.conn.Close()
	}
	p.mu.Unlock()
}

func (t *Transport) addr(id env.NodeID) string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.addrs[id]
}

// Send implements env.Network. It never blocks: the message is queued for
// the peer's writer, or dropped when the queue is full, the peer has no
// address, the message exceeds MaxFrame, or the transport is closed. A
// message to this node itself is posted straight to the loop.
func (t *Transport) Send(to env.NodeID, msg []byte) {
	if t.closed.Load() {
		t.sendDropped.Add(1)
		return
	}
	if len(msg) > t.cfg.MaxFrame {
		t.sendDropped.Add(1)
		t.report(fmt.Errorf("osenv: transport %d: send %d bytes to %d: %w (%d)", t.cfg.ID, len(msg), to, ErrFrameTooLarge, t.cfg.MaxFrame))
		return
	}
	if to == t.cfg.ID {
		t.deliver(to, msg)
		return
	}
	p := t.peer(to)
	if p == nil {
		t.sendDropped.Add(1)
		return
	}
	select {
	case p.q <- msg:
	default:
		t.sendDropped.Add(1)
	}
}

// peer returns the writer for id, starting it on first use, or nil when id
// has no address.
func (t *Transport) peer(id env.NodeID) *peer {
	t.mu.RLock()
	p := t.peers[id]
	t.mu.RUnlock()
	if p != nil {
		return p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[id]; p != nil {
		return p
	}
	if t.addrs[id] == "" || t.closed.Load() {
		return nil
	}
	p = &peer{id: id, q: make(chan []byte, t.cfg.SendQueue), kick: make(chan struct{}, 1)}
	t.peers[id] = p
	t.wg.Add(1)
	go t.writer(p)
	return p
}

// deliver posts a received message to the loop, dropping it if the loop is
// backed up. A message still queued when the transport closes is not
// delivered.
func (t *Transport) deliver(from env.NodeID, msg []byte) {
	if t.loop.TryPost(func() {
		if !t.closed.Load() {
			t.recv(from, msg)
		}
	}) {
		return
	}
	t.recvDropped.Add(1)
}

func (t *Transport) report(err error) {
	if t.cfg.OnError != nil {
		t.cfg.OnError(err)
	}
}

// track registers an open connection so Close can cut it; it reports false
// (and closes conn) if the transport is already closed.
func (t *Transport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Transport) untrack(c net.Conn) {
	c.Close()
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// Close stops the listener, every connection and every goroutine of the
// transport, and waits for them. Messages not yet written are dropped, and
// received messages still queued on the loop are not delivered.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed.Swap(true) {
		t.mu.Unlock()
		return nil
	}
	conns := make([]net.Conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	t.cancel()
	err := t.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	t.wg.Wait()
	if err != nil {
		return fmt.Errorf("osenv: transport %d: close listener: %w", t.cfg.ID, err)
	}
	return nil
}

// ---- inbound ----

func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	backoff := time.Millisecond
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors or similar: wait a little and retry
			// rather than spin.
			t.report(fmt.Errorf("osenv: transport %d: accept: %w", t.cfg.ID, err))
			select {
			case <-time.After(backoff):
			case <-t.ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = time.Millisecond
		if !t.track(c) {
			continue
		}
		t.wg.Add(1)
		go t.reader(c)
	}
}

// reader reads one inbound connection until it breaks.
func (t *Transport) reader(c net.Conn) {
	defer t.wg.Done()
	defer t.untrack(c)
	from, err := t.readHandshake(c)
	if err != nil {
		t.connError(err)
		return
	}
	br := bufio.NewReaderSize(c, ioBufSize)
	var hdr [frameHdrLen]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err != io.EOF { // EOF between frames: the peer closed cleanly
				t.connError(fmt.Errorf("osenv: transport %d: read from %d: %w", t.cfg.ID, from, err))
			}
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if uint64(n) > uint64(t.cfg.MaxFrame) {
			t.connError(fmt.Errorf("osenv: transport %d: frame of %d bytes from %d: %w (%d); closing connection",
				t.cfg.ID, n, from, ErrFrameTooLarge, t.cfg.MaxFrame))
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(br, msg); err != nil {
			t.connError(fmt.Errorf("osenv: transport %d: read %d-byte frame from %d: %w", t.cfg.ID, n, from, err))
			return
		}
		t.received.Add(1)
		t.deliver(from, msg)
	}
}

func (t *Transport) readHandshake(c net.Conn) (env.NodeID, error) {
	var hs [handshakeLen]byte
	c.SetReadDeadline(time.Now().Add(handshakeWait))
	if _, err := io.ReadFull(c, hs[:]); err != nil {
		return 0, fmt.Errorf("osenv: transport %d: %w: reading from %s: %w", t.cfg.ID, ErrHandshake, c.RemoteAddr(), err)
	}
	c.SetReadDeadline(time.Time{})
	magic := binary.BigEndian.Uint32(hs[0:4])
	from := binary.BigEndian.Uint64(hs[4:12])
	to := binary.BigEndian.Uint64(hs[12:20])
	switch {
	case magic != wireMagic:
		return 0, fmt.Errorf("osenv: transport %d: %w: magic %#x from %s", t.cfg.ID, ErrHandshake, magic, c.RemoteAddr())
	case from == 0:
		return 0, fmt.Errorf("osenv: transport %d: %w: sender id 0 from %s", t.cfg.ID, ErrHandshake, c.RemoteAddr())
	case to != t.cfg.ID:
		return 0, fmt.Errorf("osenv: transport %d: %w: node %d addressed node %d", t.cfg.ID, ErrHandshake, from, to)
	}
	return from, nil
}

func (t *Transport) connError(err error) {
	if t.closed.Load() {
		return // errors caused by Close are expected
	}
	t.connErrors.Add(1)
	t.report(err)
}

// ---- outbound ----

// writer owns the outbound connection to one peer: dial, pump the queue,
// and on failure redial with exponential backoff.
func (t *Transport) writer(p *peer) {
	defer t.wg.Done()
	backoff := t.cfg.DialBackoffMin
	for !t.closed.Load() {
		addr := t.addr(p.id)
		var c net.Conn
		var err error
		if addr == "" {
			err = fmt.Errorf("osenv: transport %d: dial %d: %w", t.cfg.ID, p.id, ErrUnknownPeer)
		} else {
			d := net.Dialer{Timeout: max(t.cfg.DialBackoffMax, time.Second)}
			c, err = d.DialContext(t.ctx, "tcp", addr)
			if err != nil {
				err = fmt.Errorf("osenv: transport %d: dial %d at %s: %w", t.cfg.ID, p.id, addr, err)
			}
		}
		if err != nil {
			if t.closed.Load() {
				return
			}
			t.dialErrors.Add(1)
			t.report(err)
			if !t.wait(p, backoff) {
				return
			}
			backoff = min(2*backoff, t.cfg.DialBackoffMax)
			continue
		}
		if !t.track(c) {
			return
		}
		t.dials.Add(1)
		began := time.Now()
		err = t.pump(p, c)
		t.untrack(c)
		if t.closed.Load() {
			return
		}
		t.connError(err)
		// A connection that lasted resets the backoff; one that broke
		// at once (a peer that accepts and drops) keeps growing it.
		if time.Since(began) >= t.cfg.DialBackoffMax {
			backoff = t.cfg.DialBackoffMin
		}
		if !t.wait(p, backoff) {
			return
		}
		backoff = min(2*backoff, t.cfg.DialBackoffMax)
	}
}

// wait sleeps for d, cut short by an address change; it reports false if
// the transport closed.
func (t *Transport) wait(p *peer, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-p.kick:
	case <-t.ctx.Done():
		return false
	}
	return true
}

var errPeerClosed = errors.New("peer closed the connection")

// pump writes the handshake and then queued messages to c until a write
// fails, the peer closes c, or the transport closes.
func (t *Transport) pump(p *peer, c net.Conn) error {
	p.mu.Lock()
	p.conn = c
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.conn = nil
		p.mu.Unlock()
	}()

	// The peer never writes on this connection, so a read returns only
	// when it closes or the connection breaks. Watching for that lets an
	// idle writer redial at once instead of losing the next message to a
	// dead connection.
	dead := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var b [1]byte
		c.Read(b[:])
		close(dead)
	}()
	defer func() {
		c.Close()
		<-watched
	}()

	bw := bufio.NewWriterSize(c, ioBufSize)
	var hs [handshakeLen]byte
	binary.BigEndian.PutUint32(hs[0:4], wireMagic)
	binary.BigEndian.PutUint64(hs[4:12], t.cfg.ID)
	binary.BigEndian.PutUint64(hs[12:20], p.id)
	c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
	bw.Write(hs[:])
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("osenv: transport %d: handshake to %d: %w", t.cfg.ID, p.id, err)
	}
	var hdr [frameHdrLen]byte
	for {
		var msg []byte
		select {
		case msg = <-p.q:
		case <-dead:
			return fmt.Errorf("osenv: transport %d: to %d: %w", t.cfg.ID, p.id, errPeerClosed)
		case <-t.ctx.Done():
			return nil
		}
		c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
		for i := 0; ; i++ {
			binary.BigEndian.PutUint32(hdr[:], uint32(len(msg)))
			bw.Write(hdr[:])
			if _, err := bw.Write(msg); err != nil {
				// bufio.Writer keeps its first error, so checking the
				// last write of a frame covers the header too.
				return fmt.Errorf("osenv: transport %d: write to %d: %w", t.cfg.ID, p.id, err)
			}
			t.sent.Add(1)
			if i+1 >= maxBatchFlush {
				break
			}
			select {
			case msg = <-p.q:
				continue
			default:
			}
			break
		}
		t.flushes.Add(1)
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("osenv: transport %d: write to %d: %w", t.cfg.ID, p.id, err)
		}
	}
}
