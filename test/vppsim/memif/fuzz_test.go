package memif

import (
	"bytes"
	"testing"
)

// FuzzParseMessage feeds arbitrary bytes to the control message parser: it must never
// panic, and whatever it accepts must re-encode to bytes it parses identically.
func FuzzParseMessage(f *testing.F) {
	var b [msgSize]byte
	for _, m := range []message{
		{typ: msgAck},
		{typ: msgHello, hello: helloMsg{name: "VPP 25.10", minVersion: Version, maxVersion: Version, maxRegion: 255, maxM2S: 255, maxS2M: 255, maxLog2RingSize: 14}},
		{typ: msgInit, init: initMsg{version: Version, id: 7, mode: ModeIP, name: "app", secret: [secretLen]byte{'s'}}},
		{typ: msgAddRegion, addRegion: addRegionMsg{index: 0, size: 1 << 22}},
		{typ: msgAddRing, addRing: addRingMsg{flags: addRingS2M, index: 1, offset: 4352, log2RingSize: 10}},
		{typ: msgConnect, ifName: "memif0/1"},
		{typ: msgConnected, ifName: "memif0/1"},
		{typ: msgDisconnect, disconnect: disconnectMsg{code: 1, reason: "bye"}},
	} {
		m.encode(&b)
		f.Add(append([]byte(nil), b[:]...))
	}
	f.Add([]byte{})
	f.Add([]byte{5})
	f.Add([]byte{2, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMessage(data)
		if err != nil {
			return
		}
		var enc [msgSize]byte
		m.encode(&enc)
		m2, err := parseMessage(enc[:])
		if err != nil {
			t.Fatalf("re-encoded %v does not parse: %v", m.typ, err)
		}
		var enc2 [msgSize]byte
		m2.encode(&enc2)
		if !bytes.Equal(enc[:], enc2[:]) {
			t.Fatalf("%v: encoding not stable", m.typ)
		}
	})
}
