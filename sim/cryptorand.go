package sim

import (
	"crypto/rand"
	"io"
	"sync/atomic"
)

// cryptoInstalled guards crypto/rand.Reader, a process global: only one
// simulation may replace it at a time. The atomic protects the global
// against a second simulation started from another goroutine (a test with
// t.Parallel); it is not simulation logic.
var cryptoInstalled atomic.Bool

// InstallCryptoRand replaces crypto/rand.Reader with r until the returned
// restore func is called (calling restore again does nothing).
//
// Why: etcd raft draws its randomized election timeouts with
// rand.Int(rand.Reader, ...) on crypto/rand's package variable, so a
// simulation of raft replays only if that reader is seeded. Because the
// reader is global, only ONE simulation may run per OS process at a time:
// InstallCryptoRand panics if another installation is active. Anything else
// in the process that reads crypto/rand.Reader meanwhile gets the seeded
// bytes too, so never run a simulation next to code that needs real
// randomness.
func InstallCryptoRand(r io.Reader) (restore func()) {
	if r == nil {
		panic("sim: InstallCryptoRand with a nil reader")
	}
	if !cryptoInstalled.CompareAndSwap(false, true) {
		panic("sim: InstallCryptoRand: another simulation has already replaced crypto/rand.Reader; " +
			"only one simulation may run per process at a time (close the previous World first, " +
			"do not use t.Parallel for simulations, use worker processes for parallel campaigns)")
	}
	old := rand.Reader
	rand.Reader = r
	done := false
	return func() {
		if done {
			return
		}
		done = true
		rand.Reader = old
		cryptoInstalled.Store(false)
	}
}

// CryptoRandInstalled reports whether a simulation's reader currently
// replaces crypto/rand.Reader.
func CryptoRandInstalled() bool { return cryptoInstalled.Load() }
