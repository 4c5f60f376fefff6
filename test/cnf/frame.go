package cnf

import (
	"encoding/binary"
	"fmt"
)

// Frame layout. Generated frames are plausible IPv4 packets (protocol 253, reserved for
// experiments by RFC 3692, between RFC 2544 benchmark addresses) so that a real switch,
// testpmd or a packet capture treats them as ordinary traffic; in memif IP mode the
// Ethernet header is absent. The CNF header follows the IPv4 header.
const (
	ethHdrLen  = 14
	ipv4HdrLen = 20
	// cnfHdrLen: magic (4), stream id (4), sequence number (8), big-endian.
	cnfHdrLen = 16
	cnfMagic  = 0x564d434e // "VMCN"
	ipProto   = 253

	// MinFrameSize and MaxFrameSize bound the generator's frame size.
	MinFrameSize = 64
	MaxFrameSize = 9000
)

// l3Offset is where the IPv4 header starts: after the Ethernet header in ethernet mode.
func l3Offset(ipMode bool) int {
	if ipMode {
		return 0
	}
	return ethHdrLen
}

// buildTemplate returns one frame of size bytes with every field but the sequence number
// filled in; the generator copies it into its pooled buffers once.
func buildTemplate(size int, ipMode bool, src, dst [6]byte, stream uint32) ([]byte, error) {
	if size < MinFrameSize || size > MaxFrameSize {
		return nil, fmt.Errorf("frame size %d outside %d..%d", size, MinFrameSize, MaxFrameSize)
	}
	f := make([]byte, size)
	for i := range f {
		f[i] = byte(i) // a recognisable padding pattern in captures
	}
	l3 := l3Offset(ipMode)
	if !ipMode {
		copy(f[0:6], dst[:])
		copy(f[6:12], src[:])
		binary.BigEndian.PutUint16(f[12:14], 0x0800)
	}
	ip := f[l3 : l3+ipv4HdrLen]
	ip[0] = 0x45 // version 4, 5 words
	ip[1] = 0
	binary.BigEndian.PutUint16(ip[2:4], uint16(size-l3))
	binary.BigEndian.PutUint16(ip[4:6], 0)
	binary.BigEndian.PutUint16(ip[6:8], 0x4000) // don't fragment
	ip[8] = 64
	ip[9] = ipProto
	ip[10], ip[11] = 0, 0
	copy(ip[12:16], []byte{198, 18, 0, 1})
	copy(ip[16:20], []byte{198, 19, 0, 1})
	binary.BigEndian.PutUint16(ip[10:12], ipChecksum(ip))
	h := f[l3+ipv4HdrLen:]
	binary.BigEndian.PutUint32(h[0:4], cnfMagic)
	binary.BigEndian.PutUint32(h[4:8], stream)
	binary.BigEndian.PutUint64(h[8:16], 0)
	return f, nil
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// stampSeq writes the sequence number into a frame built from the template.
func stampSeq(f []byte, ipMode bool, seq uint64) {
	off := l3Offset(ipMode) + ipv4HdrLen + 8
	binary.BigEndian.PutUint64(f[off:off+8], seq)
}

// parseFrame extracts the stream id and sequence number of a CNF frame; ok is false for
// any other frame (too short, not IPv4 protocol 253, no magic), which the sink counts as
// foreign instead of trusting it.
func parseFrame(f []byte, ipMode bool) (stream uint32, seq uint64, ok bool) {
	l3 := l3Offset(ipMode)
	if len(f) < l3+ipv4HdrLen+cnfHdrLen {
		return 0, 0, false
	}
	if !ipMode && binary.BigEndian.Uint16(f[12:14]) != 0x0800 {
		return 0, 0, false
	}
	ip := f[l3:]
	if ip[0] != 0x45 || ip[9] != ipProto {
		return 0, 0, false
	}
	h := ip[ipv4HdrLen:]
	if binary.BigEndian.Uint32(h[0:4]) != cnfMagic {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(h[4:8]), binary.BigEndian.Uint64(h[8:16]), true
}

// swapMACs exchanges the destination and source addresses in place.
func swapMACs(f []byte) {
	if len(f) < 12 {
		return
	}
	var tmp [6]byte
	copy(tmp[:], f[0:6])
	copy(f[0:6], f[6:12])
	copy(f[6:12], tmp[:])
}
