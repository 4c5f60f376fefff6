package vhostuser

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// msgReader reads whole messages with their SCM_RIGHTS fds.
type msgReader struct {
	buf [headerSize + maxPayload]byte
	oob [256]byte
}

// read returns one message. The payload aliases the reader's buffer; the
// caller owns (and must close) the fds.
func (r *msgReader) read(c *net.UnixConn) (header, []byte, []int, error) {
	var fds []int
	fail := func(err error) (header, []byte, []int, error) {
		closeFDs(fds)
		return header{}, nil, nil, err
	}
	if err := r.fill(c, r.buf[:headerSize], &fds); err != nil {
		return fail(err)
	}
	h, err := parseHeader(r.buf[:headerSize])
	if err != nil {
		return fail(err)
	}
	p := r.buf[headerSize : headerSize+int(h.Size)]
	if err := r.fill(c, p, &fds); err != nil {
		return fail(fmt.Errorf("%s payload: %w", requestName(h.Request), err))
	}
	return h, p, fds, nil
}

func (r *msgReader) fill(c *net.UnixConn, b []byte, fds *[]int) error {
	for got := 0; got < len(b); {
		n, oobn, flags, _, err := c.ReadMsgUnix(b[got:], r.oob[:])
		if oobn > 0 {
			if perr := collectFDs(r.oob[:oobn], fds); perr != nil {
				return perr
			}
		}
		if flags&unix.MSG_CTRUNC != 0 {
			return fmt.Errorf("%w: control data truncated (too many fds)", errMalformed)
		}
		if len(*fds) > maxFDs {
			return fmt.Errorf("%w: %d fds in one message", errMalformed, len(*fds))
		}
		got += n
		if err != nil {
			if got < len(b) && errors.Is(err, io.EOF) && got > 0 {
				return fmt.Errorf("%w: message cut short", io.ErrUnexpectedEOF)
			}
			return err
		}
		if n == 0 {
			return io.EOF
		}
	}
	return nil
}

func collectFDs(oob []byte, fds *[]int) error {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("%w: control message: %v", errMalformed, err)
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			return fmt.Errorf("%w: SCM_RIGHTS: %v", errMalformed, err)
		}
		*fds = append(*fds, got...)
	}
	return nil
}

func closeFDs(fds []int) {
	for i, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
			fds[i] = -1
		}
	}
}

// takeFD hands the message's single fd to the caller.
func takeFD(req uint32, fds []int) (int, error) {
	if len(fds) != 1 {
		return -1, fmt.Errorf("%w: %s carries %d fds, want 1", errMalformed, requestName(req), len(fds))
	}
	fd := fds[0]
	fds[0] = -1
	return fd, nil
}

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func (p *Port) send(c *net.UnixConn, req uint32, payload []byte) error {
	b := make([]byte, headerSize+len(payload))
	putHeader(b, header{Request: req, Flags: flagVersion | flagReply, Size: uint32(len(payload))})
	copy(b[headerSize:], payload)
	if _, err := c.Write(b); err != nil {
		return fmt.Errorf("reply to %s: %w", requestName(req), err)
	}
	return nil
}
