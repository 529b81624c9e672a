package sim

import (
	"fmt"
	"strings"
)

// Disk events and the crash-point hook.
//
// Every operation a process makes on its disk, and every sync completion, is
// a disk event. The disk numbers them 1, 2, 3, ... over its whole life
// (across the process's incarnations) and, when a hook is set, calls it
// right after each event took effect. A crash-point sweep (scenarios) counts
// a run's events in a dry run and then re-runs it once per event k with a
// hook that crashes the process at event k: the disk then holds exactly
// the state of that instant (what was durable, plus at a torn crash a
// seeded subset of what was not), and nothing the process does after the
// event has any effect (its later disk calls fail with env.ErrClosed, its
// messages, timers and trace events are dropped by the epoch checks).
//
// Counting draws no randomness, schedules nothing and traces nothing, so a
// run with a hook that never fires is the run without one.

// DiskEvent is the kind of a disk event.
type DiskEvent uint8

// The disk events, in the order of DiskEventKinds.
const (
	// DiskEventWrite: File.Write appended (also a write that failed with
	// an injected EIO after its partial append).
	DiskEventWrite DiskEvent = iota + 1
	// DiskEventTruncate: File.Truncate shrank the volatile image.
	DiskEventTruncate
	// DiskEventSync: File.Sync was issued (its snapshot taken).
	DiskEventSync
	// DiskEventSyncDone: a File.Sync completed on the disk (its data is
	// durable, or it failed), before the process hears of it.
	DiskEventSyncDone
	// DiskEventCreate: FS.Create added a name to the volatile namespace.
	DiskEventCreate
	// DiskEventRemove: FS.Remove took a name out of the volatile namespace.
	DiskEventRemove
	// DiskEventSyncDir: FS.SyncDir was issued.
	DiskEventSyncDir
	// DiskEventSyncDirDone: an FS.SyncDir completed (the namespace is
	// durable, or it failed), before the process hears of it.
	DiskEventSyncDirDone
)

// DiskEventKinds lists every kind, for reports.
var DiskEventKinds = []DiskEvent{DiskEventWrite, DiskEventTruncate, DiskEventSync, DiskEventSyncDone,
	DiskEventCreate, DiskEventRemove, DiskEventSyncDir, DiskEventSyncDirDone}

// String names the kind as reports and case files show it.
func (k DiskEvent) String() string {
	switch k {
	case DiskEventWrite:
		return "write"
	case DiskEventTruncate:
		return "truncate"
	case DiskEventSync:
		return "sync"
	case DiskEventSyncDone:
		return "sync.done"
	case DiskEventCreate:
		return "create"
	case DiskEventRemove:
		return "remove"
	case DiskEventSyncDir:
		return "syncdir"
	case DiskEventSyncDirDone:
		return "syncdir.done"
	}
	return fmt.Sprintf("DiskEvent(%d)", uint8(k))
}

// ParseDiskEvent returns the kind String names.
func ParseDiskEvent(s string) (DiskEvent, error) {
	for _, k := range DiskEventKinds {
		if k.String() == s {
			return k, nil
		}
	}
	names := make([]string, len(DiskEventKinds))
	for i, k := range DiskEventKinds {
		names[i] = k.String()
	}
	return 0, fmt.Errorf("unknown disk event kind %q (known: %s)", s, strings.Join(names, ", "))
}

// DiskEventHook is called right after disk event number n (1-based, over
// the disk's life) of kind k took effect. It may crash the disk's process
// (World.Crash): the operation that caused the event then returns to a
// process that no longer exists.
type DiskEventHook func(n uint64, k DiskEvent)

// SetEventHook sets the hook called at every disk event (nil removes it).
func (d *Disk) SetEventHook(fn DiskEventHook) { d.hook = fn }

// Events returns how many disk events the disk has had.
func (d *Disk) Events() uint64 { return d.events }

// event counts one disk event and calls the hook. Callers call it last,
// once the event's effect is complete, because the hook may crash the
// disk.
func (d *Disk) event(k DiskEvent) {
	d.events++
	if d.hook != nil {
		d.hook(d.events, k)
	}
}
