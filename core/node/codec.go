package node

import (
	"errors"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The wire codec of Raft messages between nodes. The bytes are the
// protobuf encoding of raftpb.Message, exactly what
// proto.MarshalOptions{Deterministic: true} produces (a test holds the two
// byte for byte), so either side may use either codec. It exists because
// the reflection-driven protobuf runtime spent about a sixth of a
// simulation's CPU encoding and decoding the few shapes Raft sends (an
// append with entries, its response, a heartbeat, a vote): this code
// writes them directly, and reads them with one allocation for a
// message's scalars and one per entry; entry data aliases the input, which
// the receiver owns and nobody modifies (env.Network: a message belongs
// to the network once sent, and each delivery hands over its own bytes).
// Anything
// else (a snapshot, storage-thread responses, unknown fields, an enum value
// this version does not know, a field with an unexpected wire type) takes
// the protobuf runtime's path, so both decode every input the same way.

// errFallback: the fast decoder met something it leaves to protobuf.
var errFallback = errors.New("node: message needs the protobuf runtime")

// encodeMessage encodes m as protobuf.
func encodeMessage(m *pb.Message) ([]byte, error) {
	if !fastEncodable(m) {
		return marshal.Marshal(m)
	}
	b := make([]byte, 0, messageSize(m))
	if m.Type != nil {
		b = appendVarintField(b, 1, uint64(*m.Type))
	}
	b = appendOpt(b, 2, m.To)
	b = appendOpt(b, 3, m.From)
	b = appendOpt(b, 4, m.Term)
	b = appendOpt(b, 5, m.LogTerm)
	b = appendOpt(b, 6, m.Index)
	for _, e := range m.Entries {
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(entrySize(e)))
		b = appendEntry(b, e)
	}
	b = appendOpt(b, 8, m.Commit)
	if m.Reject != nil {
		b = appendVarintField(b, 10, protowire.EncodeBool(*m.Reject))
	}
	b = appendOpt(b, 11, m.RejectHint)
	if m.Context != nil {
		b = protowire.AppendTag(b, 12, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Context)
	}
	b = appendOpt(b, 13, m.Vote)
	return b, nil
}

// fastEncodable reports whether encodeMessage's direct path covers m.
func fastEncodable(m *pb.Message) bool {
	if m.Snapshot != nil || len(m.Responses) > 0 || len(m.ProtoReflect().GetUnknown()) > 0 || m.GetType() < 0 {
		return false
	}
	for _, e := range m.Entries {
		if e == nil || len(e.ProtoReflect().GetUnknown()) > 0 || e.GetType() < 0 {
			return false
		}
	}
	return true
}

// appendOpt appends an optional varint field if it is present.
func appendOpt(b []byte, num protowire.Number, v *uint64) []byte {
	if v == nil {
		return b
	}
	return appendVarintField(b, num, *v)
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendEntry(b []byte, e *pb.Entry) []byte {
	if e.Type != nil {
		b = appendVarintField(b, 1, uint64(*e.Type))
	}
	b = appendOpt(b, 2, e.Term)
	b = appendOpt(b, 3, e.Index)
	if e.Data != nil {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, e.Data)
	}
	return b
}

func optSize(num protowire.Number, v *uint64) int {
	if v == nil {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(*v)
}

func entrySize(e *pb.Entry) int {
	n := optSize(2, e.Term) + optSize(3, e.Index)
	if e.Type != nil {
		n += protowire.SizeTag(1) + protowire.SizeVarint(uint64(e.GetType()))
	}
	if e.Data != nil {
		n += protowire.SizeTag(4) + protowire.SizeBytes(len(e.Data))
	}
	return n
}

func messageSize(m *pb.Message) int {
	n := optSize(2, m.To) + optSize(3, m.From) + optSize(4, m.Term) + optSize(5, m.LogTerm) +
		optSize(6, m.Index) + optSize(8, m.Commit) + optSize(11, m.RejectHint) + optSize(13, m.Vote)
	if m.Type != nil {
		n += protowire.SizeTag(1) + protowire.SizeVarint(uint64(m.GetType()))
	}
	for _, e := range m.Entries {
		n += protowire.SizeTag(7) + protowire.SizeBytes(entrySize(e))
	}
	if m.Reject != nil {
		n += protowire.SizeTag(10) + 1
	}
	if m.Context != nil {
		n += protowire.SizeTag(12) + protowire.SizeBytes(len(m.Context))
	}
	return n
}

// decodeMessage decodes a protobuf raftpb.Message.
func decodeMessage(b []byte) (*pb.Message, error) {
	m, err := decodeFast(b)
	if errors.Is(err, errFallback) {
		m = &pb.Message{}
		err = proto.Unmarshal(b, m)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// msgScalars backs a decoded message's optional scalar fields: one
// allocation instead of one per field.
type msgScalars struct {
	typ                                                pb.MessageType
	to, from, term, logTerm, index, commit, hint, vote uint64
	reject                                             bool
}

// entScalars backs one decoded entry and its scalar fields.
type entScalars struct {
	e           pb.Entry
	typ         pb.EntryType
	term, index uint64
}

func decodeFast(b []byte) (*pb.Message, error) {
	s := &msgScalars{}
	m := &pb.Message{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errFallback
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && num != 7 && num != 9 && num != 12 && num != 14:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, errFallback
			}
			b = b[n:]
			switch num {
			case 1:
				if !knownMessageType(v) {
					return nil, errFallback // unknown enum values are protobuf's to keep
				}
				s.typ = pb.MessageType(v)
				m.Type = &s.typ
			case 2:
				s.to, m.To = v, &s.to
			case 3:
				s.from, m.From = v, &s.from
			case 4:
				s.term, m.Term = v, &s.term
			case 5:
				s.logTerm, m.LogTerm = v, &s.logTerm
			case 6:
				s.index, m.Index = v, &s.index
			case 8:
				s.commit, m.Commit = v, &s.commit
			case 10:
				s.reject, m.Reject = protowire.DecodeBool(v), &s.reject
			case 11:
				s.hint, m.RejectHint = v, &s.hint
			case 13:
				s.vote, m.Vote = v, &s.vote
			default:
				return nil, errFallback
			}
		case typ == protowire.BytesType && num == 7:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, errFallback
			}
			b = b[n:]
			e, err := decodeEntry(v)
			if err != nil {
				return nil, err
			}
			m.Entries = append(m.Entries, e)
		case typ == protowire.BytesType && num == 12:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, errFallback
			}
			b = b[n:]
			m.Context = append([]byte{}, v...)
		default:
			return nil, errFallback
		}
	}
	return m, nil
}

// decodeEntry decodes one entry; its data aliases b.
func decodeEntry(b []byte) (*pb.Entry, error) {
	s := &entScalars{}
	e := &s.e
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errFallback
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && num >= 1 && num <= 3:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, errFallback
			}
			b = b[n:]
			switch num {
			case 1:
				if !knownEntryType(v) {
					return nil, errFallback
				}
				s.typ = pb.EntryType(v)
				e.Type = &s.typ
			case 2:
				s.term, e.Term = v, &s.term
			case 3:
				s.index, e.Index = v, &s.index
			}
		case typ == protowire.BytesType && num == 4:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, errFallback
			}
			b = b[n:]
			// A repeated Data field: protobuf keeps the last, as this does.
			e.Data = v[:len(v):len(v)]
		default:
			return nil, errFallback
		}
	}
	return e, nil
}

// enumSmall bounds the enum values the tables below hold.
const enumSmall = 64

// Which small values the Raft enums know, from their name maps: the fast
// decoders check every message's type and every entry's, and a table
// lookup costs a fraction of the map's.
var (
	messageTypes = enumTable(pb.MessageType_name)
	entryTypes   = enumTable(pb.EntryType_name)
)

func enumTable(names map[int32]string) (t [enumSmall]bool) {
	for v := range names {
		if v >= 0 && v < enumSmall {
			t[v] = true
		}
	}
	return t
}

// knownMessageType reports whether the varint v is a pb.MessageType value,
// exactly as a lookup of int32(v) in pb.MessageType_name with v fitting an
// int32 would.
func knownMessageType(v uint64) bool {
	if v < enumSmall {
		return messageTypes[v]
	}
	_, ok := pb.MessageType_name[int32(v)]
	return ok && uint64(int32(v)) == v
}

// knownEntryType is knownMessageType for pb.EntryType.
func knownEntryType(v uint64) bool {
	if v < enumSmall {
		return entryTypes[v]
	}
	_, ok := pb.EntryType_name[int32(v)]
	return ok && uint64(int32(v)) == v
}
