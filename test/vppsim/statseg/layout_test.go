package statseg

import (
	"encoding/binary"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// rawSegment is a reader written from VPP's stats/shared.h, independent of
// govpp, so the layout is checked against the format rather than against one
// client's tolerance.
type rawSegment struct {
	t *testing.T
	b []byte
}

func mapRaw(t *testing.T, path string) *rawSegment {
	t.Helper()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	// net.UnixConn reads an empty seqpacket message as EOF, so use recvmsg.
	oob := make([]byte, unix.CmsgSpace(4))
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n, oobn int
	var rerr error
	if err := raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), make([]byte, 16), oob, 0)
		return rerr != unix.EAGAIN
	}); err != nil || rerr != nil {
		t.Fatalf("recvmsg: %v %v", err, rerr)
	}
	if n != 0 {
		t.Errorf("server sent %d payload bytes, VPP sends none", n)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages: %v (%d)", err, len(msgs))
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights: %v %v", fds, err)
	}
	defer unix.Close(fds[0])
	var st unix.Stat_t
	if err := unix.Fstat(fds[0], &st); err != nil {
		t.Fatal(err)
	}
	b, err := unix.Mmap(fds[0], 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	return &rawSegment{t: t, b: b}
}

func (r *rawSegment) u64(off uint64) uint64 {
	r.t.Helper()
	if off+8 > uint64(len(r.b)) {
		r.t.Fatalf("read at %#x beyond segment of %#x", off, len(r.b))
	}
	return binary.LittleEndian.Uint64(r.b[off:])
}

// deref turns a stored pointer into an offset, checking it lands inside.
func (r *rawSegment) deref(p uint64) uint64 {
	r.t.Helper()
	base := r.u64(hdrBase)
	if p < base+headerSize || p >= base+uint64(len(r.b)) {
		r.t.Fatalf("pointer %#x outside segment [%#x, %#x)", p, base, base+uint64(len(r.b)))
	}
	return p - base
}

func (r *rawSegment) vecLen(data uint64) uint64 {
	h := r.u64(data - 8)
	return h & 0xffffffff
}

type rawEntry struct {
	typ   uint32
	union uint64
}

func (r *rawSegment) directory() map[string]rawEntry {
	dir := r.deref(r.u64(hdrDirectory))
	out := map[string]rawEntry{}
	for i := range r.vecLen(dir) {
		e := dir + i*144
		name := r.b[e+16 : e+16+128]
		n := 0
		for n < len(name) && name[n] != 0 {
			n++
		}
		out[string(name[:n])] = rawEntry{binary.LittleEndian.Uint32(r.b[e:]), r.u64(e + 8)}
	}
	return out
}

func TestLayoutMatchesVPPFormat(t *testing.T) {
	seg, path := newTestSegment(t)
	in := []InterfaceCounters{sample(0, "local0", 1), sample(1, "memif1/0", 1)}
	if err := seg.Update(in); err != nil {
		t.Fatal(err)
	}
	r := mapRaw(t, path)
	if v := r.u64(hdrVersion); v != 2 {
		t.Fatalf("version %d, want 2", v)
	}
	if r.u64(hdrBase) == 0 || r.u64(hdrInProgress) != 0 || r.u64(hdrEpoch) == 0 {
		t.Fatalf("header base %#x in_progress %d epoch %d", r.u64(hdrBase), r.u64(hdrInProgress), r.u64(hdrEpoch))
	}
	if r.u64(hdrErrorVector) != 0 {
		t.Fatalf("legacy error vector set; readers would switch to version 1 type numbers")
	}
	dir := r.directory()
	types := map[string]uint32{"/if/names": 4, "/if/rx": 3, "/if/tx": 3, "/if/drops": 2, "/if/rx-error": 2,
		"/if/tx-error": 2, "/if/rx-miss": 2, "/if/rx-no-buf": 2, "/if/punt": 2, "/if/ip4": 2, "/if/ip6": 2,
		"/sys/heartbeat": 1, "/sys/num_worker_threads": 1, "/sys/vector_rate_per_worker": 2}
	for name, typ := range types {
		if e, ok := dir[name]; !ok || e.typ != typ {
			t.Errorf("%s: entry %+v present %v, want type %d", name, e, ok, typ)
		}
	}

	names := r.deref(dir["/if/names"].union)
	if n := r.vecLen(names); n != 2 {
		t.Fatalf("/if/names length %d, want 2", n)
	}
	for i, want := range []string{"local0", "memif1/0"} {
		s := r.deref(r.u64(names + uint64(i)*8))
		l := r.vecLen(s)
		if got := string(r.b[s : s+l]); got != want+"\x00" {
			t.Errorf("/if/names[%d] = %q, want %q with its NUL", i, got, want)
		}
	}

	threads := r.deref(dir["/if/rx"].union)
	if n := r.vecLen(threads); n != 1 {
		t.Fatalf("/if/rx has %d thread vectors, want 1", n)
	}
	rx := r.deref(r.u64(threads))
	if rx%64 != 0 {
		t.Errorf("/if/rx counters at %#x, not cache-line aligned", rx)
	}
	if n := r.vecLen(rx); n != 2 {
		t.Fatalf("/if/rx[0] length %d, want 2", n)
	}
	if p, b := r.u64(rx+16), r.u64(rx+24); p != in[1].Rx.Packets || b != in[1].Rx.Bytes {
		t.Errorf("/if/rx[0][1] = %d/%d, want %+v", p, b, in[1].Rx)
	}
	drops := r.deref(r.u64(r.deref(dir["/if/drops"].union)))
	if d := r.u64(drops + 8); d != in[1].Drops {
		t.Errorf("/if/drops[0][1] = %d, want %d", d, in[1].Drops)
	}
}

func TestEpochOnlyMovesOnLayoutChange(t *testing.T) {
	seg, path := newTestSegment(t)
	if err := seg.Update(ifaceSet(2, 1)); err != nil {
		t.Fatal(err)
	}
	r := mapRaw(t, path)
	e0 := r.u64(hdrEpoch)
	if err := seg.Update(ifaceSet(2, 2)); err != nil {
		t.Fatal(err)
	}
	if e := r.u64(hdrEpoch); e != e0 {
		t.Fatalf("value-only update moved epoch %d -> %d; VPP's counters change in place", e0, e)
	}
	if err := seg.Update(ifaceSet(3, 3)); err != nil {
		t.Fatal(err)
	}
	if e := r.u64(hdrEpoch); e != e0+2 {
		t.Fatalf("adding an interface moved epoch %d -> %d, want +2 (at lock and unlock)", e0, e)
	}
	next := ifaceSet(3, 3)
	next[2].Name = "renamed"
	if err := seg.Update(next); err != nil {
		t.Fatal(err)
	}
	if e := r.u64(hdrEpoch); e != e0+4 {
		t.Fatalf("rename moved epoch %d -> %d, want +2 more", e0, e)
	}
	if r.u64(hdrInProgress) != 0 {
		t.Fatal("in_progress left set")
	}
}
