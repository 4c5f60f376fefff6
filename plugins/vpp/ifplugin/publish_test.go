package ifplugin

import (
	"context"
	"io"
	"sync"
	"testing"

	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
)

// fakeIfDump answers sw_interface_dump from a fixed table, as VPP would.
type fakeIfDump struct {
	interfaces.RPCService
	mu   sync.Mutex
	have map[uint32]*interfaces.SwInterfaceDetails
}

type fakeDumpStream struct {
	interfaces.RPCService_SwInterfaceDumpClient
	out []*interfaces.SwInterfaceDetails
}

func (s *fakeDumpStream) Recv() (*interfaces.SwInterfaceDetails, error) {
	if len(s.out) == 0 {
		return nil, io.EOF
	}
	d := s.out[0]
	s.out = s.out[1:]
	return d, nil
}

func (f *fakeIfDump) SwInterfaceDump(_ context.Context, in *interfaces.SwInterfaceDump) (interfaces.RPCService_SwInterfaceDumpClient, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &fakeDumpStream{}
	for idx, d := range f.have {
		if in.SwIfIndex == ^interface_types.InterfaceIndex(0) || uint32(in.SwIfIndex) == idx {
			s.out = append(s.out, d)
		}
	}
	return s, nil
}

// A full dump during a bulk change caches interfaces whose events have not
// been read yet. Their events must still publish a state: the agent once
// compared with that cache, found "no change", and 6 of 2,000 interfaces
// never got a Ligato state key (the fault suite at N=1000 on FD.io VPP).
func TestStateOfInterfaceCachedBeforeItsEventIsPublished(t *testing.T) {
	p := New(Options{})
	up := interface_types.IF_STATUS_API_FLAG_ADMIN_UP
	p.ifs = &fakeIfDump{have: map[uint32]*interfaces.SwInterfaceDetails{
		7: {SwIfIndex: 7, InterfaceName: "memif1/7", Tag: "x7-a", Flags: up},
		8: {SwIfIndex: 8, InterfaceName: "memif1/8", Tag: "x8-a", Flags: up},
	}}
	var mu sync.Mutex
	got := map[string][]*ifmodel.InterfaceState{}
	p.WatchState(func(st *ifmodel.InterfaceState) {
		mu.Lock()
		got[st.GetName()] = append(got[st.GetName()], st)
		mu.Unlock()
	})
	p.index("x7-a", ifmodel.Interface_MEMIF, Metadata{SwIfIndex: 7})
	p.index("x8-a", ifmodel.Interface_MEMIF, Metadata{SwIfIndex: 8})
	ctx := context.Background()

	// The read-back of an earlier batch: one full dump caches both.
	if err := p.refreshDetails(ctx, ^interface_types.InterfaceIndex(0)); err != nil {
		t.Fatal(err)
	}
	p.refreshStates(ctx, map[uint32]bool{7: true}) // only 7 was in that batch
	// 8's own event (admin up) arrives afterwards.
	stale := p.publishEvents([]*interfaces.SwInterfaceEvent{{SwIfIndex: 8, Flags: up}})
	p.refreshStates(ctx, map[uint32]bool{stale[0]: true})

	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"x7-a", "x8-a"} {
		l := got[name]
		if len(l) != 1 {
			t.Fatalf("%s: %d states published, want exactly 1: %v", name, len(l), l)
		}
		if l[0].GetAdminStatus() != ifmodel.InterfaceState_UP || l[0].GetOperStatus() != ifmodel.InterfaceState_DOWN {
			t.Fatalf("%s: state %v, want admin UP oper DOWN", name, l[0])
		}
	}

	// Unchanged read-backs publish nothing more; a change does.
	p.refreshStates(ctx, map[uint32]bool{7: true, 8: true})
	if len(got["x7-a"]) != 1 || len(got["x8-a"]) != 1 {
		t.Fatalf("unchanged read-back published again: %v", got)
	}
	p.ifs.(*fakeIfDump).have[8] = &interfaces.SwInterfaceDetails{SwIfIndex: 8, InterfaceName: "memif1/8", Tag: "x8-a",
		Flags: up | interface_types.IF_STATUS_API_FLAG_LINK_UP}
	mu.Unlock()
	p.refreshStates(ctx, map[uint32]bool{8: true})
	mu.Lock()
	if l := got["x8-a"]; len(l) != 2 || l[1].GetOperStatus() != ifmodel.InterfaceState_UP {
		t.Fatalf("link up not published: %v", l)
	}
}
