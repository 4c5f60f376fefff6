package ifplugin

import (
	"context"
	"errors"

	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vhost_user"
)

// A create can fail because VPP already has an interface on the same memif
// socket+id, vhost-user socket file or VXLAN tunnel key (source,
// destination, VNI; vxlan.go) that carries no tag: typically our
// own create that VPP carried out after the agent gave up waiting for the
// reply (a timeout, a lost connection). Retrieve shows it as VPP's own, so
// nothing else would ever remove it and the create would fail forever. The
// helpers below find such an interface so that create can delete it and
// create the desired one, with the desired parameters and secret (a dump
// cannot prove the stray one matches them). An interface tagged with
// another name belongs to another value and is never touched.

// isVPPError tells whether err is VPP refusing the request (a retval), as
// opposed to a transport failure where nothing is known.
func isVPPError(err error) bool {
	var e api.VPPApiError
	return errors.As(err, &e)
}

// strayMemif returns the untagged (or already ours) memif on socketID+id.
func (p *Plugin) strayMemif(ctx context.Context, name string, socketID, id uint32) (interface_types.InterfaceIndex, bool) {
	d, err := p.mem.MemifDump(ctx, &memif.MemifDump{})
	if err != nil {
		return 0, false
	}
	all, err := recv("memif_dump", d.Recv)
	if err != nil {
		return 0, false
	}
	for _, m := range all {
		if m.SocketID == socketID && m.ID == id {
			return m.SwIfIndex, p.adoptable(ctx, m.SwIfIndex, name)
		}
	}
	return 0, false
}

// strayVhost returns the untagged (or already ours) vhost-user interface on
// the socket file.
func (p *Plugin) strayVhost(ctx context.Context, name, file string) (interface_types.InterfaceIndex, bool) {
	d, err := p.vhost.SwInterfaceVhostUserDump(ctx, &vhost_user.SwInterfaceVhostUserDump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil {
		return 0, false
	}
	all, err := recv("sw_interface_vhost_user_dump", d.Recv)
	if err != nil {
		return 0, false
	}
	for _, h := range all {
		if h.SockFilename == file {
			return h.SwIfIndex, p.adoptable(ctx, h.SwIfIndex, name)
		}
	}
	return 0, false
}

// adoptable tells whether the interface at idx has no tag or name's tag;
// the tag is what makes an interface belong to a value.
func (p *Plugin) adoptable(ctx context.Context, idx interface_types.InterfaceIndex, name string) bool {
	d, err := p.ifs.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: idx})
	if err != nil {
		return false
	}
	all, err := recv("sw_interface_dump", d.Recv)
	if err != nil {
		return false
	}
	for _, det := range all {
		if det.SwIfIndex == idx {
			return det.Tag == "" || det.Tag == name
		}
	}
	return false
}
