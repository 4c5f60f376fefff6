package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/vppmesh/vppmesh/test/lab"
)

// summary is vppmesh-cnf's JSON summary (and its --stats-file).
type summary struct {
	Mode       string  `json:"mode"`
	Sent       uint64  `json:"sent"`
	Received   uint64  `json:"received"`
	Lost       uint64  `json:"lost"`
	Reordered  uint64  `json:"reordered"`
	Duplicates uint64  `json:"duplicates"`
	PPS        float64 `json:"pps"`
	DurationS  float64 `json:"duration_s"`
	Foreign    uint64  `json:"foreign"`
	RxDrops    uint64  `json:"rx_drops"`
	TxRingFull uint64  `json:"tx_ring_full"`
	LinkUps    uint64  `json:"link_ups"`
}

// cnf is a vppmesh-cnf process.
type cnf struct {
	e     *env
	p     *lab.Proc
	stats string
}

// startCNF runs vppmesh-cnf MODE on memif id of the lab's memif socket in ns.
func (e *env) startCNF(ns *lab.Namespace, name, mode string, id int, args ...string) *cnf {
	e.t.Helper()
	return e.startCNFOn(ns, name, mode, e.memif, id, args...)
}

// startCNFOn is startCNF on another memif socket (testpmd's, in benchmarks).
func (e *env) startCNFOn(ns *lab.Namespace, name, mode, sock string, id int, args ...string) *cnf {
	e.t.Helper()
	c := &cnf{e: e, stats: e.lab.Path(name + ".stats.json")}
	all := []string{mode, "--socket", sock, "--id", fmt.Sprint(id),
		"--stats-file", c.stats, "--stats-interval", "100ms", "--log-level", "info"}
	if mode == "sink" {
		// Like VPP, vppsim drops what a full ring cannot take; a deep sink ring
		// rides out the scheduling gaps of two cores shared by every process.
		all = append(all, "--ring-size", "8192")
	}
	all = append(all, args...)
	p, err := e.lab.Start(e.ctx, lab.ProcSpec{Name: name, Namespace: ns, Path: bin("vppmesh-cnf"), Args: all})
	if err != nil {
		e.t.Fatal(err)
	}
	c.p = p
	return c
}

// live reads the CNF's current counters from its stats file.
func (c *cnf) live() (summary, error) {
	var s summary
	b, err := os.ReadFile(c.stats)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s stats file: %w", c.p.Name, err) // rewritten mid-read: poll again
	}
	return s, nil
}

func (c *cnf) waitLinkUp() {
	c.e.t.Helper()
	c.e.eventually(c.p.Name+" link up", 20*time.Second, func() error {
		if c.p.Exited() {
			return fmt.Errorf("exited: %v", c.p.ExitErr())
		}
		s, err := c.live()
		if err != nil {
			return err
		}
		if s.LinkUps == 0 {
			return fmt.Errorf("no link yet")
		}
		return nil
	})
}

// waitReceived waits until the CNF has received at least n frames.
func (c *cnf) waitReceived(n uint64) summary {
	c.e.t.Helper()
	var last summary
	c.e.eventually(fmt.Sprintf("%s received %d", c.p.Name, n), 20*time.Second, func() error {
		s, err := c.live()
		if err != nil {
			return err
		}
		last = s
		if s.Received < n {
			return fmt.Errorf("received %d", s.Received)
		}
		return nil
	})
	return last
}

// settle waits until the received count stops moving (two equal reads
// apart) and returns it.
func (c *cnf) settle() uint64 {
	c.e.t.Helper()
	var prev uint64 = 1<<64 - 1
	var got uint64
	c.e.eventually(c.p.Name+" settles", 20*time.Second, func() error {
		time.Sleep(300 * time.Millisecond)
		s, err := c.live()
		if err != nil {
			return err
		}
		got = s.Received
		if got != prev {
			prev = got
			return fmt.Errorf("still moving: %d", got)
		}
		return nil
	})
	return got
}

// finish waits for the CNF to exit (after SIGINT when stop is set) and
// returns its summary line.
func (c *cnf) finish(stop bool) summary {
	c.e.t.Helper()
	if stop {
		if err := c.p.Signal(os.Interrupt); err != nil {
			c.e.t.Fatal(err)
		}
	}
	select {
	case <-c.p.Done():
	case <-time.After(30 * time.Second):
		c.e.t.Fatalf("%s did not exit", c.p.Name)
	}
	if err := c.p.ExitErr(); err != nil {
		c.e.t.Fatalf("%s: %v\n%s", c.p.Name, err, c.p.Stderr())
	}
	var s summary
	if err := c.p.LastJSON(&s); err != nil {
		c.e.t.Fatal(err)
	}
	return s
}

// clean says what was wrong if a sink saw loss, reordering or duplicates.
func (s summary) clean() error {
	if s.Lost != 0 || s.Reordered != 0 || s.Duplicates != 0 {
		return fmt.Errorf("lost %d reordered %d duplicates %d", s.Lost, s.Reordered, s.Duplicates)
	}
	return nil
}

// Config values, as a user would write them.

func memifEnd(sock string, id int, extra ...any) map[string]any {
	m := map[string]any{"master": true, "id": id, "socket_filename": sock}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return map[string]any{"memif": m}
}

func vhostEnd(sock string, server bool) map[string]any {
	return map[string]any{"vhost_user": map[string]any{"socket_filename": sock, "server": server}}
}

func xcKey(name string) string { return "config/vppmesh/v1/xconnect/" + name }

// putXC puts a CrossConnect and waits until it is CONFIGURED.
func (e *env) putXC(name string, a, b map[string]any) {
	e.t.Helper()
	e.put(xcKey(name), map[string]any{"name": name, "a": a, "b": b})
	e.waitState(xcKey(name), "CONFIGURED")
}
