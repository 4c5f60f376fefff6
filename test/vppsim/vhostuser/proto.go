package vhostuser

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Request codes from the vhost-user protocol (QEMU docs/interop/vhost-user.rst).
const (
	reqGetFeatures         uint32 = 1
	reqSetFeatures         uint32 = 2
	reqSetOwner            uint32 = 3
	reqResetOwner          uint32 = 4
	reqSetMemTable         uint32 = 5
	reqSetLogBase          uint32 = 6
	reqSetLogFD            uint32 = 7
	reqSetVringNum         uint32 = 8
	reqSetVringAddr        uint32 = 9
	reqSetVringBase        uint32 = 10
	reqGetVringBase        uint32 = 11
	reqSetVringKick        uint32 = 12
	reqSetVringCall        uint32 = 13
	reqSetVringErr         uint32 = 14
	reqGetProtocolFeatures uint32 = 15
	reqSetProtocolFeatures uint32 = 16
	reqGetQueueNum         uint32 = 17
	reqSetVringEnable      uint32 = 18
)

// Header flags.
const (
	flagVersionMask uint32 = 0x3
	flagVersion     uint32 = 0x1
	flagReply       uint32 = 0x4
	flagNeedReply   uint32 = 0x8
)

// Virtio and vhost feature bits this backend knows about.
const (
	featMrgRxbuf         = 15 // VIRTIO_NET_F_MRG_RXBUF
	featCtrlVQ           = 17 // VIRTIO_NET_F_CTRL_VQ: handled by the frontend itself (QEMU, virtio-user)
	featMQ               = 22 // VIRTIO_NET_F_MQ
	featProtocolFeatures = 30 // VHOST_USER_F_PROTOCOL_FEATURES
	featVersion1         = 32 // VIRTIO_F_VERSION_1
)

// Protocol feature bits.
const (
	protoMQ       = 0 // VHOST_USER_PROTOCOL_F_MQ
	protoReplyAck = 3 // VHOST_USER_PROTOCOL_F_REPLY_ACK
)

const (
	headerSize = 12
	// maxPayload bounds what one message may make us read; the largest
	// message we accept is SET_MEM_TABLE with maxRegions regions.
	maxPayload = 8 + maxRegions*regionSize
	maxRegions = 8 // VHOST_MEMORY_BASELINE_NREGIONS
	regionSize = 32
	// maxFDs is the most descriptors one message may carry (one per region).
	maxFDs = maxRegions
	// vringNoFD marks SET_VRING_KICK/CALL/ERR payloads that carry no fd.
	vringNoFD   = 0x100
	vringIdxMsk = 0xff
	maxRingSize = 32768
)

var errMalformed = errors.New("malformed vhost-user message")

// header is the fixed 12-byte prefix of every vhost-user message.
type header struct {
	Request uint32
	Flags   uint32
	Size    uint32
}

func (h header) needReply() bool { return h.Flags&flagNeedReply != 0 }

// parseHeader validates a message header read from the socket.
func parseHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, fmt.Errorf("%w: header is %d bytes", errMalformed, len(b))
	}
	h := header{
		Request: binary.LittleEndian.Uint32(b[0:]),
		Flags:   binary.LittleEndian.Uint32(b[4:]),
		Size:    binary.LittleEndian.Uint32(b[8:]),
	}
	if h.Flags&flagVersionMask != flagVersion {
		return h, fmt.Errorf("%w: request %d: version %d", errMalformed, h.Request, h.Flags&flagVersionMask)
	}
	if h.Flags&flagReply != 0 {
		return h, fmt.Errorf("%w: request %d: reply flag set on a request", errMalformed, h.Request)
	}
	if h.Size > maxPayload {
		return h, fmt.Errorf("%w: request %d: payload %d bytes exceeds %d", errMalformed, h.Request, h.Size, maxPayload)
	}
	return h, nil
}

func putHeader(b []byte, h header) {
	binary.LittleEndian.PutUint32(b[0:], h.Request)
	binary.LittleEndian.PutUint32(b[4:], h.Flags)
	binary.LittleEndian.PutUint32(b[8:], h.Size)
}

func decodeU64(req uint32, p []byte) (uint64, error) {
	if len(p) < 8 {
		return 0, fmt.Errorf("%w: request %d: u64 payload is %d bytes", errMalformed, req, len(p))
	}
	return binary.LittleEndian.Uint64(p), nil
}

// vringState is the payload of SET_VRING_NUM/BASE, GET_VRING_BASE, SET_VRING_ENABLE.
type vringState struct {
	Index uint32
	Num   uint32
}

func decodeVringState(req uint32, p []byte) (vringState, error) {
	if len(p) < 8 {
		return vringState{}, fmt.Errorf("%w: request %d: vring state payload is %d bytes", errMalformed, req, len(p))
	}
	return vringState{Index: binary.LittleEndian.Uint32(p), Num: binary.LittleEndian.Uint32(p[4:])}, nil
}

// vringAddr is the payload of SET_VRING_ADDR; addresses are frontend user addresses.
type vringAddr struct {
	Index uint32
	Flags uint32
	Desc  uint64
	Used  uint64
	Avail uint64
	Log   uint64
}

func decodeVringAddr(p []byte) (vringAddr, error) {
	if len(p) < 40 {
		return vringAddr{}, fmt.Errorf("%w: SET_VRING_ADDR payload is %d bytes", errMalformed, len(p))
	}
	le := binary.LittleEndian
	return vringAddr{
		Index: le.Uint32(p), Flags: le.Uint32(p[4:]),
		Desc: le.Uint64(p[8:]), Used: le.Uint64(p[16:]), Avail: le.Uint64(p[24:]), Log: le.Uint64(p[32:]),
	}, nil
}

// memRegionDesc describes one region of SET_MEM_TABLE.
type memRegionDesc struct {
	GuestPhys  uint64
	Size       uint64
	UserAddr   uint64
	MmapOffset uint64
}

// decodeMemTable validates the region list. QEMU sizes the payload to the
// regions it sends, DPDK always sends the full 8-region array: accept both.
func decodeMemTable(p []byte) ([]memRegionDesc, error) {
	if len(p) < 8 {
		return nil, fmt.Errorf("%w: SET_MEM_TABLE payload is %d bytes", errMalformed, len(p))
	}
	n := binary.LittleEndian.Uint32(p)
	if n == 0 || n > maxRegions {
		return nil, fmt.Errorf("%w: SET_MEM_TABLE: %d regions (1..%d)", errMalformed, n, maxRegions)
	}
	if len(p) < 8+int(n)*regionSize {
		return nil, fmt.Errorf("%w: SET_MEM_TABLE: %d regions in %d bytes", errMalformed, n, len(p))
	}
	regs := make([]memRegionDesc, n)
	le := binary.LittleEndian
	for i := range regs {
		r := p[8+i*regionSize:]
		regs[i] = memRegionDesc{GuestPhys: le.Uint64(r), Size: le.Uint64(r[8:]), UserAddr: le.Uint64(r[16:]), MmapOffset: le.Uint64(r[24:])}
		d := regs[i]
		if d.Size == 0 || d.Size > 1<<46 || d.MmapOffset > 1<<46 ||
			d.GuestPhys+d.Size < d.GuestPhys || d.UserAddr+d.Size < d.UserAddr {
			return nil, fmt.Errorf("%w: SET_MEM_TABLE region %d: gpa %#x size %#x uaddr %#x offset %#x",
				errMalformed, i, d.GuestPhys, d.Size, d.UserAddr, d.MmapOffset)
		}
	}
	return regs, nil
}

// requestName names a request for logs and errors.
func requestName(r uint32) string {
	names := [...]string{"", "GET_FEATURES", "SET_FEATURES", "SET_OWNER", "RESET_OWNER", "SET_MEM_TABLE",
		"SET_LOG_BASE", "SET_LOG_FD", "SET_VRING_NUM", "SET_VRING_ADDR", "SET_VRING_BASE", "GET_VRING_BASE",
		"SET_VRING_KICK", "SET_VRING_CALL", "SET_VRING_ERR", "GET_PROTOCOL_FEATURES", "SET_PROTOCOL_FEATURES",
		"GET_QUEUE_NUM", "SET_VRING_ENABLE"}
	if r > 0 && int(r) < len(names) {
		return names[r]
	}
	return fmt.Sprintf("REQUEST_%d", r)
}
