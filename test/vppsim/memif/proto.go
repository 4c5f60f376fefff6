package memif

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Protocol constants from memif.h (protocol 2.0). The protocol is host-endian; vppmesh
// runs on little-endian machines (amd64, arm64), so little-endian is used throughout.
const (
	Cookie  uint32 = 0x3E31F20
	Version uint16 = 2<<8 | 0

	// msgSize is sizeof(memif_msg_t): the struct is aligned to 128 bytes and both VPP
	// and DPDK send and expect exactly this size (DPDK disconnects on anything else).
	msgSize = 128
	nameLen = 32
	// secretLen is the width of memif_msg_init_t.secret.
	secretLen    = 24
	reasonLen    = 96
	ringHdrSize  = 128 // cacheline0 (cookie, flags, head), cacheline1 (tail); desc at cacheline2
	descSize     = 16
	ringHeadOff  = 4 // 32-bit word holding flags (low half) and head (high half)
	ringTailOff  = 64
	maxLog2Ring  = 14
	maxQueues    = 255
	maxRegions   = 256
	ringFlagMask = 1 // MEMIF_RING_FLAG_MASK_INT: the consumer polls, do not signal it
	descNext     = 1 // MEMIF_DESC_FLAG_NEXT: the frame continues in the next descriptor
	addRingS2M   = 1 // MEMIF_MSG_ADD_RING_FLAG_S2M
)

type msgType uint16

const (
	msgNone msgType = iota
	msgAck
	msgHello
	msgInit
	msgAddRegion
	msgAddRing
	msgConnect
	msgConnected
	msgDisconnect
)

func (t msgType) String() string {
	switch t {
	case msgAck:
		return "ACK"
	case msgHello:
		return "HELLO"
	case msgInit:
		return "INIT"
	case msgAddRegion:
		return "ADD_REGION"
	case msgAddRing:
		return "ADD_RING"
	case msgConnect:
		return "CONNECT"
	case msgConnected:
		return "CONNECTED"
	case msgDisconnect:
		return "DISCONNECT"
	}
	return fmt.Sprintf("type(%d)", uint16(t))
}

// Mode is the interface mode carried in INIT.
type Mode uint8

const (
	ModeEthernet   Mode = 0
	ModeIP         Mode = 1
	ModePuntInject Mode = 2
)

func (m Mode) String() string {
	switch m {
	case ModeEthernet:
		return "ethernet"
	case ModeIP:
		return "ip"
	case ModePuntInject:
		return "punt-inject"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Payload sizes of the packed structs in memif.h, after the 2-byte type.
var payloadSize = [...]int{
	msgNone:       0,
	msgAck:        0,
	msgHello:      nameLen + 2 + 2 + 2 + 2 + 2 + 1,
	msgInit:       2 + 4 + 1 + secretLen + nameLen,
	msgAddRegion:  2 + 8,
	msgAddRing:    2 + 2 + 2 + 4 + 1 + 2,
	msgConnect:    nameLen,
	msgConnected:  nameLen,
	msgDisconnect: 4 + reasonLen,
}

// ErrMalformed is wrapped by every control message parse failure.
var ErrMalformed = errors.New("malformed memif message")

type helloMsg struct {
	name                   string
	minVersion, maxVersion uint16
	maxRegion              uint16 // highest region index, not a count
	maxM2S, maxS2M         uint16 // highest ring index, not a count
	maxLog2RingSize        uint8
}

type initMsg struct {
	version uint16
	id      uint32
	mode    Mode
	secret  [secretLen]byte
	name    string
}

type addRegionMsg struct {
	index uint16
	size  uint64
}

type addRingMsg struct {
	flags         uint16
	index         uint16
	region        uint16
	offset        uint32
	log2RingSize  uint8
	privateHdrLen uint16
}

type disconnectMsg struct {
	code   uint32
	reason string
}

// message is one decoded control message; only the member named by typ is meaningful.
type message struct {
	typ        msgType
	hello      helloMsg
	init       initMsg
	addRegion  addRegionMsg
	addRing    addRingMsg
	ifName     string // CONNECT and CONNECTED
	disconnect disconnectMsg
}

// parseMessage decodes one control message. It accepts any length that holds the
// message's struct (peers send 128 bytes) and never reads beyond b.
func parseMessage(b []byte) (message, error) {
	var m message
	if len(b) < 2 {
		return m, fmt.Errorf("%w: %d bytes, need at least 2", ErrMalformed, len(b))
	}
	le := binary.LittleEndian
	m.typ = msgType(le.Uint16(b))
	if m.typ == msgNone || int(m.typ) >= len(payloadSize) {
		return m, fmt.Errorf("%w: unknown type %d", ErrMalformed, uint16(m.typ))
	}
	p := b[2:]
	if need := payloadSize[m.typ]; len(p) < need {
		return m, fmt.Errorf("%w: %v has %d payload bytes, need %d", ErrMalformed, m.typ, len(p), need)
	}
	switch m.typ {
	case msgHello:
		h := &m.hello
		h.name = cString(p[:nameLen])
		p = p[nameLen:]
		h.minVersion, h.maxVersion = le.Uint16(p), le.Uint16(p[2:])
		h.maxRegion, h.maxM2S, h.maxS2M = le.Uint16(p[4:]), le.Uint16(p[6:]), le.Uint16(p[8:])
		h.maxLog2RingSize = p[10]
	case msgInit:
		in := &m.init
		in.version, in.id, in.mode = le.Uint16(p), le.Uint32(p[2:]), Mode(p[6])
		copy(in.secret[:], p[7:7+secretLen])
		in.name = cString(p[7+secretLen : 7+secretLen+nameLen])
	case msgAddRegion:
		m.addRegion = addRegionMsg{index: le.Uint16(p), size: le.Uint64(p[2:])}
	case msgAddRing:
		m.addRing = addRingMsg{
			flags: le.Uint16(p), index: le.Uint16(p[2:]), region: le.Uint16(p[4:]),
			offset: le.Uint32(p[6:]), log2RingSize: p[10], privateHdrLen: le.Uint16(p[11:]),
		}
	case msgConnect, msgConnected:
		m.ifName = cString(p[:nameLen])
	case msgDisconnect:
		m.disconnect = disconnectMsg{code: le.Uint32(p), reason: cString(p[4 : 4+reasonLen])}
	}
	return m, nil
}

// encode writes m into a zeroed 128-byte memif_msg_t.
func (m *message) encode(b *[msgSize]byte) {
	*b = [msgSize]byte{}
	le := binary.LittleEndian
	le.PutUint16(b[:], uint16(m.typ))
	p := b[2:]
	switch m.typ {
	case msgHello:
		h := &m.hello
		putCString(p[:nameLen], h.name)
		p = p[nameLen:]
		le.PutUint16(p, h.minVersion)
		le.PutUint16(p[2:], h.maxVersion)
		le.PutUint16(p[4:], h.maxRegion)
		le.PutUint16(p[6:], h.maxM2S)
		le.PutUint16(p[8:], h.maxS2M)
		p[10] = h.maxLog2RingSize
	case msgInit:
		in := &m.init
		le.PutUint16(p, in.version)
		le.PutUint32(p[2:], in.id)
		p[6] = byte(in.mode)
		copy(p[7:7+secretLen], in.secret[:])
		putCString(p[7+secretLen:7+secretLen+nameLen], in.name)
	case msgAddRegion:
		le.PutUint16(p, m.addRegion.index)
		le.PutUint64(p[2:], m.addRegion.size)
	case msgAddRing:
		r := &m.addRing
		le.PutUint16(p, r.flags)
		le.PutUint16(p[2:], r.index)
		le.PutUint16(p[4:], r.region)
		le.PutUint32(p[6:], r.offset)
		p[10] = r.log2RingSize
		le.PutUint16(p[11:], r.privateHdrLen)
	case msgConnect, msgConnected:
		putCString(p[:nameLen], m.ifName)
	case msgDisconnect:
		le.PutUint32(p, m.disconnect.code)
		putCString(p[4:4+reasonLen], m.disconnect.reason)
	}
}

// cString returns the bytes before the first NUL; peers are not trusted to terminate.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// putCString copies s leaving room for a terminating NUL, as strlcpy does.
func putCString(dst []byte, s string) {
	n := copy(dst[:len(dst)-1], s)
	clear(dst[n:])
}
