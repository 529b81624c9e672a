package osenv

import (
	"errors"
	"sync"
	"time"

	"walraft/core/env"
)

// SyncGate holds the fsyncs of an FS for a while: a hung disk on demand,
// for failure drills on the real runtime (walraft bench
// -stall-leader-disk-after). While the gate is held, every fsync worker of
// the FS (file syncs and directory syncs) blocks before its fsync system
// call, exactly as a thread blocks in a hung fsync(2); the node's loop keeps
// running, and the completions arrive, in order, once the gate opens. The
// zero value is an open gate; it is safe for concurrent use.
type SyncGate struct {
	mu    sync.Mutex
	until time.Time
	held  int // workers blocked now
}

// Hold makes fsyncs wait until d from now (extending, never shortening, a
// hold in force). d <= 0 does nothing.
func (g *SyncGate) Hold(d time.Duration) {
	if d <= 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if u := time.Now().Add(d); u.After(g.until) {
		g.until = u
	}
}

// Blocked returns how many fsync workers are waiting at the gate now.
func (g *SyncGate) Blocked() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held
}

// wait blocks the calling fsync worker until the gate is open.
func (g *SyncGate) wait() {
	if g == nil {
		return
	}
	g.mu.Lock()
	counted := false
	for {
		d := time.Until(g.until)
		if d <= 0 {
			break
		}
		if !counted {
			g.held++
			counted = true
		}
		g.mu.Unlock()
		time.Sleep(d)
		g.mu.Lock()
	}
	if counted {
		g.held--
	}
	g.mu.Unlock()
}

// NewFSWithGate is NewFS whose fsyncs pass through gate first (nil: no
// gate, the same as NewFS).
func NewFSWithGate(dir string, loop *Loop, gate *SyncGate) (env.FS, error) {
	fs, err := NewFS(dir, loop)
	if err != nil {
		return nil, err
	}
	o, ok := fs.(*osFS)
	if !ok {
		return nil, errors.New("osenv: NewFS returned an unexpected type")
	}
	o.gate = gate
	return o, nil
}
