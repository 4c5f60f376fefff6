package statseg

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vppmesh/vppmesh/test/vppsim/internal/sockfile"
)

// sendTimeout bounds how long a client that never reads can hold the accept
// loop.
const sendTimeout = time.Second

// listen binds the seqpacket socket VPP uses for stats and starts serving.
func (s *Segment) listen() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("statseg: create socket dir for %s: %w", s.path, err)
	}
	// A socket file left by a previous run would make bind fail; VPP removes
	// it too. Anything that is not a socket is left alone.
	if err := sockfile.RemoveIfStale(s.path); err != nil {
		return fmt.Errorf("statseg: %w", err)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: s.path, Net: "unixpacket"})
	if err != nil {
		return fmt.Errorf("statseg: listen on %s: %w", s.path, err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.serve()
	return nil
}

// serve hands the memfd to every client that connects, then hangs up: the
// client needs nothing else, it maps the segment and reads it on its own.
func (s *Segment) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept stats client", "err", err)
			// Accept errors such as EMFILE persist for a moment; don't spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.sendFD(conn)
	}
}

func (s *Segment) sendFD(conn *net.UnixConn) {
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		s.log.Warn("stats client deadline", "err", err)
		return
	}
	// VPP sends no payload, only the descriptor. net.UnixConn.WriteMsgUnix and
	// unix.Sendmsg add a dummy byte on non-datagram sockets, so the message is
	// built here.
	raw, err := conn.SyscallConn()
	if err != nil {
		s.log.Warn("stats client raw conn", "err", err)
		return
	}
	var sendErr error
	err = raw.Write(func(fd uintptr) bool {
		sendErr = sendRights(fd, s.fd)
		return sendErr != unix.EAGAIN
	})
	if err == nil {
		err = sendErr
	}
	if err != nil {
		s.log.Warn("send stats segment fd", "err", err)
		return
	}
	s.log.Debug("stats client served")
}

// sendRights sends a message with no payload carrying one descriptor.
func sendRights(sock uintptr, fd int) error {
	oob := unix.UnixRights(fd)
	var msg unix.Msghdr
	msg.Control = &oob[0]
	msg.SetControllen(len(oob))
	_, _, errno := unix.Syscall(unix.SYS_SENDMSG, sock, uintptr(unsafe.Pointer(&msg)), unix.MSG_NOSIGNAL)
	if errno != 0 {
		return errno
	}
	return nil
}
