package scenarios

import (
	"testing"

	"pgregory.net/rapid"

	"walraft/sim"
)

// The fuzz targets run the rapid properties with go's fuzzer choosing the
// bytes rapid draws from (rapid.MakeFuzz): every 8 input bytes are one
// 64-bit draw, and an input that runs out of bytes is skipped. Run them with
//
//	go test ./scenarios -run '^$' -fuzz FuzzCluster -fuzztime 10m -fuzzminimizetime 50x
//
// Bound -fuzzminimizetime: go's fuzzer minimises every new interesting
// input, and each candidate that rapid accepts is a whole simulation, so
// the default (60s per input) leaves the fuzzer minimising most of the
// time.
//
// A crasher lands in testdata/fuzz/FuzzCluster/ and from then on replays
// under a plain `go test ./scenarios`, as do the seed entries committed
// there and those added below.
//
// go's fuzzer runs each worker as its own process and one input at a time
// per worker, which is what the simulator needs (only one simulation per
// process at a time).

// corpusWords is the length of a generated seed input in 64-bit words:
// enough for the options and a schedule of the longest length drawn.
const corpusWords = 256

// corpusEntry returns a seed input: corpusWords pseudo-random words from a
// seeded stream, so the corpus is the same on every run.
func corpusEntry(seed uint64) []byte {
	b := make([]byte, 8*corpusWords)
	if _, err := sim.NewStreams(seed).Stream("fuzz-corpus").Read(b); err != nil {
		panic(err)
	}
	return b
}

// FuzzCluster fuzzes clusterProperty: 1-, 3- and 5-node clusters under a
// drawn workload and in-budget fault schedule keep every invariant.
func FuzzCluster(f *testing.F) {
	for _, seed := range []uint64{1, 2} {
		f.Add(corpusEntry(seed))
	}
	f.Fuzz(rapid.MakeFuzz(clusterProperty))
}

// FuzzStandalone fuzzes standaloneProperty: one node, no Raft, under
// crashes, torn crashes, fsync stalls and EIO.
func FuzzStandalone(f *testing.F) {
	f.Add(corpusEntry(3))
	f.Fuzz(rapid.MakeFuzz(standaloneProperty))
}
