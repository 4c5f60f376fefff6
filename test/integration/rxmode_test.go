package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// Ligato's rx_modes on memifs configured before their CNF starts: FD.io VPP
// creates a memif's receive queues when the peer connects, in polling mode,
// whatever was set before. The agent sets the configured mode again at
// link up, and after a reconnect; frames still flow in interrupt mode (the
// peer signals the rings).
func TestMemifRxModeSticksAcrossConnects(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		sock := filepath.Join(e.dir, "rx.sock")
		withRx := func(name string, id int) string {
			j := memif(name, id, sock)
			return j[:len(j)-1] + `,"rx_modes":[{"default_mode":true,"mode":"INTERRUPT"}]}`
		}
		e.put("config/vpp/v2/interfaces/rx1", withRx("rx1", 1))
		e.put("config/vpp/v2/interfaces/rx2", withRx("rx2", 2))
		e.put("config/vpp/l2/v2/xconnect/rx1", `{"receive_interface":"rx1","transmit_interface":"rx2"}`)
		e.put("config/vpp/l2/v2/xconnect/rx2", `{"receive_interface":"rx2","transmit_interface":"rx1"}`)
		e.waitState("config/vpp/l2/v2/xconnect/rx2", "CONFIGURED")
		interrupt := func(name string) func() bool {
			return func() bool {
				i, ok := e.vppIf(name)
				if !ok {
					return false
				}
				modes, err := e.vpp.RxModes(context.Background(), i.SwIfIndex)
				return err == nil && len(modes) > 0 && modes[0] == "interrupt"
			}
		}
		a, b := slave(t, sock, 1), slave(t, sock, 2)
		for _, name := range []string{"rx1", "rx2"} {
			e.eventually(name+" rx queue in interrupt mode once its peer connected", interrupt(name))
		}
		sendReceive(t, a, b, 100)
		sendReceive(t, b, a, 100)
		// The peer goes and comes back: VPP recreates the queues.
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		e.eventually("rx1 link down", func() bool { i, ok := e.vppIf("rx1"); return ok && !i.LinkUp })
		a = slave(t, sock, 1)
		e.eventually("rx1 rx queue in interrupt mode after the reconnect", interrupt("rx1"))
		sendReceive(t, a, b, 100)
		if _, ok := e.vppIf("rx1"); !ok {
			t.Fatal(fmt.Sprintf("rx1 gone from %s", e.vpp.Name()))
		}
	})
}
