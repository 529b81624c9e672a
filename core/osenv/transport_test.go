package osenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"walraft/core/env"
)

// tnode is a transport with its own loop that records what it receives.
type tnode struct {
	id      env.NodeID
	loop    *Loop
	tr      *Transport
	n       atomic.Int64 // messages received
	offLoop atomic.Int64 // recv calls off the loop goroutine
	got     map[env.NodeID][]string
	errs    chan error
}

func startNode(t *testing.T, cfg TransportConfig) *tnode {
	t.Helper()
	nd := &tnode{id: cfg.ID, loop: NewLoop(), got: map[env.NodeID][]string{}, errs: make(chan error, 100)}
	cfg.OnError = func(err error) {
		select {
		case nd.errs <- err:
		default:
		}
	}
	tr, err := NewTransport(cfg, nd.loop, func(from env.NodeID, msg []byte) {
		if !nd.loop.onLoop() {
			nd.offLoop.Add(1)
		}
		nd.got[from] = append(nd.got[from], string(msg))
		nd.n.Add(1)
	})
	if err != nil {
		nd.loop.Close()
		t.Fatal(err)
	}
	nd.tr = tr
	return nd
}

func (nd *tnode) stop() {
	nd.tr.Close()
	nd.loop.Close()
}

func (nd *tnode) received(from env.NodeID) []string {
	var out []string
	nd.loop.Do(func() { out = append(out, nd.got[from]...) })
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checkNoLeak waits for the goroutine count to fall back to base.
func checkNoLeak(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left, %d before the test:\n%s", runtime.NumGoroutine(), base, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTransportThreeNodes(t *testing.T) {
	base := runtime.NumGoroutine()
	nodes := make([]*tnode, 3)
	for i := range nodes {
		nodes[i] = startNode(t, TransportConfig{ID: env.NodeID(i + 1), Listen: "127.0.0.1:0"})
	}
	for _, a := range nodes { // addresses are known only once every listener is up
		for _, b := range nodes {
			if a != b {
				a.tr.SetPeer(b.id, b.tr.Addr())
			}
		}
	}
	const per = 500
	for _, a := range nodes {
		a.loop.Do(func() {
			for k := range per {
				for _, b := range nodes {
					if a != b {
						a.tr.Send(b.id, fmt.Appendf(nil, "%d->%d #%d", a.id, b.id, k))
					}
				}
			}
			a.tr.Send(a.id, []byte("self")) // to itself: straight onto its loop
		})
	}
	for _, b := range nodes {
		waitFor(t, fmt.Sprintf("node %d to receive %d messages", b.id, 2*per+1), func() bool {
			return b.n.Load() == 2*per+1
		})
	}
	for _, b := range nodes {
		if n := b.offLoop.Load(); n != 0 {
			t.Fatalf("node %d: %d recv calls off the loop", b.id, n)
		}
		if got := b.received(b.id); len(got) != 1 || got[0] != "self" {
			t.Fatalf("node %d: self-send delivered %q", b.id, got)
		}
		for _, a := range nodes {
			if a == b {
				continue
			}
			got := b.received(a.id)
			if len(got) != per {
				t.Fatalf("node %d got %d messages from %d, want %d", b.id, len(got), a.id, per)
			}
			for k, m := range got { // one connection per direction: TCP keeps order
				if want := fmt.Sprintf("%d->%d #%d", a.id, b.id, k); m != want {
					t.Fatalf("node %d: message %d from %d is %q, want %q", b.id, k, a.id, m, want)
				}
			}
		}
	}
	for _, nd := range nodes {
		s := nd.tr.Stats()
		// Each flush writes at least one message.
		if s.Sent != 2*per || s.Received != 2*per || s.SendDropped != 0 || s.RecvDropped != 0 || s.Flushes == 0 || s.Flushes > s.Sent {
			t.Fatalf("node %d stats %+v", nd.id, s)
		}
	}
	for _, nd := range nodes {
		nd.stop()
	}
	// After Close everything is dropped, and Close is idempotent.
	nodes[0].tr.Send(2, []byte("late"))
	if s := nodes[0].tr.Stats(); s.SendDropped != 1 {
		t.Fatalf("Send after Close: SendDropped = %d, want 1", s.SendDropped)
	}
	if err := nodes[0].tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checkNoLeak(t, base)
}

func TestTransportFrameTooLarge(t *testing.T) {
	base := runtime.NumGoroutine()
	const maxFrame = 1 << 20
	b := startNode(t, TransportConfig{ID: 2, MaxFrame: maxFrame})
	defer b.stop()

	handshake := func(from, to uint64) []byte {
		var hs [handshakeLen]byte
		binary.BigEndian.PutUint32(hs[0:4], wireMagic)
		binary.BigEndian.PutUint64(hs[4:12], from)
		binary.BigEndian.PutUint64(hs[12:20], to)
		return hs[:]
	}
	// expectClosed writes raw bytes and expects the receiver to hang up
	// with an error wrapping want.
	expectClosed := func(raw []byte, want error) {
		t.Helper()
		c, err := net.Dial("tcp", b.tr.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(raw); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("receiver wrote to a one-way connection")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("receiver did not close the connection")
		}
		select {
		case err := <-b.errs:
			if !errors.Is(err, want) {
				t.Fatalf("reported error %v, want %v", err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no error reported, want %v", want)
		}
	}

	// A frame header claiming 1 GiB: refused from the header alone.
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	hdr := binary.BigEndian.AppendUint32(nil, 1<<30)
	expectClosed(append(handshake(7, 2), hdr...), ErrFrameTooLarge)
	runtime.ReadMemStats(&ms1)
	if d := ms1.TotalAlloc - ms0.TotalAlloc; d > 64<<20 {
		t.Fatalf("rejecting a 1 GiB frame allocated %d bytes", d)
	}

	expectClosed(handshake(7, 3), ErrHandshake)                    // addressed to another node
	expectClosed(handshake(0, 2), ErrHandshake)                    // sender id 0
	expectClosed([]byte("GET / HTTP/1.1\r\n\r\n.."), ErrHandshake) // not a walraft peer

	// A frame of exactly MaxFrame is fine.
	a := startNode(t, TransportConfig{ID: 1, MaxFrame: maxFrame, Peers: map[env.NodeID]string{2: b.tr.Addr()}})
	a.tr.Send(2, make([]byte, maxFrame))
	a.tr.Send(2, make([]byte, maxFrame+1)) // too large to send: dropped at Send
	waitFor(t, "the MaxFrame-sized message", func() bool { return b.n.Load() == 1 })
	if s := a.tr.Stats(); s.SendDropped != 1 {
		t.Fatalf("oversized Send: SendDropped = %d, want 1", s.SendDropped)
	}
	select {
	case err := <-a.errs:
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("oversized Send reported %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("oversized Send reported no error")
	}
	if s := b.tr.Stats(); s.ConnErrors != 4 {
		t.Fatalf("receiver ConnErrors = %d, want 4", s.ConnErrors)
	}
	a.stop()
	b.stop()
	checkNoLeak(t, base)
}

// TestTransportReconnect kills a peer (listener and connections), restarts
// it on the same port, then moves it to another port: the sender redials
// with backoff and delivery resumes each time.
func TestTransportReconnect(t *testing.T) {
	base := runtime.NumGoroutine()
	cfgB := TransportConfig{ID: 2, Listen: "127.0.0.1:0"}
	b := startNode(t, cfgB)
	addr := b.tr.Addr()
	a := startNode(t, TransportConfig{
		ID: 1, Peers: map[env.NodeID]string{2: addr},
		DialBackoffMin: 2 * time.Millisecond, DialBackoffMax: 40 * time.Millisecond,
	})
	// sendUntil keeps sending (the network may drop) until to has a
	// message from a.
	sendUntil := func(to *tnode, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for i := 0; to.n.Load() == 0; i++ {
			if time.Now().After(deadline) {
				t.Fatalf("no delivery %s; sender stats %+v", what, a.tr.Stats())
			}
			a.loop.Do(func() { a.tr.Send(2, fmt.Appendf(nil, "%s %d", what, i)) })
			time.Sleep(3 * time.Millisecond)
		}
	}
	sendUntil(b, "before the restart")
	b.stop()
	time.Sleep(50 * time.Millisecond) // a's redials are refused meanwhile

	cfgB.Listen = addr
	probe := NewLoop()
	waitFor(t, "the old port to be free", func() bool {
		tr, err := NewTransport(cfgB, probe, func(env.NodeID, []byte) {})
		if err != nil {
			return false
		}
		tr.Close()
		return true
	})
	probe.Close()
	b2 := startNode(t, cfgB)
	sendUntil(b2, "after the restart on the same port")
	s := a.tr.Stats()
	if s.Dials < 2 || s.DialErrors < 1 {
		t.Fatalf("sender stats %+v: want a redial after refused dials", s)
	}
	b2.stop()

	b3 := startNode(t, TransportConfig{ID: 2, Listen: "127.0.0.1:0"})
	a.tr.SetPeer(2, b3.tr.Addr())
	sendUntil(b3, "after moving to a new port")
	a.stop()
	b3.stop()
	checkNoLeak(t, base)
}

func TestTransportDropsWithoutPeerOrRoom(t *testing.T) {
	base := runtime.NumGoroutine()
	// A peer that accepts but never reads: the writer blocks once the
	// socket buffers fill, then the bounded queue fills and Send drops.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	a := startNode(t, TransportConfig{ID: 1, SendQueue: 8, Peers: map[env.NodeID]string{2: ln.Addr().String()}})
	a.tr.Send(3, []byte("nobody")) // no address
	if s := a.tr.Stats(); s.SendDropped != 1 {
		t.Fatalf("Send to a peer with no address: SendDropped = %d, want 1", s.SendDropped)
	}
	msg := make([]byte, 64<<10)
	// Send until the writer is stuck in a blocked write: Sent stops
	// growing while the queue overflows.
	deadline := time.Now().Add(10 * time.Second)
	for last, still := uint64(0), 0; still < 20; {
		if time.Now().After(deadline) {
			t.Fatalf("writer never got stuck: %+v", a.tr.Stats())
		}
		for range 50 {
			a.tr.Send(2, msg)
		}
		time.Sleep(time.Millisecond)
		if s := a.tr.Stats().Sent; s == last && s > 0 {
			still++
		} else {
			last, still = s, 0
		}
	}
	s := a.tr.Stats()
	if s.SendDropped < 2 {
		t.Fatalf("stats %+v: want sends to a stuck peer dropped once its queue is full", s)
	}
	// Close must not hang on the writer stuck in a blocked write.
	closed := make(chan struct{})
	go func() { a.stop(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung on a stuck peer")
	}
	ln.Close()
	mu.Lock()
	for _, c := range held {
		c.Close()
	}
	mu.Unlock()
	checkNoLeak(t, base)
}

func TestTransportConfigErrors(t *testing.T) {
	l := NewLoop()
	defer l.Close()
	recv := func(env.NodeID, []byte) {}
	for _, cfg := range []TransportConfig{
		{ID: 0},
		{ID: 1, Peers: map[env.NodeID]string{0: "127.0.0.1:1"}},
		{ID: 1, MaxFrame: -1},
		{ID: 1, MaxFrame: 1 << 33},
		{ID: 1, Listen: "not an address"},
	} {
		if tr, err := NewTransport(cfg, l, recv); err == nil {
			tr.Close()
			t.Fatalf("NewTransport(%+v) succeeded", cfg)
		}
	}
}
