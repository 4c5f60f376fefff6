package vhostuser

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// errUnsupported marks requests refused without dropping the frontend.
var errUnsupported = errors.New("request not supported")

func (p *Port) deviceFeatures() uint64 {
	f := uint64(1)<<featVersion1 | 1<<featProtocolFeatures
	if !p.cfg.DisableMrgRxbuf {
		f |= 1 << featMrgRxbuf
	}
	if p.cfg.MaxQueuePairs > 1 {
		// Frontends select queue pairs through the control queue, which
		// they serve themselves; the backend only sees SET_VRING_ENABLE.
		f |= 1<<featMQ | 1<<featCtrlVQ
	}
	return f
}

const supportedProtoFeatures = 1<<protoMQ | 1<<protoReplyAck

// handle applies one request. A returned error other than errUnsupported
// drops the frontend.
func (p *Port) handle(c *net.UnixConn, h header, pl []byte, fds []int) error {
	reply, up, ack, err := p.applyLocked(h, pl, fds)
	if errors.Is(err, errFrontendFault) {
		return err
	}
	p.setLink(up)
	if up {
		// Frames may have been queued before the rings were complete.
		p.signalRx()
	}

	if errors.Is(err, errUnsupported) {
		p.log.Warn("vhost-user request refused", "request", requestName(h.Request), "err", err)
		if ack && reply == nil {
			return p.send(c, h.Request, u64(1))
		}
		return nil
	}
	if err != nil {
		return err
	}
	if reply == nil && ack {
		reply = u64(0)
	}
	if reply != nil {
		return p.send(c, h.Request, reply)
	}
	return nil
}

// errFrontendFault marks a request whose handling faulted on the frontend's
// memory (or panicked on its data).
var errFrontendFault = errors.New("fault on the frontend's memory")

// applyLocked applies a request under the port lock. Applying touches
// guest memory (ring indexes when a ring starts), so a frontend that shrank
// its memory file must cost its connection, not the process: faults become
// panics here, and the lock is released by defer whatever happens.
func (p *Port) applyLocked(h header, pl []byte, fds []int) (reply []byte, up, ack bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer func(old bool) {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault && onBurstPanic != nil {
				onBurstPanic(r)
			}
			p.clearRingViews()
			for i := range p.rings {
				p.rings[i].ready = false
			}
			reply, up, ack = nil, false, false
			err = fmt.Errorf("%w: %s: %v", errFrontendFault, requestName(h.Request), r)
		}
	}(debug.SetPanicOnFault(true))
	reply, err = p.apply(h, pl, fds)
	if rerr := p.refreshLocked(); err == nil || errors.Is(err, errUnsupported) {
		if rerr != nil {
			err = rerr
		}
	}
	up = len(p.rings) > 1 && p.rings[0].ready && p.rings[1].ready
	ack = p.protoFeatures&(1<<protoReplyAck) != 0 && h.needReply()
	return reply, up, ack, err
}

// ringState decodes a vring-state payload and finds the ring it names.
func (p *Port) ringState(req uint32, pl []byte) (vringState, *vring, error) {
	s, err := decodeVringState(req, pl)
	if err != nil {
		return s, nil, err
	}
	v, err := p.ring(req, s.Index)
	return s, v, err
}

func (p *Port) ring(req uint32, idx uint32) (*vring, error) {
	if idx >= uint32(len(p.rings)) {
		return nil, fmt.Errorf("%w: %s: vring %d, have %d", errMalformed, requestName(req), idx, len(p.rings))
	}
	return &p.rings[idx], nil
}

// apply runs under p.mu and returns the reply payload, if the request has one.
func (p *Port) apply(h header, pl []byte, fds []int) ([]byte, error) {
	req := h.Request
	switch req {
	case reqGetFeatures:
		return u64(p.deviceFeatures()), nil
	case reqSetFeatures:
		f, err := decodeU64(req, pl)
		if err != nil {
			return nil, err
		}
		if extra := f &^ p.deviceFeatures(); extra != 0 {
			return nil, fmt.Errorf("%w: SET_FEATURES %#x: bits %#x not offered", errMalformed, f, extra)
		}
		p.features = f
		p.mrg = f&(1<<featMrgRxbuf) != 0
		p.hdrLen = 10
		if p.mrg || f&(1<<featVersion1) != 0 {
			p.hdrLen = 12
		}
		return nil, nil
	case reqGetProtocolFeatures:
		return u64(supportedProtoFeatures), nil
	case reqSetProtocolFeatures:
		f, err := decodeU64(req, pl)
		if err != nil {
			return nil, err
		}
		if extra := f &^ supportedProtoFeatures; extra != 0 {
			return nil, fmt.Errorf("%w: SET_PROTOCOL_FEATURES %#x: bits %#x not offered", errMalformed, f, extra)
		}
		p.protoFeatures = f
		return nil, nil
	case reqGetQueueNum:
		return u64(uint64(p.cfg.MaxQueuePairs)), nil
	case reqSetOwner:
		return nil, nil
	case reqResetOwner:
		p.resetLocked()
		return nil, nil
	case reqSetMemTable:
		return nil, p.setMemTable(pl, fds)
	case reqSetVringNum:
		s, v, err := p.ringState(req, pl)
		if err != nil {
			return nil, err
		}
		if s.Num == 0 || s.Num > maxRingSize || s.Num&(s.Num-1) != 0 {
			return nil, fmt.Errorf("%w: SET_VRING_NUM vring %d: size %d", errMalformed, s.Index, s.Num)
		}
		if v.ready {
			return nil, fmt.Errorf("%w: SET_VRING_NUM vring %d: ring is running", errMalformed, s.Index)
		}
		v.num = uint16(s.Num)
		v.desc, v.avail, v.used = nil, nil, nil
		return nil, nil
	case reqSetVringAddr:
		a, err := decodeVringAddr(pl)
		if err != nil {
			return nil, err
		}
		v, err := p.ring(req, a.Index)
		if err != nil {
			return nil, err
		}
		if v.ready {
			return nil, fmt.Errorf("%w: SET_VRING_ADDR vring %d: ring is running", errMalformed, a.Index)
		}
		v.addr, v.addrSet = a, true
		v.desc, v.avail, v.used = nil, nil, nil
		// Check now, as VPP does, so the frontend learns at this message.
		if err := v.translate(p.mem); err != nil {
			return nil, fmt.Errorf("SET_VRING_ADDR: %w", err)
		}
		return nil, nil
	case reqSetVringBase:
		s, v, err := p.ringState(req, pl)
		if err != nil {
			return nil, err
		}
		if s.Num > 0xffff || v.ready {
			return nil, fmt.Errorf("%w: SET_VRING_BASE vring %d: base %d (running %v)", errMalformed, s.Index, s.Num, v.ready)
		}
		v.lastAvail, v.usedIdx = uint16(s.Num), uint16(s.Num)
		return nil, nil
	case reqGetVringBase:
		s, v, err := p.ringState(req, pl)
		if err != nil {
			return nil, err
		}
		// The frontend reads the base to resume later: the ring stops here.
		v.ready, v.kickN = false, false
		if v.kick != nil {
			v.kick.Close()
			v.kick = nil
		}
		out := make([]byte, 8)
		binary.LittleEndian.PutUint32(out, s.Index)
		binary.LittleEndian.PutUint32(out[4:], uint32(v.lastAvail))
		return out, nil
	case reqSetVringKick, reqSetVringCall, reqSetVringErr:
		return nil, p.setVringFD(req, pl, fds)
	case reqSetVringEnable:
		s, v, err := p.ringState(req, pl)
		if err != nil {
			return nil, err
		}
		if s.Num > 1 {
			return nil, fmt.Errorf("%w: SET_VRING_ENABLE vring %d: %d", errMalformed, s.Index, s.Num)
		}
		v.enabled = s.Num == 1
		return nil, nil
	case reqSetLogBase, reqSetLogFD:
		return nil, fmt.Errorf("%w: %s: dirty logging (live migration) not offered", errUnsupported, requestName(req))
	default:
		return nil, fmt.Errorf("%w: %s", errUnsupported, requestName(req))
	}
}

func (p *Port) setMemTable(pl []byte, fds []int) error {
	descs, err := decodeMemTable(pl)
	if err != nil {
		return err
	}
	taken := make([]int, len(fds))
	copy(taken, fds)
	for i := range fds {
		fds[i] = -1
	}
	// Map the new table first: on failure the old one stays in effect.
	mt, err := mapMemTable(descs, taken)
	if err != nil {
		return err
	}
	// No ring view may outlive the memory it points into: drop them all
	// before the old table is unmapped, then redo them in the new one.
	p.clearRingViews()
	old := p.mem
	p.mem = mt
	old.unmap()
	// Rings keep their addresses across a new table; their views are redone.
	for i := range p.rings {
		if err := p.rings[i].translate(mt); err != nil {
			// Nothing may run on a ring without its views: the data path
			// would index nil slices (or, before, unmapped memory).
			p.clearRingViews()
			for j := range p.rings {
				p.rings[j].ready = false
			}
			return fmt.Errorf("SET_MEM_TABLE: %w", err)
		}
	}
	p.log.Info("vhost-user memory table set", "regions", len(descs))
	return nil
}

func (p *Port) setVringFD(req uint32, pl []byte, fds []int) error {
	u, err := decodeU64(req, pl)
	if err != nil {
		return err
	}
	if u&^uint64(vringIdxMsk|vringNoFD) != 0 {
		return fmt.Errorf("%w: %s: payload %#x", errMalformed, requestName(req), u)
	}
	v, err := p.ring(req, uint32(u&vringIdxMsk))
	if err != nil {
		return err
	}
	fd := -1
	if u&vringNoFD == 0 {
		if fd, err = takeFD(req, fds); err != nil {
			return err
		}
	} else if len(fds) != 0 {
		return fmt.Errorf("%w: %s with NOFD carries %d fds", errMalformed, requestName(req), len(fds))
	}
	switch req {
	case reqSetVringCall:
		if v.call >= 0 {
			unix.Close(v.call)
		}
		v.call = fd
	case reqSetVringErr:
		if v.err >= 0 {
			unix.Close(v.err)
		}
		v.err = fd
	case reqSetVringKick:
		if v.kick != nil {
			v.kick.Close()
			v.kick = nil
		}
		if fd >= 0 {
			// Non-blocking so the runtime poller owns reads and Close
			// wakes the watcher goroutine.
			if err := unix.SetNonblock(fd, true); err != nil {
				unix.Close(fd)
				return fmt.Errorf("SET_VRING_KICK vring %d: %w", u&vringIdxMsk, err)
			}
			v.kick = os.NewFile(uintptr(fd), "vhost-kick")
			if u&1 == 1 { // odd rings are guest TX: wake RxBurst callers
				p.wg.Add(1)
				go p.watchKick(v.kick)
			}
		}
		v.kickN = true
		// Without protocol features a ring is enabled as soon as it starts.
		if p.features&(1<<featProtocolFeatures) == 0 {
			v.enabled = true
		}
	}
	return nil
}

func (p *Port) watchKick(f *os.File) {
	defer p.wg.Done()
	var b [8]byte
	for {
		if _, err := f.Read(b[:]); err != nil {
			return
		}
		p.signalRx()
	}
}

func (p *Port) signalRx() {
	select {
	case p.rxReady <- struct{}{}:
	default:
	}
}

// refreshLocked starts rings that became complete and stops incomplete ones.
func (p *Port) refreshLocked() error {
	for i := range p.rings {
		v := &p.rings[i]
		want := v.kickN && v.enabled && v.num > 0 && v.addrSet && p.mem != nil
		if want && v.desc == nil {
			if err := v.translate(p.mem); err != nil {
				v.ready = false
				return err
			}
		}
		if want && !v.ready {
			// A frontend resuming a ring may have consumed used entries we
			// never saw; trust the ring, as DPDK and VPP do.
			if u := load16(v.used, 2); u != v.usedIdx {
				p.log.Info("vhost-user vring resynced to used index", "vring", i, "base", v.usedIdx, "used", u)
				v.usedIdx, v.lastAvail = u, u
			}
			v.usedFlags = 0
			v.publishUsed()
		}
		v.ready = want
	}
	return nil
}

// clearRingViews forgets every ring's view of frontend memory.
func (p *Port) clearRingViews() {
	for i := range p.rings {
		v := &p.rings[i]
		v.desc, v.avail, v.used = nil, nil, nil
	}
}
