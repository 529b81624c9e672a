// Package sim is walraft's deterministic simulator: one event queue in
// virtual time drives every node's clock, disk, network and process
// lifecycle, and every source of randomness is a named stream derived from
// one seed, so a seed replays exactly.
//
// # Pieces
//
//   - Scheduler (sched.go): the single event queue, ordered by (virtual
//     time, sequence number).
//   - Streams and Rand (rand.go): named random streams ("net", "disk/<id>",
//     "node/<id>", "clock/<id>", "crypto", ...), so adding a consumer of
//     randomness never shifts the draws of another.
//   - NodeClock (clock.go): a node's clock, derived from global virtual time
//     with a per-node rate skew and epoch offset.
//   - Disk (disk.go): a node's disk with volatile and durable images, sync
//     latency, stalls, EIO and torn crashes. It survives process crashes.
//   - Process (proc.go): one node's lifecycle (up, paused, down), its
//     incarnations and its event loop.
//   - Net (net.go): latency, jitter, loss, duplication, reordering and
//     partitions between processes.
//   - Trace (trace.go): a running hash over every event, optionally the
//     events themselves, to prove that a seed replays.
//   - InstallCryptoRand (cryptorand.go): replaces crypto/rand.Reader, which
//     etcd raft draws election timeouts from, with a seeded stream.
//   - World (world.go): ties the pieces together for one simulation.
//
// # Event loops
//
// Every callback a node registers (a timer, a disk completion) and every
// input it receives (a network message, work the harness posts) runs as a
// separate scheduler event through its process's event loop, which enforces
// the lifecycle rules in one place: an event that belongs to an incarnation
// that has since crashed is dropped; an event for a paused process is held,
// in order, and runs after Resume.
//
// # The world's trace events
//
// Besides the nodes' own events, the world traces its own (Node is the
// process's id for proc.* and clock.* events, 0 for net.* events):
//
//	proc.boot         A=incarnation
//	proc.boot_error   A=incarnation
//	proc.crash        A=incarnation B=held events dropped
//	proc.kill         A=incarnation B=held events dropped (page cache kept)
//	proc.pause        A=incarnation
//	proc.resume       A=incarnation B=held events to run
//	proc.restart_skip A=incarnation (a RestartAfter found the node up)
//	clock.rate        A=new rate in ppm
//	net.partition     A=cut links, Text=groups ("1,2|3,4,5")
//	net.bridge        A=cut links B=bridge node, Text=the two groups
//	net.cut           A=from B=to
//	net.isolate       A=node
//	net.heal
//	net.deliver       A=from B=to C=bytes D=message id
//	net.drop          A=from B=to C=DropReason D=bytes
//	net.dup           A=from B=to C=bytes
//
// # One simulation per process
//
// The simulator has no goroutines and no global state except the
// crypto/rand hook: a World installs it in Start and restores it in Close,
// and only one World may be started at a time in an OS process. Campaigns
// that want parallelism run worker processes.
package sim
