package vppsim_test

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"testing"

	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/vxlan"
	"go.fd.io/govpp/core"

	"github.com/vppmesh/vppmesh/test/vpptarget"
)

func vxReq(add bool, src, dst string, vni uint32) *vxlan.VxlanAddDelTunnelV3 {
	return &vxlan.VxlanAddDelTunnelV3{IsAdd: add, Instance: ^uint32(0), DecapNextIndex: ^uint32(0), Vni: vni,
		SrcAddress: ip_types.NewAddress(netip.MustParseAddr(src).AsSlice()), DstAddress: ip_types.NewAddress(netip.MustParseAddr(dst).AsSlice())}
}

func retvalOf(err error) int32 {
	var e api.VPPApiError
	if errors.As(err, &e) {
		return int32(e)
	}
	if err == nil {
		return 0
	}
	return 1
}

func recvAll[T any](t *testing.T, recv func() (T, error)) []T {
	t.Helper()
	var out []T
	for {
		d, err := recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
}

// TestVxlanTunnelAPIDifferential runs the same VXLAN API requests against
// vppsim and FD.io VPP 25.10 and expects the same answers from both.
func TestVxlanTunnelAPIDifferential(t *testing.T) {
	vpptarget.ForEach(t, vpptarget.Options{SimNoPackets: true}, func(t *testing.T, tg *vpptarget.Target) {
		conn, err := core.Connect(socketclient.NewVppClient(tg.APISocket))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Disconnect()
		ctx := context.Background()
		vx := vxlan.NewServiceClient(conn)

		r, err := vx.VxlanAddDelTunnelV3(ctx, vxReq(true, "198.51.100.1", "198.51.100.2", 10))
		if err != nil || r.SwIfIndex != 1 {
			t.Fatalf("create: %+v %v", r, err)
		}
		for _, c := range []struct {
			name string
			req  *vxlan.VxlanAddDelTunnelV3
			want int32
		}{
			{"same key", vxReq(true, "198.51.100.1", "198.51.100.2", 10), -75},
			{"same src and dst", vxReq(true, "198.51.100.1", "198.51.100.1", 11), -82},
			{"mixed families", vxReq(true, "198.51.100.1", "2001:db8::1", 12), -7},
			{"encap vrf", func() *vxlan.VxlanAddDelTunnelV3 {
				m := vxReq(true, "198.51.100.1", "198.51.100.2", 13)
				m.EncapVrfID = 5
				return m
			}(), -3},
			{"decap next", func() *vxlan.VxlanAddDelTunnelV3 {
				m := vxReq(true, "198.51.100.1", "198.51.100.2", 14)
				m.DecapNextIndex = 99
				return m
			}(), -76},
			{"delete unknown", vxReq(false, "198.51.100.1", "198.51.100.2", 77), -6},
		} {
			rep, err := vx.VxlanAddDelTunnelV3(ctx, c.req)
			if retvalOf(err) != c.want || rep == nil || rep.SwIfIndex != ^interface_types.InterfaceIndex(0) {
				t.Errorf("%s: reply %+v err %v, want retval %d and sw_if_index ~0", c.name, rep, err, c.want)
			}
		}
		// The same VNI towards another destination is another tunnel.
		r2, err := vx.VxlanAddDelTunnelV3(ctx, vxReq(true, "198.51.100.1", "198.51.100.3", 10))
		if err != nil || r2.SwIfIndex != 2 {
			t.Fatalf("second tunnel: %+v %v", r2, err)
		}
		fixed := vxReq(true, "198.51.100.1", "198.51.100.2", 30)
		fixed.Instance = 1
		if _, err := vx.VxlanAddDelTunnelV3(ctx, fixed); retvalOf(err) != -147 {
			t.Errorf("taken instance: %v, want -147", err)
		}

		ds, err := vx.VxlanTunnelV2Dump(ctx, &vxlan.VxlanTunnelV2Dump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
		if err != nil {
			t.Fatal(err)
		}
		got := recvAll(t, ds.Recv)
		if len(got) != 2 {
			t.Fatalf("dump: %d tunnels, want 2", len(got))
		}
		d := got[0]
		if d.SwIfIndex != 1 || d.Instance != 0 || d.SrcAddress.String() != "198.51.100.1" || d.DstAddress.String() != "198.51.100.2" ||
			d.SrcPort != 4789 || d.DstPort != 4789 || d.DecapNextIndex != 1 || d.Vni != 10 || d.EncapVrfID != 0 || d.McastSwIfIndex != 0 {
			t.Errorf("details: %+v", d)
		}
		if got[1].Instance != 1 || got[1].DstAddress.String() != "198.51.100.3" {
			t.Errorf("second details: %+v", got[1])
		}
		one, err := vx.VxlanTunnelV2Dump(ctx, &vxlan.VxlanTunnelV2Dump{SwIfIndex: 2})
		if err != nil {
			t.Fatal(err)
		}
		if o := recvAll(t, one.Recv); len(o) != 1 || o[0].SwIfIndex != 2 {
			t.Errorf("dump of sw_if_index 2: %+v", o)
		}
		none, err := vx.VxlanTunnelV2Dump(ctx, &vxlan.VxlanTunnelV2Dump{SwIfIndex: 999})
		if err != nil {
			t.Fatal(err)
		}
		if o := recvAll(t, none.Recv); len(o) != 0 {
			t.Errorf("dump of an unknown index: %+v", o)
		}
		sw, err := interfaces.NewServiceClient(conn).SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: 1})
		if err != nil {
			t.Fatal(err)
		}
		sd := recvAll(t, sw.Recv)
		if len(sd) != 1 || sd[0].InterfaceName != "vxlan_tunnel0" || sd[0].InterfaceDevType != "VXLAN" ||
			sd[0].Type != interface_types.IF_API_TYPE_HARDWARE || sd[0].Mtu[0] != 9000 ||
			sd[0].Flags != interface_types.IF_STATUS_API_FLAG_ADMIN_UP|interface_types.IF_STATUS_API_FLAG_LINK_UP {
			t.Errorf("sw_interface_details: %+v", sd)
		}

		del, err := vx.VxlanAddDelTunnelV3(ctx, vxReq(false, "198.51.100.1", "198.51.100.2", 10))
		if err != nil || del.SwIfIndex != 1 {
			t.Errorf("delete: %+v %v, want the deleted sw_if_index 1", del, err)
		}
		if _, err := vx.VxlanAddDelTunnelV3(ctx, vxReq(false, "198.51.100.1", "198.51.100.2", 10)); retvalOf(err) != -6 {
			t.Errorf("delete again: %v, want -6", err)
		}
	})
}
