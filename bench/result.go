package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is the outcome of one Run. Rates and latencies cover the measured
// window; Acked, Verified and Lost cover every request of the run, warmup
// included.
type Result struct {
	Mode       string  `json:"mode"`
	Nodes      int     `json:"nodes"`
	Acks       string  `json:"acks"` // "0", "1" or "all"
	Path       string  `json:"path"` // "batch", "legacy" or "pipelined"
	Producers  int     `json:"producers"`
	Size       int     `json:"size"`
	Partitions int     `json:"partitions"`
	Seconds    float64 `json:"seconds"` // length of the measured window

	MsgsPerSec float64 `json:"msgs_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"`
	// Latency of acknowledged requests, from Post to reply, in ms.
	Latency

	// Acked requests (warmup included); Verified of them were read back at
	// their offset, Lost were not. Verified+Lost == Acked.
	Acked    int64 `json:"acked"`
	Verified int64 `json:"verified"`
	Lost     int64 `json:"lost"`
	// LostSamples describes a few lost records.
	LostSamples []string `json:"lost_samples,omitempty"`
	// Failed requests ended in an error other than ErrNotLeader (each was
	// retried with a new record); Redirects counts ErrNotLeader answers.
	Failed    int64 `json:"failed"`
	Redirects int64 `json:"redirects"`

	// FsyncsPerSec counts File.Sync and SyncDir requests of every node per
	// second of the window (see CountingFS).
	FsyncsPerSec float64 `json:"fsyncs_per_sec"`
	// MeanBatch is the mean number of records per WAL batch the leader
	// fsynced in the window.
	MeanBatch float64 `json:"mean_batch"`

	// Stages breaks the leader's produce path down.
	Stages Stages `json:"stages"`
	// CriticalPath breaks the Raft part down further (Config.CriticalPath).
	CriticalPath *CriticalPath `json:"critical_path,omitempty"`
	// Cost is the process's CPU, system calls and allocations per message
	// of the window.
	Cost Cost `json:"cost"`

	// KilledLeader is the node killed by KillLeaderAfter (0: none);
	// NewLeader the node that led afterwards; AckedAfterKill the requests
	// acknowledged after the kill; FailoverMs the time from the kill to
	// the first of them.
	KilledLeader   uint64  `json:"killed_leader,omitempty"`
	NewLeader      uint64  `json:"new_leader,omitempty"`
	AckedAfterKill int64   `json:"acked_after_kill,omitempty"`
	FailoverMs     float64 `json:"failover_ms,omitempty"`

	// NoAckGapMs is the longest stretch of the measured window in which no
	// request was acknowledged, starting NoAckGapAtMs into the window.
	NoAckGapMs   float64 `json:"no_ack_gap_ms"`
	NoAckGapAtMs float64 `json:"no_ack_gap_at_ms"`
	// StalledLeader is the node whose fsyncs StallLeaderDiskAfter held (0:
	// none); AckedAfterStall the requests acknowledged after the stall
	// began, AckedByStalled those of them the stalled node acknowledged;
	// StallFailoverMs the time from the stall to the first acknowledgement
	// by another node.
	StalledLeader   uint64  `json:"stalled_leader,omitempty"`
	AckedAfterStall int64   `json:"acked_after_stall,omitempty"`
	AckedByStalled  int64   `json:"acked_by_stalled,omitempty"`
	StallFailoverMs float64 `json:"stall_failover_ms,omitempty"`

	// Ceiling holds the raw group-commit ceilings when Config.Ceiling was
	// set, and the run's ratios to them.
	Ceiling *CeilingReport `json:"ceiling,omitempty"`

	// Hist is the latency histogram of the window, in microseconds.
	Hist *hdrhistogram.Histogram `json:"-"`
}

// Stages breaks the leader's produce path down: means, in ms, over the
// batches of the measured window (zero where nothing was measured).
type Stages struct {
	// QueueMs: the oldest request of a WAL batch waits for the batch to be
	// cut (the previous fsync of that WAL to complete).
	QueueMs float64 `json:"queue_ms"`
	// WALMs: a batch is cut and written, then fsynced; acks=1 is answered
	// here.
	WALMs float64 `json:"wal_ms"`
	// RaftMs: a batch is proposed, then committed and applied on the
	// leader; acks=all is answered here (one partition only).
	RaftMs float64 `json:"raft_ms"`
	// WALFsyncMs and LogFsyncMs: File.Sync duration of WAL files and of
	// Raft log files, over every node.
	WALFsyncMs float64 `json:"wal_fsync_ms"`
	LogFsyncMs float64 `json:"log_fsync_ms"`
}

// CeilingReport is a Result's comparison with the ceilings.
type CeilingReport struct {
	CeilingResult
	// RatioOneFile, RatioQuorum and RatioWALThenQuorum are the run's msg/s
	// over the ceiling's.
	RatioOneFile       float64 `json:"ratio_one_file"`
	RatioQuorum        float64 `json:"ratio_quorum"`
	RatioWALThenQuorum float64 `json:"ratio_wal_then_quorum"`
}

func (r *Result) setCeiling(c CeilingResult) {
	rep := &CeilingReport{CeilingResult: c}
	if c.OneFile.MsgsPerSec > 0 {
		rep.RatioOneFile = r.MsgsPerSec / c.OneFile.MsgsPerSec
	}
	if c.Quorum.MsgsPerSec > 0 {
		rep.RatioQuorum = r.MsgsPerSec / c.Quorum.MsgsPerSec
	}
	if c.WALThenQuorum.MsgsPerSec > 0 {
		rep.RatioWALThenQuorum = r.MsgsPerSec / c.WALThenQuorum.MsgsPerSec
	}
	r.Ceiling = rep
}

// JSON returns the result as one JSON object.
func (r Result) JSON() ([]byte, error) {
	return json.Marshal(r)
}

// Print writes the result for people.
func (r Result) Print(w io.Writer) error {
	var b strings.Builder
	nodes := "1 node"
	if r.Nodes != 1 {
		nodes = fmt.Sprintf("%d nodes", r.Nodes)
	}
	fmt.Fprintf(&b, "walraft bench: %s, %s, acks=%s, path=%s, %d producers, %d B records, %d partition(s), %.1f s measured\n",
		r.Mode, nodes, r.Acks, r.Path, r.Producers, r.Size, r.Partitions, r.Seconds)
	fmt.Fprintf(&b, "  throughput  %s msg/s  %.1f MB/s\n", group(r.MsgsPerSec), r.MBPerSec)
	fmt.Fprintf(&b, "  latency     p50 %s ms  p99 %s ms  p99.9 %s ms  max %s ms\n",
		ms(r.P50Ms), ms(r.P99Ms), ms(r.P999Ms), ms(r.MaxMs))
	fmt.Fprintf(&b, "  disk        %s fsyncs/s (all nodes)  mean batch %.1f records\n", group(r.FsyncsPerSec), r.MeanBatch)
	st := r.Stages
	fmt.Fprintf(&b, "  stages      queue %s ms  WAL write+fsync %s ms  Raft propose->apply %s ms  (fsync: WAL %s ms, Raft log %s ms)\n",
		ms(st.QueueMs), ms(st.WALMs), ms(st.RaftMs), ms(st.WALFsyncMs), ms(st.LogFsyncMs))
	if cp := r.CriticalPath; cp != nil {
		fmt.Fprintf(&b, "  raft path   medians of %s batches: leader fsync issued %s ms after propose, takes %s ms;"+
			" MsgApp sent %s, on the wire %s, queued at the follower %s, follower fsync %s, ack back %s;"+
			" quorum -> apply %s; propose -> apply %s ms (quorum waited for the leader's own fsync in %.0f%%)\n",
			group(float64(cp.Batches)), ms(cp.LeaderSyncStart), ms(cp.LeaderSync), ms(cp.Send), ms(cp.NetOut),
			ms(cp.FollowerQueue), ms(cp.FollowerSync), ms(cp.AckBack), ms(cp.QuorumToApply), ms(cp.ProposeToApply), cp.LeaderLastPct)
	}
	co := r.Cost
	fmt.Fprintf(&b, "  cost/msg    cpu %.1f us (user %.1f, sys %.1f; %.2f cores)  fsyncs %.3f  file writes %.3f  net flushes %.3f  allocs %.1f (%s B)\n",
		co.UserUs+co.SysUs, co.UserUs, co.SysUs, co.Cores, co.Fsyncs, co.FileWrites, co.NetFlushes, co.Allocs, group(co.AllocBytes))
	fmt.Fprintf(&b, "  requests    acked %s  failed %s  redirected %s\n",
		group(float64(r.Acked)), group(float64(r.Failed)), group(float64(r.Redirects)))
	if r.KilledLeader != 0 {
		fmt.Fprintf(&b, "  kill        leader %d killed; new leader %d; %s acked after the kill, the first %s ms after it\n",
			r.KilledLeader, r.NewLeader, group(float64(r.AckedAfterKill)), ms(r.FailoverMs))
	}
	if r.StalledLeader != 0 {
		fmt.Fprintf(&b, "  stall       leader %d's fsyncs held; new leader %d; %s acked after the stall (%s by the stalled node), the first by another node %s ms after it\n",
			r.StalledLeader, r.NewLeader, group(float64(r.AckedAfterStall)), group(float64(r.AckedByStalled)), ms(r.StallFailoverMs))
	}
	fmt.Fprintf(&b, "  gap         longest stretch with no ack %s ms, from %s ms into the window\n", ms(r.NoAckGapMs), ms(r.NoAckGapAtMs))
	fmt.Fprintf(&b, "  verify      verified %s  lost %s\n", group(float64(r.Verified)), group(float64(r.Lost)))
	for _, s := range r.LostSamples {
		fmt.Fprintf(&b, "    lost: %s\n", s)
	}
	if c := r.Ceiling; c != nil {
		fmt.Fprintf(&b, "  ceiling     one file: %s msg/s p99 %s ms (we are at %.0f%%)\n",
			group(c.OneFile.MsgsPerSec), ms(c.OneFile.P99Ms), 100*c.RatioOneFile)
		fmt.Fprintf(&b, "              2 of 3 files: %s msg/s p99 %s ms (we are at %.0f%%)\n",
			group(c.Quorum.MsgsPerSec), ms(c.Quorum.P99Ms), 100*c.RatioQuorum)
		fmt.Fprintf(&b, "              1 file, then 2 of 3 files (WAL first, then replicate): %s msg/s p99 %s ms (we are at %.0f%%)\n",
			group(c.WALThenQuorum.MsgsPerSec), ms(c.WALThenQuorum.P99Ms), 100*c.RatioWALThenQuorum)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// group renders a count with thousands separators.
func group(f float64) string {
	s := strconv.FormatInt(int64(math.Round(f)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// ms renders milliseconds with about three significant digits, never in
// exponent form.
func ms(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
