package ifplugin

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.fd.io/govpp/binapi/memif"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
)

// fakeSockets records memif socket registrations like VPP does: an id can
// be added once and deleted only while registered.
type fakeSockets struct {
	memif.RPCService
	mu    sync.Mutex
	files map[uint32]string
	calls int
	fail  bool
}

func (f *fakeSockets) MemifSocketFilenameAddDelV2(_ context.Context, in *memif.MemifSocketFilenameAddDelV2) (*memif.MemifSocketFilenameAddDelV2Reply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail {
		return nil, errors.New("VPPApiError: -1")
	}
	_, exists := f.files[in.SocketID]
	switch {
	case in.IsAdd && exists:
		return nil, errors.New("socket id already registered")
	case !in.IsAdd && !exists:
		return nil, errors.New("socket id not registered")
	case in.IsAdd:
		f.files[in.SocketID] = in.SocketFilename
	default:
		delete(f.files, in.SocketID)
	}
	return &memif.MemifSocketFilenameAddDelV2Reply{SocketID: in.SocketID}, nil
}

func newTestPlugin(t *testing.T) (*Plugin, *fakeSockets) {
	t.Helper()
	p := New(Options{})
	f := &fakeSockets{files: map[uint32]string{}}
	p.sockets.mem = f
	return p, f
}

func TestMemifSocketsLowestFreeRefcountAndFree(t *testing.T) {
	p, f := newTestPlugin(t)
	ctx := context.Background()
	s := p.sockets

	if id, err := s.acquire(ctx, ""); err != nil || id != 0 {
		t.Fatalf("default socket: id %d err %v, want 0", id, err)
	}
	if id, _ := s.acquire(ctx, DefaultMemifSocket); id != 0 {
		t.Fatalf("explicit default socket file got id %d, want 0", id)
	}
	a, _ := s.acquire(ctx, "/run/a.sock")
	b, _ := s.acquire(ctx, "/run/b.sock")
	a2, _ := s.acquire(ctx, "/run/a.sock")
	if a != 1 || b != 2 || a2 != 1 {
		t.Fatalf("ids a=%d b=%d a again=%d, want 1 2 1", a, b, a2)
	}
	if f.calls != 2 {
		t.Fatalf("%d registrations sent, want 2 (one per new file)", f.calls)
	}
	// First user of a goes: still registered; second goes: freed in VPP.
	if err := s.release(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.files[1]; !ok {
		t.Fatal("socket 1 removed while a memif still uses it")
	}
	if err := s.release(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.files[1]; ok {
		t.Fatal("socket 1 still registered after its last memif went")
	}
	// The freed id is the lowest free one again.
	if c, _ := s.acquire(ctx, "/run/c.sock"); c != 1 {
		t.Fatalf("new socket got id %d, want reused 1", c)
	}
	// Id 0 belongs to VPP: never unregistered.
	_ = s.release(ctx, 0)
	_ = s.release(ctx, 0)
	if f.calls != 4 {
		t.Fatalf("%d registration calls, want 4 (id 0 is never deleted)", f.calls)
	}
}

func TestMemifSocketsParallel(t *testing.T) {
	p, f := newTestPlugin(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	ids := make([]uint32, 40)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			file := "/run/even.sock"
			if i%2 == 1 {
				file = "/run/odd.sock"
			}
			id, err := p.sockets.acquire(ctx, file)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	if len(f.files) != 2 || f.calls != 2 {
		t.Fatalf("parallel acquires registered %v with %d calls, want 2 files in 2 calls", f.files, f.calls)
	}
	for i := range ids {
		if ids[i] != ids[i%2] {
			t.Fatalf("memif %d got socket id %d, same file as memif %d got %d", i, ids[i], i%2, ids[i%2])
		}
	}
	for i := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.sockets.release(ctx, ids[i]) }()
	}
	wg.Wait()
	if len(f.files) != 0 {
		t.Fatalf("sockets left registered after all memifs released: %v", f.files)
	}
}

func TestMemifSocketRegistrationFailureKeepsNoState(t *testing.T) {
	p, f := newTestPlugin(t)
	f.fail = true
	if _, err := p.sockets.acquire(context.Background(), "/run/x.sock"); err == nil || !strings.Contains(err.Error(), "memif_socket_filename_add_del_v2") {
		t.Fatalf("err = %v, want one naming memif_socket_filename_add_del_v2", err)
	}
	f.fail = false
	if id, _ := p.sockets.acquire(context.Background(), "/run/x.sock"); id != 1 {
		t.Fatalf("after a failed registration the file got id %d, want 1", id)
	}
}

func memifIf(name string, id uint32, sock string) *ifmodel.Interface {
	return &ifmodel.Interface{Name: name, Type: ifmodel.Interface_MEMIF, Enabled: true,
		Link: &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{Id: id, SocketFilename: sock}}}
}

func TestValidate(t *testing.T) {
	p, _ := newTestPlugin(t)
	good := []*ifmodel.Interface{
		{Name: "lo", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, IpAddresses: []string{"10.0.0.1/24", "2001:db8::1/64"}, PhysAddress: "02:00:00:00:00:01"},
		memifIf("m", 1, ""),
		{Name: "m0", Type: ifmodel.Interface_MEMIF},
		{Name: "t", Type: ifmodel.Interface_TAP, Link: &ifmodel.Interface_Tap{Tap: &ifmodel.TapLink{Version: 2, HostIfName: "tap-host"}}},
		{Name: "af", Type: ifmodel.Interface_AF_PACKET, Link: &ifmodel.Interface_Afpacket{Afpacket: &ifmodel.AfpacketLink{HostIfName: "veth1"}}},
		{Name: "vh", Type: ifmodel.Interface_VHOST_USER, Link: &ifmodel.Interface_VhostUser{VhostUser: &ifmodel.VhostUserLink{SocketFilename: "/run/vm.sock", Server: true}}},
		{Name: strings.Repeat("n", 63), Type: ifmodel.Interface_SOFTWARE_LOOPBACK},
		{Name: "vrf", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Vrf: 2, IpAddresses: []string{"198.51.100.1/24"}},
		{Name: "un", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Unnumbered: &ifmodel.Interface_Unnumbered{InterfaceWithIp: "lo"}},
		{Name: "rx", Type: ifmodel.Interface_MEMIF, RxModes: []*ifmodel.Interface_RxMode{{Mode: ifmodel.Interface_RxMode_POLLING}, {Queue: 1, Mode: ifmodel.Interface_RxMode_INTERRUPT}, {DefaultMode: true, Mode: ifmodel.Interface_RxMode_ADAPTIVE}}},
		{Name: "sub", Type: ifmodel.Interface_SUB_INTERFACE, Link: &ifmodel.Interface_Sub{Sub: &ifmodel.SubInterface{ParentName: "p", SubId: 4094, TagRwOption: ifmodel.SubInterface_POP1}}},
		{Name: "tap-ms", Type: ifmodel.Interface_TAP, Link: &ifmodel.Interface_Tap{Tap: &ifmodel.TapLink{Version: 2, ToMicroservice: "cnf1"}}},
	}
	for _, v := range good {
		if err := p.validate(Key(v.Name), v); err != nil {
			t.Errorf("%s rejected: %v", v.Name, err)
		}
	}
	bad := map[string]*ifmodel.Interface{
		"empty name":      {Type: ifmodel.Interface_SOFTWARE_LOOPBACK},
		"64-byte name":    {Name: strings.Repeat("n", 64), Type: ifmodel.Interface_SOFTWARE_LOOPBACK},
		"dhcp":            {Name: "x", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, SetDhcpClient: true},
		"unnumbered self": {Name: "x", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Unnumbered: &ifmodel.Interface_Unnumbered{InterfaceWithIp: "x"}},
		"unnumbered none": {Name: "x", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Unnumbered: &ifmodel.Interface_Unnumbered{}},
		"unnumbered+ip":   {Name: "x", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, IpAddresses: []string{"198.51.100.1/24"}, Unnumbered: &ifmodel.Interface_Unnumbered{InterfaceWithIp: "lo"}},
		"rx mode unknown": {Name: "x", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, RxModes: []*ifmodel.Interface_RxMode{{Queue: 0}}},
		"rx mode twice":   {Name: "x", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, RxModes: []*ifmodel.Interface_RxMode{{Mode: ifmodel.Interface_RxMode_POLLING}, {Mode: ifmodel.Interface_RxMode_INTERRUPT}}},
		"sub no link":     {Name: "x", Type: ifmodel.Interface_SUB_INTERFACE},
		"sub no parent":   {Name: "x", Type: ifmodel.Interface_SUB_INTERFACE, Link: &ifmodel.Interface_Sub{Sub: &ifmodel.SubInterface{SubId: 10}}},
		"sub own parent":  {Name: "x", Type: ifmodel.Interface_SUB_INTERFACE, Link: &ifmodel.Interface_Sub{Sub: &ifmodel.SubInterface{ParentName: "x", SubId: 10}}},
		"sub id 0":        {Name: "x", Type: ifmodel.Interface_SUB_INTERFACE, Link: &ifmodel.Interface_Sub{Sub: &ifmodel.SubInterface{ParentName: "p"}}},
		"sub id 4095":     {Name: "x", Type: ifmodel.Interface_SUB_INTERFACE, Link: &ifmodel.Interface_Sub{Sub: &ifmodel.SubInterface{ParentName: "p", SubId: 4095}}},
		"sub push no tag": {Name: "x", Type: ifmodel.Interface_SUB_INTERFACE, Link: &ifmodel.Interface_Sub{Sub: &ifmodel.SubInterface{ParentName: "p", SubId: 10, TagRwOption: ifmodel.SubInterface_PUSH1}}},
		"sub with mac":    {Name: "x", Type: ifmodel.Interface_SUB_INTERFACE, PhysAddress: "02:00:00:00:00:01", Link: &ifmodel.Interface_Sub{Sub: &ifmodel.SubInterface{ParentName: "p", SubId: 10}}},
		"dpdk":            {Name: "x", Type: ifmodel.Interface_DPDK},
		"type/link":       {Name: "x", Type: ifmodel.Interface_MEMIF, Link: &ifmodel.Interface_Tap{Tap: &ifmodel.TapLink{}}},
		"loop with link":  {Name: "x", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, Link: &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{}}},
		"bad mac":         {Name: "x", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, PhysAddress: "02:00"},
		"bad ip":          {Name: "x", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, IpAddresses: []string{"10.0.0.1"}},
		"ring size":       {Name: "x", Type: ifmodel.Interface_MEMIF, Link: &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{RingSize: 1000}}},
		"punt inject":     {Name: "x", Type: ifmodel.Interface_MEMIF, Link: &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{Mode: ifmodel.MemifLink_PUNT_INJECT}}},
		"long secret":     {Name: "x", Type: ifmodel.Interface_MEMIF, Link: &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{Secret: strings.Repeat("s", 25)}}},
		"af no host":      {Name: "x", Type: ifmodel.Interface_AF_PACKET, Link: &ifmodel.Interface_Afpacket{Afpacket: &ifmodel.AfpacketLink{}}},
		"vhost no socket": {Name: "x", Type: ifmodel.Interface_VHOST_USER, Link: &ifmodel.Interface_VhostUser{VhostUser: &ifmodel.VhostUserLink{}}},
		"tap v1":          {Name: "x", Type: ifmodel.Interface_TAP, Link: &ifmodel.Interface_Tap{Tap: &ifmodel.TapLink{Version: 1}}},
	}
	for what, v := range bad {
		if err := p.validate(Key(v.Name), v); err == nil {
			t.Errorf("%s: accepted, want an error", what)
		}
	}
	err := p.validate("k", &ifmodel.Interface{Name: "x", Type: ifmodel.Interface_SOFTWARE_LOOPBACK, SetDhcpClient: true})
	if !errors.Is(err, ErrNotSupported) {
		t.Errorf("set_dhcp_client error %v does not wrap ErrNotSupported", err)
	}
}

func TestValidateDuplicateMemifNamesOwner(t *testing.T) {
	p, _ := newTestPlugin(t)
	// "" and the default file are the same socket.
	p.setMemifOwner("first", p.memifKeyOf(memifIf("first", 5, "").GetMemif()))
	err := p.validate(Key("second"), memifIf("second", 5, DefaultMemifSocket))
	if err == nil || !strings.Contains(err.Error(), `"first"`) {
		t.Fatalf("duplicate memif: err = %v, want one naming \"first\"", err)
	}
	if err := p.validate(Key("first"), memifIf("first", 5, "")); err != nil {
		t.Fatalf("the owner itself rejected: %v", err)
	}
	if err := p.validate(Key("third"), memifIf("third", 6, "")); err != nil {
		t.Fatalf("other id rejected: %v", err)
	}
	if err := p.validate(Key("fourth"), memifIf("fourth", 5, "/run/other.sock")); err != nil {
		t.Fatalf("same id on another socket rejected: %v", err)
	}
}

func TestEquivalentDefaults(t *testing.T) {
	p, _ := newTestPlugin(t)
	want := memifIf("m", 1, "")
	want.IpAddresses = []string{"10.0.0.1/24"}
	got := memifIf("m", 1, DefaultMemifSocket)
	got.GetMemif().RingSize, got.GetMemif().BufferSize = defaultMemifRing, defaultMemifBuffer
	got.PhysAddress, got.Mtu = "02:fe:00:00:00:01", 9000
	got.IpAddresses = []string{"10.0.0.1/24"}
	if !p.equivalent("k", got, want) {
		t.Fatal("VPP's defaults (socket, ring, buffer, MAC, MTU) made an unchanged memif differ")
	}
	want.PhysAddress = "02:FE:00:00:00:02"
	if p.equivalent("k", got, want) {
		t.Fatal("a different MAC compared equivalent")
	}
	want.PhysAddress = ""
	want.Enabled = false
	if p.equivalent("k", got, want) {
		t.Fatal("admin state change compared equivalent")
	}
}

func TestUpdateWithRecreate(t *testing.T) {
	p, _ := newTestPlugin(t)
	a := memifIf("m", 1, "")
	b := memifIf("m", 1, "")
	b.Enabled, b.Mtu, b.IpAddresses = false, 1400, []string{"10.1.1.1/24"}
	if p.updateWithRecreate("k", a, b, nil) {
		t.Error("admin/mtu/address change asks for recreate")
	}
	c := memifIf("m", 2, "")
	if !p.updateWithRecreate("k", a, c, nil) {
		t.Error("memif id change does not recreate")
	}
	v1 := &ifmodel.Interface{Name: "v", Type: ifmodel.Interface_VHOST_USER, Link: &ifmodel.Interface_VhostUser{VhostUser: &ifmodel.VhostUserLink{SocketFilename: "/a"}}}
	v2 := &ifmodel.Interface{Name: "v", Type: ifmodel.Interface_VHOST_USER, Link: &ifmodel.Interface_VhostUser{VhostUser: &ifmodel.VhostUserLink{SocketFilename: "/b", Server: true}}}
	if p.updateWithRecreate("k", v1, v2, nil) {
		t.Error("vhost socket/server change recreates; VPP modifies it in place")
	}
	v2.GetVhostUser().DisableMrgRxbuf = true
	if !p.updateWithRecreate("k", v1, v2, nil) {
		t.Error("vhost mrg_rxbuf change does not recreate (modify cannot change it)")
	}
}
