package vppsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Framing of VPP's socket transport: a 16-byte header (queue id u64, data length u32,
// gc mark u32; all big-endian) followed by the message, whose first two bytes are the
// message id.
const (
	frameHeaderLen = 16
	// maxFrameLen bounds what one client may make us allocate; VPP's own limit is the
	// socket rx buffer, and no API message the agent uses comes close to this.
	maxFrameLen = 1 << 20
	// requestHeaderLen is msg id (2) + client index (4) + context (4).
	requestHeaderLen = 10
)

var (
	errFrameTooLong  = errors.New("frame length exceeds limit")
	errFrameTooShort = errors.New("frame shorter than request header")
)

// readFrame reads one framed message into buf (growing it when needed) and returns the
// message bytes. It never allocates more than maxFrameLen for a frame.
func readFrame(r io.Reader, hdr *[frameHeaderLen]byte, buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n, err := parseFrameHeader(hdr[:])
	if err != nil {
		return nil, err
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("read frame body (%d bytes): %w", n, err)
	}
	return buf, nil
}

// parseFrameHeader validates a frame header and returns the announced data length.
func parseFrameHeader(hdr []byte) (int, error) {
	if len(hdr) < frameHeaderLen {
		return 0, fmt.Errorf("frame header has %d bytes: %w", len(hdr), io.ErrUnexpectedEOF)
	}
	n := binary.BigEndian.Uint32(hdr[8:12])
	if n > maxFrameLen {
		return 0, fmt.Errorf("frame of %d bytes: %w", n, errFrameTooLong)
	}
	if n < requestHeaderLen {
		return 0, fmt.Errorf("frame of %d bytes: %w", n, errFrameTooShort)
	}
	return int(n), nil
}

// appendFrame appends the header and msg to dst.
func appendFrame(dst, msg []byte) []byte {
	var hdr [frameHeaderLen]byte
	binary.BigEndian.PutUint32(hdr[8:12], uint32(len(msg)))
	dst = append(dst, hdr[:]...)
	return append(dst, msg...)
}

// requestHeader is the part of every client-to-VPP message that precedes its fields.
type requestHeader struct {
	msgID       uint16
	clientIndex uint32
	context     uint32
}

func parseRequestHeader(msg []byte) (requestHeader, error) {
	if len(msg) < requestHeaderLen {
		return requestHeader{}, fmt.Errorf("message of %d bytes: %w", len(msg), errFrameTooShort)
	}
	return requestHeader{
		msgID:       binary.BigEndian.Uint16(msg[0:2]),
		clientIndex: binary.BigEndian.Uint32(msg[2:6]),
		context:     binary.BigEndian.Uint32(msg[6:10]),
	}, nil
}
