// Package deps pins the module's dependencies while the packages that use
// them are being written.
package deps

import (
	_ "github.com/google/go-cmp/cmp"
	_ "go.etcd.io/raft/v3"
	_ "go.etcd.io/raft/v3/raftpb"
	_ "pgregory.net/rapid"
)
