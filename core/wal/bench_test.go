package wal

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"walraft/core/osenv"
	"walraft/sim"
)

// benchWriters is the number of closed-loop producers: each appends one
// record and appends the next when its done fires (64 "concurrent writers"
// in a sans-I/O world).
const benchWriters = 64

// benchEpoch bounds the log a benchmark builds: every benchEpoch records
// the producers drain and the WAL is truncated to empty, so disk (and the
// simulated disk's memory) stays bounded whatever b.N is.
const benchEpoch = 50_000

var benchSizes = []int{256, 1024}

// BenchmarkAppendSim measures group commit on the simulated disk (fsync
// 100us..1ms). records/s and batches/s are wall-clock (the cost of the WAL
// and the simulator); sim-records/s is the throughput in simulated time,
// which shows what batching buys against the simulated fsync latency.
func BenchmarkAppendSim(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			h := newHarness(b, 1, sim.DefaultDiskConfig())
			batches := 0
			w := h.open(Config{}, func(BatchNotice) { batches++ })
			h.drain()
			c := &closedLoop{w: w, n: b.N, rec: make([]byte, size)}
			b.SetBytes(int64(size))
			b.ResetTimer()
			t0 := h.sched.Now()
			c.start()
			for !c.finished && h.sched.Step() {
			}
			b.StopTimer()
			if c.err != nil || c.acked != b.N {
				b.Fatalf("benchmark stopped after %d of %d records: %v", c.acked, b.N, c.err)
			}
			report(b, batches)
			if virt := h.sched.Now() - t0; virt > 0 {
				b.ReportMetric(float64(b.N)/virt.Seconds(), "sim-records/s")
			}
		})
	}
}

// BenchmarkAppendOS measures group commit on real files with real fsync in
// a temporary directory ($WAL_BENCH_DIR to pick the disk), driven by
// core/osenv's event loop.
func BenchmarkAppendOS(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			dir := b.TempDir()
			if d := os.Getenv("WAL_BENCH_DIR"); d != "" {
				var err error
				if dir, err = os.MkdirTemp(d, "wal-bench-"); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { os.RemoveAll(dir) })
			}
			loop := osenv.NewLoop()
			defer loop.Close()
			fs, err := osenv.NewFS(dir, loop)
			if err != nil {
				b.Fatal(err)
			}
			e := osenv.NewEnv(loop, fs, nopNet{}, 1, nil)
			var w *WAL
			batches := 0
			loop.Do(func() { w, err = Open(e, "wal/t/0", "t", 0, Config{}, func(BatchNotice) { batches++ }) })
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			c := &closedLoop{w: w, n: b.N, rec: make([]byte, size), onFinish: func() { close(done) }}
			b.SetBytes(int64(size))
			b.ResetTimer()
			loop.Post(c.start)
			select {
			case <-done:
			case <-time.After(10 * time.Minute):
				b.Fatal("benchmark did not finish")
			}
			b.StopTimer()
			var res int
			loop.Do(func() { res = batches; w.Close() })
			if c.err != nil {
				b.Fatal(c.err)
			}
			report(b, res)
		})
	}
}

func report(b *testing.B, batches int) {
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/sec, "records/s")
	b.ReportMetric(float64(batches)/sec, "batches/s")
	if batches > 0 {
		b.ReportMetric(float64(b.N)/float64(batches), "records/batch")
	}
}

// closedLoop drives benchWriters producers until n records are durable. All
// its methods run on the WAL's event loop.
type closedLoop struct {
	w          *WAL
	n          int
	rec        []byte
	onFinish   func()
	issued     int
	acked      int
	epochStart int
	truncating bool
	finished   bool
	err        error
}

func (c *closedLoop) start() {
	for range benchWriters {
		c.next()
	}
}

func (c *closedLoop) next() {
	if c.issued == c.n || c.err != nil {
		return
	}
	if c.issued-c.epochStart >= benchEpoch {
		// Drain, then empty the log before the next epoch.
		if c.acked == c.issued && !c.truncating {
			c.truncating = true
			c.w.Truncate(c.w.Start(), func(err error) {
				c.truncating = false
				if err != nil {
					c.stop(err)
					return
				}
				c.epochStart = c.issued
				c.start()
			})
		}
		return
	}
	c.issued++
	if _, err := c.w.Append([][]byte{c.rec}, c.done); err != nil {
		c.stop(err)
	}
}

// stop ends the run (err nil: every record is durable).
func (c *closedLoop) stop(err error) {
	c.err = errors.Join(c.err, err)
	if !c.finished {
		c.finished = true
		if c.onFinish != nil {
			c.onFinish()
		}
	}
}

func (c *closedLoop) done(err error) {
	if err != nil {
		c.stop(err)
		return
	}
	c.acked++
	if c.acked == c.n {
		c.stop(nil)
		return
	}
	c.next()
}
