// Package env defines the world a walraft node runs in: its clock and timers,
// its disk, its network, its randomness and its tracer.
//
// The core (everything under core/ except core/osenv) is sans-I/O: it never
// starts goroutines, blocks, reads the wall clock, draws global randomness or
// touches the operating system. Everything it needs from the outside arrives
// through an Env passed in explicitly, and everything that completes later
// (a timer, an fsync, a network message) comes back as a callback that the
// driver runs as a separate event on the node's single event loop.
//
// Two drivers implement these interfaces: package sim (virtual time, a
// simulated disk and network, one event queue for the whole cluster) and
// package core/osenv (real files with fsync, the wall clock, TCP on
// loopback, one goroutine per node).
//
// # Callback rules
//
// Every callback handed to an env (Clock.AfterFunc, File.Sync, FS.SyncDir) is
// run later, never synchronously inside the call that registered it, and
// always on the node's event loop, one at a time. A callback registered by a
// process that has since crashed is never run. These rules let core
// components be plain single-threaded state machines with no re-entrancy.
package env

import (
	"errors"
	"time"
)

// NodeID names a node. IDs are non-zero (etcd raft's rule).
type NodeID = uint64

// Env bundles a node's world. All fields are required.
type Env struct {
	Clock  Clock
	FS     FS
	Net    Network
	Rand   Rand
	Tracer Tracer
}

// Validate reports a missing field.
func (e Env) Validate() error {
	switch {
	case e.Clock == nil:
		return errors.New("env: Clock is nil")
	case e.FS == nil:
		return errors.New("env: FS is nil")
	case e.Net == nil:
		return errors.New("env: Net is nil")
	case e.Rand == nil:
		return errors.New("env: Rand is nil")
	case e.Tracer == nil:
		return errors.New("env: Tracer is nil")
	}
	return nil
}

// Clock is a node's clock. Different nodes' clocks may run at different rates
// (the simulator skews them), so durations are measured on the local clock.
type Clock interface {
	// Now returns the time on this node's clock since an arbitrary epoch. It
	// never goes backward within one process incarnation.
	Now() time.Duration
	// AfterFunc runs f on the node's event loop once d has elapsed on this
	// node's clock. d <= 0 runs f as the next event (still not synchronously).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop cancels the timer. It reports whether the call stopped it before it
	// fired; after Stop returns true, f will never run.
	Stop() bool
}

// Errors a disk may return. Implementations wrap them with context; test with
// errors.Is.
var (
	// ErrIO is an injected or real I/O error (EIO) on write or sync.
	ErrIO = errors.New("i/o error")
	// ErrNoSpace is ENOSPC on write: the file system is full. It is not
	// ErrIO (errors.Is tells them apart); like ErrIO on write, the bytes
	// may be partly there and the caller must treat the file as failed.
	ErrNoSpace = errors.New("no space left on device")
	// ErrNotExist: the named file does not exist.
	ErrNotExist = errors.New("file does not exist")
	// ErrExist: Create on a name that already exists.
	ErrExist = errors.New("file already exists")
	// ErrClosed: the file was closed (or its process crashed).
	ErrClosed = errors.New("file already closed")
)

// FS is a node's disk: one flat namespace of files (names may contain '/',
// which carries no meaning to the FS; it orders listings).
//
// Durability model, the same for the simulator and the OS: bytes written with
// File.Write and size changes from File.Truncate are volatile until a later
// File.Sync completes without error. The existence of a file created by
// Create, and the removal of a file by Remove, are volatile until a later
// SyncDir completes without error. A crash keeps the durable image and, on a
// simulated disk, possibly an arbitrary subset of the volatile changes.
type FS interface {
	// Create makes a new empty file open for reading and appending. It fails
	// with ErrExist if the name exists.
	Create(name string) (File, error)
	// Open opens an existing file for reading and appending. It fails with
	// ErrNotExist if the name does not exist.
	Open(name string) (File, error)
	// List returns every file name that starts with prefix, sorted.
	List(prefix string) ([]string, error)
	// Remove deletes a file. Open handles to it become invalid.
	Remove(name string) error
	// SyncDir makes the namespace (creations and removals so far) durable and
	// then calls done with the result.
	SyncDir(done func(error))
}

// File is an open file. Writes append at the end.
type File interface {
	// Name returns the name the file was opened with.
	Name() string
	// Size returns the current (volatile) size.
	Size() int64
	// ReadAt reads len(p) bytes at off from the volatile image; like
	// io.ReaderAt it returns io.EOF when fewer bytes exist. Any other error
	// (ErrIO) is a failed read: nothing may be concluded about the data.
	ReadAt(p []byte, off int64) (int, error)
	// Write appends p to the volatile image. An error (ErrIO, ErrNoSpace)
	// means the bytes may or may not be there: the caller must treat the
	// file as failed.
	Write(p []byte) (int, error)
	// WriteAt overwrites len(p) bytes at off, inside the file: off+len(p)
	// must not exceed Size (it never extends the file; appends go through
	// Write). As with Write, an error (ErrIO) means any part of p may or
	// may not be there. Recovery uses it to write bytes it read back again,
	// unchanged, so that they are dirty and the next Sync writes them: a
	// page an earlier process's failed fsync left clean would otherwise
	// never reach the disk (reclog's recovery).
	WriteAt(p []byte, off int64) (int, error)
	// Truncate shrinks the file to size (volatile until Sync).
	Truncate(size int64) error
	// Sync makes every write and truncate issued before the call durable,
	// then calls done with the result. Syncs on one file complete in the
	// order they were issued. An error means durability is unknown: nothing
	// written since the last successful sync may be assumed durable.
	Sync(done func(error))
	// Close releases the handle. Pending syncs still complete.
	Close() error
}

// Network sends opaque messages to other nodes. Delivery is unreliable: a
// message may be delayed, reordered, duplicated or dropped. The driver
// delivers a received message by calling the node's receive entry point on
// its event loop.
type Network interface {
	// Send queues msg for delivery to node to. The network owns msg after
	// the call; the caller must not modify it.
	Send(to NodeID, msg []byte)
}

// Rand is a node's source of randomness. The simulator seeds it from the run
// seed; the OS runtime seeds it from the wall clock.
type Rand interface {
	Uint64() uint64
}

// Event is one trace event. Kind is a short constant such as "wal.sync";
// A..D are small integers whose meaning is fixed per Kind (documented where
// the event is emitted); Text is optional stable text. Text must never hold
// proto %v output, pointer values, wall-clock times or other text that varies
// between runs or builds: the trace is hashed to prove determinism.
type Event struct {
	Kind       string
	A, B, C, D int64
	Text       string
}

// Tracer records a node's trace events. The driver stamps each event with
// the time and the node.
type Tracer interface {
	Trace(e Event)
}

// NopTracer discards every event.
type NopTracer struct{}

// Trace implements Tracer.
func (NopTracer) Trace(Event) {}
