package wal

import (
	"errors"
	"testing"
	"time"

	"pgregory.net/rapid"

	"walraft/core/env"
	"walraft/sim"
)

// TestWALProperty runs random sequences of appends, scheduler progress
// (fsync completions), truncations, crashes with torn persistence, reopens
// and injected I/O errors against a model. Checked throughout:
//
//   - offsets are assigned contiguously; End and Read match the model;
//   - every done is called at most once, with nil only when the append's
//     records are in the log, and ErrTruncated exactly for appends cut;
//   - a notice comes after its appends were answered, in offset order, and
//     holds exactly the log's records at its offsets;
//   - after a crash, recovery holds every record that was acknowledged
//     (done(nil) or a notice) and not truncated since, in order, with no gap,
//     and nothing that was never appended at that offset (no foreign bytes,
//     no resurrected version after a newer one);
//   - appends are atomic: recovery ends at an append's end, never inside
//     one (the part of an append a truncation keeps counts as an append of
//     its own, durable again once rewritten);
//   - once faults stop, every outstanding append is answered.
//
// RAPID_CHECKS and RAPID_STEPS scale it up.
func TestWALProperty(t *testing.T) {
	// rapid's default of 100 short runs takes milliseconds here; run it a
	// few times (each with its own random seed) for a meaningful default.
	for range 10 {
		rapid.Check(t, walProperty)
		if t.Failed() {
			return
		}
	}
}

func walProperty(rt *rapid.T) {
	{
		m := newModel(rt)
		rt.Repeat(map[string]func(*rapid.T){
			"append":    m.append,
			"run":       m.run,
			"truncate":  m.truncate,
			"crash":     m.crash,
			"reopen":    m.reopen,
			"failSync":  func(rt *rapid.T) { m.h.disk.FailNextSyncs(1) },
			"failWrite": func(rt *rapid.T) { m.h.disk.FailNextWrites(1) },
			"stall": func(rt *rapid.T) {
				m.h.disk.StallSyncsUntil(m.h.sched.Now() + time.Duration(rapid.IntRange(1, 50).Draw(rt, "stallMs"))*time.Millisecond)
			},
			"": m.check,
		})
		m.finish()
	}
}

type modelUnit struct {
	base      int64
	recs      [][]byte
	answered  bool
	wantTrunc bool // cut by a Truncate before its fsync completed
}

func (u *modelUnit) end() int64 { return u.base + int64(len(u.recs)) }

type model struct {
	rt   *rapid.T
	h    *harness
	cfg  Config
	w    *WAL
	log  [][]byte // the WAL's logical content
	must int      // prefix guaranteed to survive a crash
	// pendingRecovered: after a reopen without a crash, the recovered
	// records are in the volatile image; they are durable once the first
	// batch's fsync completes.
	pendingRecovered int
	versions         map[int64]map[string]bool
	units            []*modelUnit
	noticeEnd        int64 // end of the last notice (lowered by truncation)
	// spans holds [base, end) of every append ever made, of any version
	// (recovery may bring back records whose truncation was not durable),
	// by base; the part of an append a truncation keeps counts as one.
	spans       map[int64]map[int64]bool
	ends        map[int64]bool // every end in spans
	version, id int
	closedUnits int // answers expected with ErrClosed
}

func newModel(rt *rapid.T) *model {
	cfg := sim.DefaultDiskConfig()
	cfg.TornKeepProb = rapid.SampledFrom([]float64{0, 0.3, 0.7, 1}).Draw(rt, "tornKeep")
	cfg.BlockSize = rapid.SampledFrom([]int{512, 4096}).Draw(rt, "blockSize")
	h := newHarness(rt, rapid.Uint64().Draw(rt, "seed"), cfg)
	m := &model{rt: rt, h: h, versions: map[int64]map[string]bool{}, ends: map[int64]bool{}, spans: map[int64]map[int64]bool{}}
	m.cfg = Config{
		MaxBatchRecords: rapid.IntRange(1, 8).Draw(rt, "maxBatchRecords"),
		MaxBatchBytes:   rapid.SampledFrom([]int{200, 4000, 1 << 20}).Draw(rt, "maxBatchBytes"),
		SegmentBytes:    rapid.SampledFrom([]int64{1 << 10, 8 << 10, 1 << 20}).Draw(rt, "segmentBytes"),
		Linger:          time.Duration(rapid.SampledFrom([]int{0, 0, 300}).Draw(rt, "lingerUs")) * time.Microsecond,
	}
	m.open()
	return m
}

func (m *model) open() {
	w, err := Open(m.h.env(), "wal/t/0", "t", 0, m.cfg, m.notice)
	for range 100 {
		if !errors.Is(err, env.ErrIO) {
			break
		}
		// An injected write error hit Open's own writes: try again.
		w, err = Open(m.h.env(), "wal/t/0", "t", 0, m.cfg, m.notice)
	}
	if err != nil {
		m.rt.Fatalf("Open: %v", err)
	}
	m.w = w
	got := all(m.rt, w)
	if len(got) < m.must || !equalRecs(got[:m.must], m.log[:m.must]) {
		m.rt.Fatalf("recovered %d records, the %d acknowledged ones are not all there: %s", len(got), m.must, diffRecs(got[:min(len(got), m.must)], m.log[:m.must]))
	}
	last := -1
	for i, r := range got {
		if !m.versions[int64(i)][string(r)] {
			m.rt.Fatalf("recovered record %d (%.16q) was never appended at that offset", i, r)
		}
		v := recVersionOf(r)
		if v < last {
			m.rt.Fatalf("recovered record %d is version %d after version %d", i, v, last)
		}
		last = v
	}
	// Nothing recovered is claimed durable before recovery's first sync.
	if w.DurableEnd() != w.Start() || !w.Recovering() || w.End() != int64(len(got)) || w.Start() != 0 {
		m.rt.Fatalf("after Open: Start/End/DurableEnd = %d/%d/%d (recovering %v) for %d records", w.Start(), w.End(), w.DurableEnd(), w.Recovering(), len(got))
	}
	w.OnRecovered(func(err error) {
		// recoveredEnd: the recovered end, lowered by any truncation since.
		if err == nil && !w.closed && w.DurableEnd() < w.recoveredEnd {
			m.rt.Fatalf("recovery's sync done: DurableEnd %d below the recovered end %d", w.DurableEnd(), w.recoveredEnd)
		}
	})
	if n := int64(len(got)); n > 0 && !m.ends[n] {
		m.rt.Fatalf("recovered %d records: that is inside an append (a torn append kept partly)", n)
	}

	m.log = got
	m.noticeEnd = int64(len(got))
	m.units = nil
}

func (m *model) acked(end int64) {
	m.must = max(m.must, int(end), m.pendingRecovered)
	m.pendingRecovered = 0
}

func (m *model) notice(n BatchNotice) {
	rt := m.rt
	if n.Base < m.noticeEnd || n.Last < n.Base || int64(len(n.Records)) != n.Last-n.Base+1 {
		rt.Fatalf("notice [%d,%d] with %d records after notices up to %d", n.Base, n.Last, len(n.Records), m.noticeEnd)
	}
	if n.Last >= int64(len(m.log)) || !equalRecs(n.Records, m.log[n.Base:n.Last+1]) {
		rt.Fatalf("notice [%d,%d] does not hold the log's records (log has %d)", n.Base, n.Last, len(m.log))
	}
	for _, u := range m.units {
		if u.base >= n.Base && u.end() <= n.Last+1 && len(u.recs) > 0 && !u.answered {
			rt.Fatalf("notice [%d,%d] before the append at %d was answered", n.Base, n.Last, u.base)
		}
	}
	m.noticeEnd = n.Last + 1
	m.acked(n.Last + 1)
}

func (m *model) append(rt *rapid.T) {
	for range rapid.IntRange(1, 6).Draw(rt, "appends") {
		m.appendOne(rt)
	}
}

func (m *model) appendOne(rt *rapid.T) {
	n := rapid.IntRange(0, 4).Draw(rt, "records")
	var recs [][]byte
	for range n {
		size := rapid.SampledFrom([]int{16, 100, 700, 5000}).Draw(rt, "size")
		recs = append(recs, rec(m.version, m.id, size))
		m.id++
	}
	u := &modelUnit{recs: recs}
	w := m.w
	base, err := w.Append(recs, func(err error) { m.answer(w, u, err) })
	if w.Err() != nil { // failed before or (discovered) during the call
		if !errors.Is(err, ErrFailed) {
			rt.Fatalf("Append on a failed WAL: %v", err)
		}
		return
	}
	if err != nil {
		rt.Fatalf("Append: %v", err)
	}
	if base != int64(len(m.log)) {
		rt.Fatalf("Append got base %d, log has %d records", base, len(m.log))
	}
	u.base = base
	for i, r := range recs {
		off := base + int64(i)
		if m.versions[off] == nil {
			m.versions[off] = map[string]bool{}
		}
		m.versions[off][string(r)] = true
	}
	m.log = append(m.log, recs...)
	m.units = append(m.units, u)
	if len(recs) > 0 {
		m.addSpan(u.base, u.end())
	}
}

func (m *model) addSpan(base, end int64) {
	if m.spans[base] == nil {
		m.spans[base] = map[int64]bool{}
	}
	m.spans[base][end] = true
	m.ends[end] = true
}

func (m *model) answer(w *WAL, u *modelUnit, err error) {
	rt := m.rt
	if u.answered {
		rt.Fatalf("append at %d answered twice (second: %v)", u.base, err)
	}
	u.answered = true
	if w != m.w {
		// An append of an instance closed by reopen: truncated first, or
		// closed.
		if u.wantTrunc {
			if !errors.Is(err, ErrTruncated) {
				rt.Fatalf("truncated append at %d of a closed WAL answered %v", u.base, err)
			}
		} else if !errors.Is(err, ErrClosed) {
			rt.Fatalf("append at %d of a closed WAL answered %v", u.base, err)
		}
		m.closedUnits--
		return
	}
	switch {
	case u.wantTrunc:
		if !errors.Is(err, ErrTruncated) {
			rt.Fatalf("truncated append at %d answered %v", u.base, err)
		}
	case err == nil:
		if u.end() > int64(len(m.log)) || !equalRecs(m.log[u.base:u.end()], u.recs) {
			rt.Fatalf("append at %d acknowledged but not in the log", u.base)
		}
		m.acked(u.end())
	case errors.Is(err, ErrFailed):
		if w.Err() == nil {
			rt.Fatalf("append failed with %v but Err() is nil", err)
		}
	default:
		rt.Fatalf("append at %d answered %v", u.base, err)
	}
}

func (m *model) run(rt *rapid.T) {
	m.h.sched.RunFor(time.Duration(rapid.IntRange(0, 3000).Draw(rt, "runUs")) * time.Microsecond)
}

func (m *model) truncate(rt *rapid.T) {
	w := m.w
	off := rapid.Int64Range(w.Start(), w.End()).Draw(rt, "truncateAt")
	w.Truncate(off, func(err error) {
		if err != nil && !errors.Is(err, ErrFailed) && !errors.Is(err, ErrClosed) {
			rt.Fatalf("Truncate(%d): %v", off, err)
		}
	})
	if w.Err() != nil {
		if w.End() != int64(len(m.log)) {
			rt.Fatalf("a failed WAL's Truncate moved End to %d", w.End())
		}
		return
	}
	if w.End() != off {
		rt.Fatalf("End after Truncate(%d) = %d", off, w.End())
	}
	m.version++
	m.log = m.log[:off]
	// An append cut inside is rewritten from its start: until that is
	// durable, only what precedes it is.
	// Which version a crash brought back is not known here: take the
	// earliest start of any append ever made across off.
	start := off
	for b, es := range m.spans {
		for e := range es {
			if b < off && e > off {
				start = min(start, b)
			}
		}
	}
	if off > start {
		m.addSpan(start, off)
	}
	m.must = min(m.must, int(start))
	m.pendingRecovered = min(m.pendingRecovered, int(start))
	m.noticeEnd = min(m.noticeEnd, off)
	for _, u := range m.units {
		if !u.answered && u.end() > off {
			u.wantTrunc = true
		}
	}
}

func (m *model) crash(rt *rapid.T) {
	m.h.crash()
	m.pendingRecovered = 0
	m.closedUnits = 0
	m.open()
	m.must = len(m.log) // what a crash leaves is durable
}

func (m *model) reopen(rt *rapid.T) {
	for _, u := range m.units {
		if !u.answered {
			m.closedUnits++
		}
	}
	if err := m.w.Close(); err != nil {
		rt.Fatalf("Close: %v", err)
	}
	m.open()
	m.pendingRecovered = len(m.log)
}

func (m *model) check(rt *rapid.T) {
	w := m.w
	if w.End() != int64(len(m.log)) {
		rt.Fatalf("End = %d, model has %d records", w.End(), len(m.log))
	}
	if got := all(rt, w); !equalRecs(got, m.log) {
		rt.Fatalf("Read differs from the model: %s", diffRecs(got, m.log))
	}
	// While recovering, the WAL claims less than it may (see Open).
	if d := w.DurableEnd(); d > w.End() || (d < int64(m.must) && !w.Recovering() && w.Err() == nil) {
		rt.Fatalf("DurableEnd %d outside [must %d, End %d] (recovering %v)", d, m.must, w.End(), w.Recovering())
	}
}

// finish stops the faults and checks that every append gets its answer.
func (m *model) finish() {
	cfg := m.h.disk.Config()
	cfg.TornKeepProb = 0
	m.h.disk.SetConfig(cfg)
	m.h.drain()
	for _, u := range m.units {
		if !u.answered {
			m.rt.Fatalf("append at %d never answered (WAL err %v)", u.base, m.w.Err())
		}
	}
	if m.closedUnits != 0 {
		m.rt.Fatalf("%d appends of closed WALs never answered", m.closedUnits)
	}
	if m.w.Err() == nil && m.w.DurableEnd() != m.w.End() {
		m.rt.Fatalf("idle WAL: DurableEnd %d != End %d", m.w.DurableEnd(), m.w.End())
	}
	// One last crash: everything acknowledged survives.
	m.crash(m.rt)
}
