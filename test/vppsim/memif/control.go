package memif

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ctrl is one control channel: a connected SEQPACKET socket carrying memif_msg_t
// messages, each optionally with one file descriptor (SCM_RIGHTS).
type ctrl struct {
	uc     *net.UnixConn
	sendMu sync.Mutex
	wbuf   [msgSize]byte
	rbuf   [2 * msgSize]byte
	oob    []byte
}

func newCtrl(uc *net.UnixConn) *ctrl {
	return &ctrl{uc: uc, oob: make([]byte, unix.CmsgSpace(4*4))}
}

func (c *ctrl) send(m *message, fd int) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	m.encode(&c.wbuf)
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	if _, _, err := c.uc.WriteMsgUnix(c.wbuf[:], oob, nil); err != nil {
		return fmt.Errorf("send %v: %w", m.typ, err)
	}
	return nil
}

// sendDisconnect tells the peer why we leave; best effort, the socket closes next.
func (c *ctrl) sendDisconnect(reason string) {
	_ = c.uc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.send(&message{typ: msgDisconnect, disconnect: disconnectMsg{reason: reason}}, -1)
}

// errPeerDisconnect carries the reason a peer gave in its DISCONNECT message.
type errPeerDisconnect struct{ reason string }

func (e *errPeerDisconnect) Error() string { return "peer disconnected: " + e.reason }

// recv reads one message. The returned fd (or -1) belongs to the caller; any further
// descriptors the peer attached are closed here.
func (c *ctrl) recv() (message, int, error) {
	n, oobn, flags, _, err := c.uc.ReadMsgUnix(c.rbuf[:], c.oob)
	if err != nil {
		return message{}, -1, fmt.Errorf("receive control message: %w", err)
	}
	fd := -1
	if oobn > 0 {
		fd = takeFD(c.oob[:oobn])
	}
	fail := func(err error) (message, int, error) {
		if fd >= 0 {
			unix.Close(fd)
		}
		return message{}, -1, err
	}
	if n == 0 {
		return fail(fmt.Errorf("receive control message: %w", net.ErrClosed))
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		return fail(fmt.Errorf("%w: truncated (%d bytes, flags %#x)", ErrMalformed, n, flags))
	}
	m, err := parseMessage(c.rbuf[:n])
	if err != nil {
		return fail(err)
	}
	return m, fd, nil
}

// takeFD returns the first descriptor passed in oob and closes the rest.
func takeFD(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1
	}
	fd := -1
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		for _, f := range fds {
			if fd < 0 {
				fd = f
			} else {
				unix.Close(f)
			}
		}
	}
	return fd
}

// connection is one established (or establishing) memif link: the control channel plus
// everything mapped and opened for it. Its owner goroutine tears it down.
type connection struct {
	cc       *ctrl
	regions  []*region
	mems     [][]byte
	rx, tx   []*Queue
	ringFDs  []int // interrupt fds not yet owned by a queue
	peerName string
	peerIf   string
	failOnce sync.Once
	reasonMu sync.Mutex
	reason   string // why it went down, set by fail before the socket closes
	done     chan struct{}
}

func newConnection(cc *ctrl) *connection {
	return &connection{cc: cc, done: make(chan struct{})}
}

// fail disconnects with reason: DISCONNECT to the peer, then the socket closes, which
// ends the owner's read loop. Safe from any goroutine, only the first reason counts.
func (c *connection) fail(reason string) {
	c.failOnce.Do(func() {
		c.reasonMu.Lock()
		c.reason = reason
		c.reasonMu.Unlock()
		c.cc.sendDisconnect(reason)
		c.cc.close()
	})
}

// close drains what the peer sent and we did not read, then closes. Closing a unix
// socket with unread messages resets the peer's side, which would lose our DISCONNECT.
func (c *ctrl) close() {
	if rc, err := c.uc.SyscallConn(); err == nil {
		_ = rc.Read(func(fd uintptr) bool {
			var buf [msgSize]byte
			oob := make([]byte, unix.CmsgSpace(4*4))
			for range 64 {
				_, oobn, _, _, err := unix.Recvmsg(int(fd), buf[:], oob, unix.MSG_DONTWAIT)
				if err != nil {
					break
				}
				if oobn > 0 {
					if f := takeFD(oob[:oobn]); f >= 0 {
						unix.Close(f)
					}
				}
			}
			return true
		})
	}
	_ = c.uc.Close()
}

// teardown stops every queue (waiting for bursts in flight) before unmapping memory.
func (c *connection) teardown() {
	_ = c.cc.uc.Close()
	for _, q := range c.rx {
		q.close()
	}
	for _, q := range c.tx {
		q.close()
	}
	for _, fd := range c.ringFDs {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	c.ringFDs = nil
	for _, r := range c.regions {
		r.close()
	}
	c.regions, c.mems = nil, nil
}

// downReason turns the read loop's end into a reason for logs and link events.
func (c *connection) downReason(err error) string {
	c.reasonMu.Lock()
	reason := c.reason
	c.reasonMu.Unlock()
	if reason != "" {
		return reason
	}
	var pd *errPeerDisconnect
	if errors.As(err, &pd) {
		return pd.Error()
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return "peer closed the control channel"
	}
	return err.Error()
}

// readLoop runs after CONNECTED until the channel ends: only DISCONNECT is legal now.
func (c *connection) readLoop() error {
	for {
		m, fd, err := c.cc.recv()
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				c.fail("malformed control message")
			}
			return err
		}
		if fd >= 0 {
			unix.Close(fd)
		}
		if m.typ == msgDisconnect {
			return &errPeerDisconnect{reason: m.disconnect.reason}
		}
		c.fail(fmt.Sprintf("unexpected %v after connect", m.typ))
		return fmt.Errorf("unexpected %v after connect", m.typ)
	}
}
