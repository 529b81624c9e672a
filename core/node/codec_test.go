package node

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// checkCodec reports where the fast codec and the protobuf runtime
// disagree on m: its bytes, or the message decoded back.
func checkCodec(t *testing.T, name string, m *pb.Message) {
	t.Helper()
	fast, err := encodeMessage(m)
	if err != nil {
		t.Fatalf("%s: encode: %v", name, err)
	}
	slow, err := marshal.Marshal(m)
	if err != nil {
		t.Fatalf("%s: proto marshal: %v", name, err)
	}
	if !bytes.Equal(fast, slow) {
		t.Fatalf("%s: encodings differ:\nfast  %x\nproto %x", name, fast, slow)
	}
	back, err := decodeMessage(fast)
	if err != nil {
		t.Fatalf("%s: decode: %v", name, err)
	}
	if !proto.Equal(back, m) {
		t.Fatalf("%s: round trip changed the message:\n got %v\nwant %v", name, back, m)
	}
	h, err := PeekMessage(fast)
	want := MessageHeader{Type: m.GetType(), To: m.GetTo(), From: m.GetFrom(), Term: m.GetTerm(), LogTerm: m.GetLogTerm(),
		Index: m.GetIndex(), Commit: m.GetCommit(), RejectHint: m.GetRejectHint(), Vote: m.GetVote(), Reject: m.GetReject(),
		Entries: len(m.GetEntries())}
	if err != nil || h != want {
		t.Fatalf("%s: PeekMessage = %+v, %v; want %+v", name, h, err, want)
	}
}

func u64(v uint64) *uint64 { return &v }

func TestCodecMatchesProtobuf(t *testing.T) {
	typ := func(v pb.MessageType) *pb.MessageType { return &v }
	etyp := func(v pb.EntryType) *pb.EntryType { return &v }
	tests := []struct {
		name string
		m    *pb.Message
	}{
		{"empty", &pb.Message{}},
		{"append", &pb.Message{Type: typ(pb.MsgApp), To: u64(2), From: u64(1), Term: u64(7), LogTerm: u64(6), Index: u64(41), Commit: u64(40),
			Entries: []*pb.Entry{
				{Term: u64(7), Index: u64(42), Type: etyp(pb.EntryNormal), Data: []byte("batch one")},
				{Term: u64(7), Index: u64(43), Data: []byte{}},
				{Term: u64(7), Index: u64(44)},
				{Term: u64(7), Index: u64(45), Type: etyp(pb.EntryConfChangeV2), Data: bytes.Repeat([]byte{0xfe}, 300)},
			}}},
		{"append response rejected", &pb.Message{Type: typ(pb.MsgAppResp), To: u64(1), From: u64(3), Term: u64(7), Index: u64(41),
			Reject: new(true), RejectHint: u64(30), LogTerm: u64(5)}},
		{"zero values present", &pb.Message{Type: typ(pb.MsgHup), To: u64(0), From: u64(0), Term: u64(0), Reject: new(false), Vote: u64(0), Commit: u64(0)}},
		{"heartbeat with context", &pb.Message{Type: typ(pb.MsgHeartbeat), To: u64(2), From: u64(1), Term: u64(9), Commit: u64(100), Context: []byte("ctx")}},
		{"empty context", &pb.Message{Type: typ(pb.MsgHeartbeatResp), Context: []byte{}}},
		{"vote", &pb.Message{Type: typ(pb.MsgVote), To: u64(3), From: u64(2), Term: u64(1 << 40), LogTerm: u64(1<<64 - 1), Index: u64(1 << 63), Vote: u64(2)}},
		{"snapshot takes protobuf's path", &pb.Message{Type: typ(pb.MsgSnap), To: u64(2), Snapshot: &pb.Snapshot{Data: []byte("snap"),
			Metadata: &pb.SnapshotMetadata{Index: u64(10), Term: u64(2), ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}}}}}},
		{"responses take protobuf's path", &pb.Message{Type: typ(pb.MsgStorageAppend), Responses: []*pb.Message{{Type: typ(pb.MsgAppResp), To: u64(1)}}}},
	}
	for _, tt := range tests {
		checkCodec(t, tt.name, tt.m)
	}
}

// TestCodecRandomMessages: random messages of every type, with random
// field presence, encode to protobuf's bytes and decode back.
func TestCodecRandomMessages(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	val := func() *uint64 {
		if r.IntN(3) == 0 {
			return nil
		}
		return u64(r.Uint64() >> r.UintN(64))
	}
	for i := 0; i < 2000; i++ {
		m := &pb.Message{To: val(), From: val(), Term: val(), LogTerm: val(), Index: val(), Commit: val(), RejectHint: val(), Vote: val()}
		if r.IntN(4) != 0 {
			v := pb.MessageType(r.IntN(len(pb.MessageType_name)))
			m.Type = &v
		}
		if r.IntN(3) == 0 {
			m.Reject = new(r.IntN(2) == 0)
		}
		if r.IntN(5) == 0 {
			m.Context = make([]byte, r.IntN(20))
		}
		for k := r.IntN(4); k > 0; k-- {
			e := &pb.Entry{Term: val(), Index: val()}
			if r.IntN(2) == 0 {
				v := pb.EntryType(r.IntN(len(pb.EntryType_name)))
				e.Type = &v
			}
			if r.IntN(4) != 0 {
				e.Data = make([]byte, r.IntN(600))
				for j := range e.Data {
					e.Data[j] = byte(r.Uint32())
				}
			}
			m.Entries = append(m.Entries, e)
		}
		checkCodec(t, "random", m)
	}
}

// TestDecodeFallsBack: inputs the fast path leaves to protobuf still decode
// exactly as protobuf decodes them.
func TestDecodeFallsBack(t *testing.T) {
	ok, _ := marshal.Marshal(&pb.Message{Type: new(pb.MsgApp), To: u64(2)})
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"unknown field", protowire.AppendVarint(tag(append([]byte{}, ok...), 99, protowire.VarintType), 5)},
		{"unknown enum value", protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 1000)},
		{"known field, other wire type", protowire.AppendBytes(tag(nil, 2, protowire.BytesType), []byte("x"))},
		{"entry with unknown field", protowire.AppendBytes(tag(nil, 7, protowire.BytesType),
			protowire.AppendVarint(tag(nil, 9, protowire.VarintType), 1))},
	}
	for _, tt := range tests {
		got, err := decodeMessage(tt.in)
		want := &pb.Message{}
		werr := proto.Unmarshal(tt.in, want)
		if (err == nil) != (werr == nil) || (err == nil && !proto.Equal(got, want)) {
			t.Fatalf("%s: decode = %v, %v; protobuf = %v, %v", tt.name, got, err, want, werr)
		}
		if _, ferr := decodeFast(tt.in); !errors.Is(ferr, errFallback) {
			t.Fatalf("%s: fast path did not fall back: %v", tt.name, ferr)
		}
	}
}

// FuzzDecodeMessage: on any input the codec never panics and agrees with
// protobuf (both fail, or both decode to equal messages); what it decodes
// it re-encodes to bytes protobuf decodes to the same message.
func FuzzDecodeMessage(f *testing.F) {
	seed, _ := marshal.Marshal(&pb.Message{Type: new(pb.MsgApp), To: u64(2), From: u64(1), Term: u64(3), Commit: u64(4),
		Entries: []*pb.Entry{{Term: u64(3), Index: u64(5), Data: []byte("data")}}, Reject: new(true), Context: []byte("c")})
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0x08, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := decodeMessage(in)
		want := &pb.Message{}
		werr := proto.Unmarshal(in, want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("decode error %v, protobuf error %v", err, werr)
		}
		if err != nil {
			return
		}
		if !proto.Equal(got, want) {
			t.Fatalf("decoded %v, protobuf %v", got, want)
		}
		out, err := encodeMessage(got)
		if err != nil {
			t.Fatal(err)
		}
		again := &pb.Message{}
		if err := proto.Unmarshal(out, again); err != nil || !proto.Equal(again, got) {
			t.Fatalf("re-encoded message decodes to %v (%v), want %v", again, err, got)
		}
	})
}

func BenchmarkCodec(b *testing.B) {
	m := &pb.Message{Type: new(pb.MsgApp), To: u64(2), From: u64(1), Term: u64(7), LogTerm: u64(6), Index: u64(41), Commit: u64(40)}
	for i := 0; i < 3; i++ {
		m.Entries = append(m.Entries, &pb.Entry{Term: u64(7), Index: u64(42 + uint64(i)), Type: new(pb.EntryNormal), Data: make([]byte, 465)})
	}
	buf, _ := marshal.Marshal(m)
	b.Run("encode/fast", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_, _ = encodeMessage(m)
		}
	})
	b.Run("encode/proto", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_, _ = marshal.Marshal(m)
		}
	})
	b.Run("decode/fast", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_, _ = decodeMessage(buf)
		}
	})
	b.Run("decode/proto", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_ = proto.Unmarshal(buf, &pb.Message{})
		}
	})
}

// TestKnownEnumTables: the table checks of the fast decoders accept exactly
// the varints a lookup in the enums' name maps accepts, small and large
// (values past int32 must not wrap onto a known one).
func TestKnownEnumTables(t *testing.T) {
	vals := []uint64{1 << 31, 1<<31 - 1, 1 << 32, 1<<32 + 3, 1<<64 - 1, 1<<63 + 4}
	for v := uint64(0); v < 300; v++ {
		vals = append(vals, v)
	}
	for _, v := range vals {
		_, ok := pb.MessageType_name[int32(v)]
		if want := ok && uint64(int32(v)) == v; knownMessageType(v) != want {
			t.Errorf("knownMessageType(%d) = %v, want %v", v, !want, want)
		}
		_, ok = pb.EntryType_name[int32(v)]
		if want := ok && uint64(int32(v)) == v; knownEntryType(v) != want {
			t.Errorf("knownEntryType(%d) = %v, want %v", v, !want, want)
		}
	}
}
