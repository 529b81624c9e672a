// This file gives an oracle (the simulation harness) read-only access to
// what a node puts on the wire and on disk: a cheap decoder of the scalar
// fields of a Raft message, the file layout, and decoders of the node's
// durable images in that layout. Nothing here changes a node.

package node

import (
	"errors"
	"fmt"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"

	"walraft/core/raftlog"
	"walraft/core/wal"
)

// MessageHeader is a Raft message without its entries, snapshot and
// context: what an oracle needs to judge the promise a message makes.
type MessageHeader struct {
	Type                                                     pb.MessageType
	To, From, Term, LogTerm, Index, Commit, RejectHint, Vote uint64
	Reject                                                   bool
	// Entries counts the message's entries.
	Entries int
}

// PeekMessage decodes the scalar fields of a message as Receive would
// decode the message (same wire format, same errors for bytes that are not
// a message), without copying its entries.
func PeekMessage(b []byte) (MessageHeader, error) {
	h, err := peekFast(b)
	if errors.Is(err, errFallback) {
		m, err := decodeMessage(b)
		if err != nil {
			return MessageHeader{}, err
		}
		return MessageHeader{Type: m.GetType(), To: m.GetTo(), From: m.GetFrom(), Term: m.GetTerm(), LogTerm: m.GetLogTerm(),
			Index: m.GetIndex(), Commit: m.GetCommit(), RejectHint: m.GetRejectHint(), Vote: m.GetVote(), Reject: m.GetReject(),
			Entries: len(m.GetEntries())}, nil
	}
	return h, err
}

// peekFast is decodeFast's scalar half; errFallback sends anything unusual
// to the full decoder.
func peekFast(b []byte) (MessageHeader, error) {
	var h MessageHeader
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return h, errFallback
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && num != 7 && num != 9 && num != 12 && num != 14:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return h, errFallback
			}
			b = b[n:]
			switch num {
			case 1:
				if !knownMessageType(v) {
					return h, errFallback
				}
				h.Type = pb.MessageType(v)
			case 2:
				h.To = v
			case 3:
				h.From = v
			case 4:
				h.Term = v
			case 5:
				h.LogTerm = v
			case 6:
				h.Index = v
			case 8:
				h.Commit = v
			case 10:
				h.Reject = protowire.DecodeBool(v)
			case 11:
				h.RejectHint = v
			case 13:
				h.Vote = v
			default:
				return h, errFallback
			}
		case typ == protowire.BytesType && (num == 7 || num == 12):
			_, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return h, errFallback
			}
			b = b[n:]
			if num == 7 {
				h.Entries++
			}
		default:
			return h, errFallback
		}
	}
	return h, nil
}

// RaftLogDir returns the directory prefix of a node's Raft log.
func RaftLogDir(cfg Config) string { return cfg.Dir + "raft" }

// WALDir returns the directory prefix of a partition's WAL.
func WALDir(cfg Config, topic string, partition int32) string {
	return fmt.Sprintf("%swal/%s/%d", cfg.Dir, topic, partition)
}

// NewRaftImage returns a read-only decoder of the durable Raft log of a
// node configured with cfg (see raftlog.Image).
func NewRaftImage(cfg Config) (*raftlog.Image, error) {
	return raftlog.NewImage(RaftLogDir(cfg), cfg.withDefaults().RaftLog)
}

// NewWALImage returns a read-only decoder of the durable WAL of one
// partition of a node configured with cfg (see wal.Image).
func NewWALImage(cfg Config, topic string, partition int32) (*wal.Image, error) {
	return wal.NewImage(WALDir(cfg, topic, partition), cfg.withDefaults().WAL)
}

// RaftLogTerm returns the term of entry i in the node's Raft log as raft
// sees it now (saved entries, durable or not), or false if it holds no such
// entry: what an append response the node sends claims to hold.
func (n *Node) RaftLogTerm(i uint64) (uint64, bool) {
	if n.storage == nil || i == 0 {
		return 0, false
	}
	t, err := n.storage.Term(i)
	if err != nil {
		return 0, false
	}
	return t, true
}

// sendBuggy sends now, before the sync, the responses the VoteBeforeSync
// and AppRespBeforeSync known-bad variants send early, and returns the
// rest.
func (n *Node) sendBuggy(msgs []*pb.Message) []*pb.Message {
	var rest []*pb.Message
	for _, m := range msgs {
		if (n.bugs.VoteBeforeSync && m.GetType() == pb.MsgVoteResp) || (n.bugs.AppRespBeforeSync && m.GetType() == pb.MsgAppResp) {
			n.send(m)
			continue
		}
		rest = append(rest, m)
	}
	return rest
}

// RaftHardState returns the node's Raft HardState as saved (at boot: as
// recovered).
func (n *Node) RaftHardState() (term, vote, commit uint64) {
	if n.storage == nil {
		return 0, 0, 0
	}
	hs := n.storage.HardState()
	return hs.GetTerm(), hs.GetVote(), hs.GetCommit()
}
