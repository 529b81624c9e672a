package osenv

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"walraft/core/env"
)

// benchDir is where the fsync benchmarks write: $OSENV_BENCH_DIR (to measure
// a particular disk) or a temporary directory.
func benchDir(b *testing.B) string {
	if d := os.Getenv("OSENV_BENCH_DIR"); d != "" {
		d, err := os.MkdirTemp(d, "osenv-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return b.TempDir()
}

// benchTransport pushes b.N messages of size bytes through n transports,
// every node sending to every other one. Each direction has a window of
// credits returned by the receiver, so queues never overflow and nothing is
// dropped: the number measured is sustained delivery.
func benchTransport(b *testing.B, n, size int) {
	const window = 1024
	loops := make([]*Loop, n)
	trs := make([]*Transport, n)
	credits := make([][]chan struct{}, n) // credits[from][to]
	for i := range n {
		credits[i] = make([]chan struct{}, n)
		for j := range n {
			credits[i][j] = make(chan struct{}, window)
			for range window {
				credits[i][j] <- struct{}{}
			}
		}
	}
	var got sync.WaitGroup
	for i := range n {
		loops[i] = NewLoop()
		tr, err := NewTransport(TransportConfig{ID: env.NodeID(i + 1)}, loops[i], func(from env.NodeID, msg []byte) {
			credits[from-1][i] <- struct{}{}
			got.Done()
		})
		if err != nil {
			b.Fatal(err)
		}
		trs[i] = tr
	}
	for i := range n {
		for j := range n {
			if i != j {
				trs[i].SetPeer(env.NodeID(j+1), trs[j].Addr())
			}
		}
	}
	pairs := n * (n - 1)
	per := (b.N + pairs - 1) / pairs
	got.Add(per * pairs)
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	var send sync.WaitGroup
	for i := range n {
		for j := range n {
			if i == j {
				continue
			}
			send.Add(1)
			go func() {
				defer send.Done()
				for range per {
					<-credits[i][j]
					trs[i].Send(env.NodeID(j+1), msg)
				}
			}()
		}
	}
	send.Wait()
	got.Wait()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(per*pairs)/el.Seconds(), "msgs/s")
	for i := range n {
		if s := trs[i].Stats(); s.SendDropped != 0 || s.RecvDropped != 0 {
			b.Fatalf("node %d dropped messages: %+v", i+1, s)
		}
		trs[i].Close()
		loops[i].Close()
	}
}

// BenchmarkTransport measures messages/s through loopback TCP, one pair and
// three nodes all-to-all.
func BenchmarkTransport(b *testing.B) {
	for _, n := range []int{2, 3} {
		for _, size := range []int{1 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("nodes=%d/size=%d", n, size), func(b *testing.B) { benchTransport(b, n, size) })
		}
	}
}

// BenchmarkFSync measures write+fsync round trips through the FS: one
// outstanding sync at a time (the fsync latency of this disk), and with 16
// in flight (group commit: syncs queued during an fsync share the next one).
func BenchmarkFSync(b *testing.B) {
	for _, inflight := range []int{1, 16} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			l := NewLoop()
			defer l.Close()
			fs, err := NewFS(benchDir(b), l)
			if err != nil {
				b.Fatal(err)
			}
			f, err := fs.Create("bench")
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			rec := make([]byte, 4<<10)
			done := make(chan struct{})
			issued, completed := 0, 0
			var next func()
			next = func() { // on the loop
				issued++
				if _, err := f.Write(rec); err != nil {
					b.Error(err)
				}
				f.Sync(func(err error) {
					if err != nil {
						b.Error(err)
					}
					completed++
					if completed == b.N {
						close(done)
					} else if issued < b.N {
						next()
					}
				})
			}
			b.SetBytes(int64(len(rec)))
			b.ResetTimer()
			start := time.Now()
			l.Do(func() {
				for range min(inflight, b.N) {
					next()
				}
			})
			<-done
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "syncs/s")
		})
	}
}
