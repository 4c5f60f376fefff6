package cnf

import (
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, ipMode := range []bool{false, true} {
		for _, size := range []int{MinFrameSize, 1500, MaxFrameSize} {
			f := craft(t, ipMode, size, 42, 1<<40+3)
			if len(f) != size {
				t.Fatalf("len %d, want %d", len(f), size)
			}
			stream, seq, ok := parseFrame(f, ipMode)
			if !ok || stream != 42 || seq != 1<<40+3 {
				t.Fatalf("ip=%v size=%d: parse = %d %d %v", ipMode, size, stream, seq, ok)
			}
			ip := f[l3Offset(ipMode):][:ipv4HdrLen]
			if ipChecksum(ip) != 0 {
				t.Fatalf("ip=%v size=%d: IPv4 header checksum does not verify", ipMode, size)
			}
			// The other mode must not mistake it for its own frame.
			if _, _, ok := parseFrame(f, !ipMode); ok {
				t.Fatalf("ip=%v frame parsed in the other mode", ipMode)
			}
		}
	}
	if _, err := buildTemplate(63, false, [6]byte{}, [6]byte{}, 0); err == nil {
		t.Fatal("63-byte template accepted")
	}
	if _, err := buildTemplate(9001, false, [6]byte{}, [6]byte{}, 0); err == nil {
		t.Fatal("9001-byte template accepted")
	}
}

func TestSwapMACs(t *testing.T) {
	f := craft(t, false, 64, 1, 1)
	swapMACs(f)
	if f[5] != 1 || f[11] != 2 {
		t.Fatalf("after swap dst ends %d src ends %d, want 1 and 2", f[5], f[11])
	}
	swapMACs(make([]byte, 3)) // must not panic on runt frames
}

// FuzzParseFrame: received frames come from a peer; parsing must never panic.
func FuzzParseFrame(f *testing.F) {
	f.Add(craft(f, false, 64, 1, 2), false)
	f.Add(craft(f, true, 64, 1, 2), true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, b []byte, ipMode bool) {
		parseFrame(b, ipMode)
		tr := newTracker()
		tr.add(b, ipMode)
		tr.add(b, ipMode)
	})
}
