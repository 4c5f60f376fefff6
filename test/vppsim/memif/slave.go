package memif

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// runSlave dials the master until ctx ends, reconnecting after every disconnect.
func (i *Interface) runSlave(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	pause := i.cfg.RetryInterval
	for {
		err := i.slaveSession(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			i.log.Debug("memif connect attempt failed", "err", err)
		}
		if err == nil {
			pause = i.cfg.RetryInterval // it was up: reconnect at the quick pace
		}
		t.Reset(pause)
		if err != nil {
			pause = nextPause(pause, i.cfg.RetryInterval, i.cfg.RetryMax)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (i *Interface) slaveSession(ctx context.Context) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unixpacket", i.path)
	if err != nil {
		return fmt.Errorf("dial %s: %w", i.path, err)
	}
	uc := c.(*net.UnixConn)
	conn := newConnection(newCtrl(uc))
	if err := i.claim(conn); err != nil {
		uc.Close()
		return err
	}
	_ = uc.SetDeadline(time.Now().Add(i.cfg.HandshakeTimeout))
	if err := i.slaveHandshake(conn); err != nil {
		conn.fail(err.Error())
		i.release(conn, err.Error())
		return err
	}
	_ = uc.SetDeadline(time.Time{})
	i.setUp(conn)
	err = conn.readLoop()
	i.release(conn, conn.downReason(err))
	return nil
}

// expect reads the next message and requires type want; a DISCONNECT becomes the error.
func (conn *connection) expect(want msgType) (message, error) {
	m, fd, err := conn.cc.recv()
	if err != nil {
		return m, err
	}
	if fd >= 0 {
		unix.Close(fd)
	}
	switch m.typ {
	case want:
		return m, nil
	case msgDisconnect:
		return m, &errPeerDisconnect{reason: m.disconnect.reason}
	}
	return m, fmt.Errorf("expected %v, got %v", want, m.typ)
}

func (conn *connection) request(m *message, fd int) error {
	if err := conn.cc.send(m, fd); err != nil {
		return err
	}
	_, err := conn.expect(msgAck)
	if err != nil {
		return fmt.Errorf("%v: %w", m.typ, err)
	}
	return nil
}

// slaveHandshake creates the region and rings sized by what HELLO allows, then walks
// INIT, ADD_REGION, ADD_RING..., CONNECT, one acknowledged message at a time as VPP
// and DPDK do.
func (i *Interface) slaveHandshake(conn *connection) error {
	m, err := conn.expect(msgHello)
	if err != nil {
		return err
	}
	h := m.hello
	if h.minVersion > Version || h.maxVersion < Version {
		return fmt.Errorf("incompatible memif version %#x..%#x", h.minVersion, h.maxVersion)
	}
	conn.peerName = h.name
	ns := min(i.cfg.NumS2M, int(h.maxS2M)+1)
	nm := min(i.cfg.NumM2S, int(h.maxM2S)+1)
	log2 := min(i.cfg.Log2RingSize, h.maxLog2RingSize)
	size := uint32(1) << log2
	bufSize := i.cfg.BufferSize

	nr := uint32(ns + nm)
	ringBytes := uint32(ringHdrSize + descSize*size)
	bufStart := (nr*ringBytes + 63) &^ 63
	total := bufStart + nr*size*bufSize
	// INIT before the region exists: a master that refuses the id (not
	// created yet, a slave retrying) costs no shared memory.
	in := message{typ: msgInit, init: initMsg{version: Version, id: i.cfg.ID, mode: i.cfg.Mode, name: i.cfg.AppName}}
	copy(in.init.secret[:], i.cfg.Secret)
	if err := conn.request(&in, -1); err != nil {
		return err
	}
	reg, err := createRegion(fmt.Sprintf("memif%d region 0", i.cfg.ID), int(total))
	if err != nil {
		return err
	}
	conn.regions = append(conn.regions, reg)
	conn.mems = append(conn.mems, reg.mem)

	type slaveRing struct {
		r       *ring
		off     uint32
		bufBase uint32
		fdIdx   int
	}
	rings := make([]slaveRing, nr)
	for k := range rings {
		off := uint32(k) * ringBytes
		r, err := newRing(reg.mem, uint64(off), log2)
		if err != nil {
			return err
		}
		var flags uint16
		if k >= ns {
			flags = ringFlagMask // our receive rings start in polling mode
		}
		r.init(flags)
		base := bufStart + uint32(k)*size*bufSize
		for s := range r.descs {
			r.descs[s] = desc{offset: base + uint32(s)*bufSize, length: bufSize}
		}
		fd, err := newEventfd()
		if err != nil {
			return err
		}
		conn.ringFDs = append(conn.ringFDs, fd)
		rings[k] = slaveRing{r: r, off: off, bufBase: base, fdIdx: len(conn.ringFDs) - 1}
	}

	if err := conn.request(&message{typ: msgAddRegion, addRegion: addRegionMsg{index: 0, size: uint64(total)}}, reg.fd); err != nil {
		return err
	}
	for k, sr := range rings {
		ar := addRingMsg{index: uint16(k), offset: sr.off, log2RingSize: log2}
		if k < ns {
			ar.flags = addRingS2M
		} else {
			ar.index = uint16(k - ns)
		}
		if err := conn.request(&message{typ: msgAddRing, addRing: ar}, conn.ringFDs[sr.fdIdx]); err != nil {
			return err
		}
	}
	if err := conn.cc.send(&message{typ: msgConnect, ifName: i.cfg.Name}, -1); err != nil {
		return err
	}
	m, err = conn.expect(msgConnected)
	if err != nil {
		var pd *errPeerDisconnect
		if errors.As(err, &pd) {
			return err
		}
		return fmt.Errorf("CONNECT: %w", err)
	}
	conn.peerIf = m.ifName
	// Queues start from the ring state after CONNECTED: a DPDK master resets head and
	// tail of every ring while handling CONNECT, so buffers offered earlier would be lost.
	for k, sr := range rings {
		kind, idx := slaveTx, k
		if k >= ns {
			kind, idx = slaveRx, k-ns
		}
		q, err := newQueue(kind, idx, sr.r, conn.mems, conn.ringFDs[sr.fdIdx], conn.fail)
		if err != nil {
			return err
		}
		conn.ringFDs[sr.fdIdx] = -1
		q.bufBase, q.bufSize = sr.bufBase, bufSize
		if kind == slaveTx {
			q.cursor = sr.r.head()
			conn.tx = append(conn.tx, q)
			continue
		}
		q.cursor, q.head = sr.r.tail(), sr.r.head()
		if q.head-q.cursor > sr.r.size {
			return fmt.Errorf("CONNECTED: ring m2s %d has head %d and tail %d", idx, q.head, q.cursor)
		}
		q.refill() // offer every buffer to the master
		conn.rx = append(conn.rx, q)
	}
	return nil
}

// nextPause is the pause after another failed attempt: doubled up to
// limit, or base when limit is not above it.
func nextPause(cur, base, limit time.Duration) time.Duration {
	if limit <= base {
		return base
	}
	return min(2*cur, limit)
}
