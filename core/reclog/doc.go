// Package reclog is walraft's record log: a framed, checksummed, segmented
// log of opaque records on an env.FS, shared by the partition WAL
// (core/wal) and the Raft log (core/raftlog).
//
// Records are numbered 0, 1, 2, ... (their seq). Append writes a record to
// the volatile image; Sync makes everything appended before it durable;
// Truncate drops a suffix durably; Open recovers the log after a crash. Like
// the rest of the core, a Log is a single-threaded, sans-I/O state machine:
// completions arrive as callbacks on the owner's event loop.
//
// # Files
//
// A log lives in segment files named dir + "/" + 20-digit decimal segment id
// + ".seg" (ids increase, so names sort in log order). Other names under dir
// are ignored. The last segment is the active one; Append rotates to a new
// segment when the record would push the active one past
// Options.SegmentBytes (a record is never split across segments, so a
// record larger than SegmentBytes gets a segment of its own).
//
// # Byte format (version 1, integers little-endian)
//
// Every segment starts with a 40-byte header:
//
//	[0:4)   magic "WRLG"
//	[4]     format version (1)
//	[5:8)   zero
//	[8:16)  segment id (equals the id in the file name)
//	[16:24) base seq: seq of the segment's first record
//	[24:32) base position: log position of the segment's byte 0
//	[32:36) block size (4096)
//	[36:40) CRC32C (Castagnoli) of bytes [0:36)
//
// The log position of a byte is its segment's base position plus its offset
// in the file: positions grow through the log without gaps (the next
// segment's base is the previous base plus the previous segment's size).
//
// The rest of a segment is a sequence of chunks. A file is divided into
// 4096-byte blocks, and a chunk never crosses a block boundary: when fewer
// than 28 bytes remain in a block, the writer pads them with zeros. A record
// is stored as one FULL chunk, or as FIRST, MIDDLE..., LAST chunks
// (consecutive, in one segment) when it does not fit in the rest of the
// block. A chunk is a 28-byte header followed by its data:
//
//	[0:4)   CRC32C of header bytes [4:28)
//	[4:8)   CRC32C of the data
//	[8:10)  data length (at most 4068)
//	[10]    type: 1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST
//	[11]    format version (1)
//	[12:20) seq of the record the chunk belongs to
//	[20:28) durable mark (see below)
//
// The header has its own checksum so that a header that verifies can be
// trusted (its length locates the next chunk) even when its data does not.
//
// # Torn writes versus corruption
//
// A crash may persist any subset of the bytes written since the last
// completed sync, in any order (the simulator keeps a seeded subset of the
// unsynced 512-byte blocks and zero-fills the gaps). Such a torn tail must
// be cut off silently; damage to bytes that a completed Sync had made
// durable must be reported. The two look alike locally: a chunk whose
// checksum fails. What tells them apart is the durable mark.
//
// Every chunk carries, as its durable mark, the log position up to which
// the log was known durable (a Sync or a truncation had completed) when the
// chunk was written. A valid chunk with mark m therefore proves that every
// byte before position m had been made durable. Recovery reads the segments
// in order and verifies every chunk, its seq and the chunk type sequence,
// and each segment header and its continuity with the previous segment. At
// the first bad spot, at position p, it searches everything after it for a
// valid chunk whose mark is greater than p:
//
//   - found: p was durable before it went bad. Open fails with ErrCorrupt
//     naming the segment file and byte offset of the bad spot (and the chunk
//     that proves it was synced). It never skips the bad record to continue
//     with later data.
//   - not found: p may never have been synced, so it is treated as a torn
//     tail. The log keeps the records before the incomplete record and
//     drops the rest: later segments are removed and the segment is
//     truncated. Nothing past p is ever read again.
//
// The search must find genuine chunk headers only, never bytes inside a
// payload that happen to look like one (a client may put anything in a
// record). It therefore starts only where a header is known to be: right
// after the bad chunk if that chunk's header verified (only its data is
// bad), at every block boundary (a block always starts with a header
// written by this package), and after each segment header; and from there
// it follows lengths of verified headers only. It never tries arbitrary
// offsets. A verified header is proof enough: its mark is what the writer
// knew, whether or not the chunk's data survived.
//
// The mark is conservative: after Open it is the largest mark recovered
// until the first sync of the recovered data completes; after a truncation
// it is the truncation point. An understated mark can only make recovery
// call real corruption a torn tail, never the reverse. The one blind spot is
// inherent: corruption inside the last synced records, with no chunk written
// after that sync completed, looks exactly like a torn tail and is cut. A
// narrower one comes from the search rules: when the damage hits a chunk
// header, chunks later in the same block cannot be located, so only later
// blocks and segments can prove it.
//
// # Durability rules followed
//
//   - A record is durable once its segment's file sync completed and, for a
//     segment created since the last directory sync, an FS.SyncDir
//     completed too; Sync waits for both.
//   - A truncation (Truncate, or the cut of a torn tail found by Open) is
//     made durable before any record is written over it: removal of later
//     segments plus SyncDir first, then the file shrink plus file sync;
//     appends issued meanwhile are held in memory and written afterwards.
//     Removing first means a crash can never keep a shorter segment next to
//     later segments whose chunks claim durability past its new end.
//   - Open holds appends until its first sync (or cut) completed: after a
//     process restart with the machine up, the page cache it read may hold
//     a truncation of the previous process that is not durable yet, and
//     nothing may be written over it before it is.
//   - A failed write, sync or dir sync makes the log fail-stop: Err returns
//     an error wrapping ErrFailed and every later Append, Sync or Truncate
//     fails, until the log is reopened (which recovers the durable state).
//     A failed fsync is never retried as if it proved anything.
//
// # Bounds
//
// Recovery reads one block at a time and allocates nothing from a length
// field: a chunk's length is at most a block, and a record's total length is
// checked against Options.MaxRecordBytes as its chunks are read. The
// in-memory index costs 4 bytes per record (the record's offset in its
// segment).
package reclog
