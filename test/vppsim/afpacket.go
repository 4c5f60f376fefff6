package vppsim

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// afpDriver is an AF_PACKET interface's packet I/O: one raw packet socket
// bound to the host interface (a veth end in the tests), as VPP's af_packet
// plugin opens (VPP maps TPACKET rings; vppsim reads and writes the socket).
// Frames the socket sends are not read back (PACKET_IGNORE_OUTGOING).
type afpDriver struct {
	port *Port
	host string
	fd   int

	wmu    sync.Mutex // one writer at a time keeps frames whole
	closed chan struct{}
	once   sync.Once
	done   sync.WaitGroup
}

const (
	// afpPollMs bounds how long the receive loop blocks before it checks for Close.
	afpPollMs = 100
	// afpRcvBuf is the socket's receive buffer: VPP's TPACKET ring holds
	// thousands of frames, the kernel's default socket buffer a few hundred
	// small ones, which a descheduled receive loop overflows.
	afpRcvBuf = 8 << 20
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (dp *dataplane) newAfPacketDriver(p *Port, host string) (Driver, error) {
	ifi, err := net.InterfaceByName(host)
	if err != nil {
		return nil, fmt.Errorf("af_packet %s: %w", host, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("af_packet %s: packet socket: %w", host, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("af_packet %s: bind: %w", host, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, afpRcvBuf); err != nil {
		// Without CAP_NET_ADMIN: as much as net.core.rmem_max allows.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, afpRcvBuf)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		// Older kernels: outgoing frames are skipped by their packet type below.
		dp.log.Debug("af_packet: PACKET_IGNORE_OUTGOING unavailable", "host_if", host, "err", err)
	}
	d := &afpDriver{port: p, host: host, fd: fd, closed: make(chan struct{})}
	d.done.Add(1)
	dp.wg.Add(1)
	go func() {
		defer dp.wg.Done()
		defer d.done.Done()
		d.rxLoop(dp)
	}()
	dp.log.Info("af_packet socket open", "host_if", host, "ifindex", ifi.Index)
	return d, nil
}

func (d *afpDriver) rxLoop(dp *dataplane) {
	full, work := rxBuffers()
	pfd := []unix.PollFd{{Fd: int32(d.fd), Events: unix.POLLIN}}
	lastStats := time.Now()
	for {
		select {
		case <-d.closed:
			d.countOverflow()
			return
		default:
		}
		if time.Since(lastStats) >= afpStatsEvery {
			d.countOverflow()
			lastStats = time.Now()
		}
		n := 0
		for n < len(work) {
			m, from, err := unix.Recvfrom(d.fd, full[n], unix.MSG_DONTWAIT)
			if err != nil {
				if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
					dp.log.Warn("af_packet receive failed", "host_if", d.host, "err", err)
				}
				break
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			work[n] = full[n][:m]
			n++
		}
		if n > 0 {
			d.port.ReceiveBurst(work[:n])
			continue
		}
		if _, err := unix.Poll(pfd, afpPollMs); err != nil && !errors.Is(err, unix.EINTR) {
			dp.log.Warn("af_packet poll failed", "host_if", d.host, "err", err)
			return
		}
	}
}

// afpStatsEvery is how often the kernel's drop count of the socket is read.
const afpStatsEvery = 200 * time.Millisecond

// countOverflow adds the frames the kernel dropped because the socket's
// buffer was full since the last call (PACKET_STATISTICS resets on read).
func (d *afpDriver) countOverflow() {
	st, err := unix.GetsockoptTpacketStats(d.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err == nil && st.Drops > 0 {
		d.port.rxPackets.Add(uint64(st.Drops))
		d.port.drop(DropRxOverflow, int(st.Drops))
	}
}

// Transmit writes one frame to the host interface.
func (d *afpDriver) Transmit(frame []byte) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	select {
	case <-d.closed:
		return ErrLinkDown
	default:
	}
	for {
		_, err := unix.Write(d.fd, frame)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.ENOBUFS):
			return ErrTxFull
		case errors.Is(err, unix.ENETDOWN), errors.Is(err, unix.ENXIO):
			return ErrLinkDown
		}
		return fmt.Errorf("af_packet %s write: %w", d.host, err)
	}
}

// Close stops the receive loop and closes the socket.
func (d *afpDriver) Close() error {
	var err error
	d.once.Do(func() {
		close(d.closed)
		d.done.Wait()
		d.wmu.Lock()
		err = unix.Close(d.fd)
		d.wmu.Unlock()
	})
	return err
}
