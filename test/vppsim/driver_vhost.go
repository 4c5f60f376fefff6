package vppsim

import (
	"context"
	"fmt"
	"runtime"

	"github.com/vppmesh/vppmesh/test/vppsim/vhostuser"
)

// vhostDriver plays VPP's side of one vhost-user interface: the device backend,
// listening (VPP server mode) or dialing a listening frontend (client mode).
type vhostDriver struct {
	port   *Port
	vp     *vhostuser.Port
	link   *linkWatch
	cancel context.CancelFunc

	txSide
}

func (dp *dataplane) newVhostDriver(p *Port, info PortInfo) (Driver, error) {
	spec := info.VhostUser
	if err := ensureDir(spec.SocketFile); err != nil {
		return nil, fmt.Errorf("vhost-user %s: %w", info.Name, err)
	}
	if spec.Packed || spec.EnableGSO {
		// The backend offers split rings without offloads; the frontend negotiates down.
		dp.log.Info("vhost-user feature not offered by vppsim", "interface", info.Name,
			"packed", spec.Packed, "gso", spec.EnableGSO)
	}
	d := &vhostDriver{port: p, link: dp.watchLink(p)}
	d.burst = d.send
	ctx, cancel := driverCtx()
	vp, err := vhostuser.Open(ctx, vhostuser.Config{
		SocketPath: spec.SocketFile, Client: !spec.IsServer, Name: info.Name,
		DisableMrgRxbuf: spec.DisableMrgRxbuf,
		Logger:          dp.log.With("interface", info.Name),
		OnLink:          d.link.set,
	})
	if err != nil {
		cancel()
		d.link.close()
		return nil, fmt.Errorf("vhost-user %s on %s: %w", info.Name, spec.SocketFile, err)
	}
	d.vp, d.cancel = vp, cancel
	dp.wg.Add(1)
	go func() {
		defer dp.wg.Done()
		d.rxLoop(ctx)
	}()
	return d, nil
}

// rxLoop polls the guest's TX queues while frames flow and sleeps on its kick when idle.
func (d *vhostDriver) rxLoop(ctx context.Context) {
	full, work := rxBuffers()
	idle := 0
	for ctx.Err() == nil {
		copy(work, full)
		if n := d.vp.RxBurst(work); n > 0 {
			d.port.ReceiveBurst(work[:n])
			idle = 0
			continue
		}
		if idle < pollSpins {
			idle++
			runtime.Gosched()
			continue
		}
		idle = 0
		if d.vp.WaitRx(ctx) != nil {
			return
		}
	}
}

// send copies a batch into the guest's receive queue; it runs under
// txSide's lock.
func (d *vhostDriver) send(frames [][]byte) (int, DropReason) {
	if !d.vp.LinkUp() {
		return 0, DropLinkDown
	}
	sent := 0
	for try := 0; ; try++ {
		sent += d.vp.TxBurst(frames[sent:])
		if sent == len(frames) || try == txRetries {
			break
		}
		runtime.Gosched()
	}
	if sent < len(frames) {
		if !d.vp.LinkUp() {
			return sent, DropLinkDown
		}
		return sent, DropTxFull
	}
	return sent, DropTxFull
}

// Close drops the frontend, unmaps its memory and removes a listening socket.
func (d *vhostDriver) Close() error {
	d.close()
	d.cancel()
	err := d.vp.Close()
	d.link.close()
	if err != nil {
		return fmt.Errorf("vhost-user %s close: %w", d.port.Name(), err)
	}
	return nil
}
