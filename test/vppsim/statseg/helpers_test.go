package statseg

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"go.fd.io/govpp/adapter/statsclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/core"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestSegment(t *testing.T, opts ...Option) (*Segment, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stats.sock")
	seg, err := New(path, append([]Option{WithLogger(quietLogger()), WithSize(1 << 20)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := seg.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return seg, path
}

// connectStats connects govpp's pure-Go stats client, the agent's production
// reader, to the socket.
func connectStats(t *testing.T, path string) *core.StatsConnection {
	t.Helper()
	client := statsclient.NewStatsClient(path)
	conn, err := core.ConnectStats(client)
	if err != nil {
		t.Fatalf("ConnectStats(%s): %v", path, err)
	}
	t.Cleanup(conn.Disconnect)
	return conn
}

func readIfaces(t *testing.T, conn *core.StatsConnection) []api.InterfaceCounters {
	t.Helper()
	var st api.InterfaceStats
	if err := conn.GetInterfaceStats(&st); err != nil {
		t.Fatalf("GetInterfaceStats: %v", err)
	}
	return st.Interfaces
}

// sample makes distinct, recognizable values for every counter of an
// interface so that a counter read from the wrong vector or index shows.
func sample(idx uint32, name string, k uint64) InterfaceCounters {
	b := uint64(idx)*1000 + k*100000
	return InterfaceCounters{
		SwIfIndex:   idx,
		Name:        name,
		Rx:          Pair{b + 1, b + 2},
		Tx:          Pair{b + 3, b + 4},
		RxUnicast:   Pair{b + 5, b + 6},
		RxMulticast: Pair{b + 7, b + 8},
		RxBroadcast: Pair{b + 9, b + 10},
		TxUnicast:   Pair{b + 11, b + 12},
		TxMulticast: Pair{b + 13, b + 14},
		TxBroadcast: Pair{b + 15, b + 16},
		Drops:       b + 17,
		Punt:        b + 18,
		IP4:         b + 19,
		IP6:         b + 20,
		Mpls:        b + 21,
		RxNoBuf:     b + 22,
		RxMiss:      b + 23,
		RxError:     b + 24,
		TxError:     b + 25,
	}
}

// toAPI is what govpp should report for a published row.
func toAPI(c InterfaceCounters) api.InterfaceCounters {
	p := func(x Pair) api.InterfaceCounterCombined {
		return api.InterfaceCounterCombined{Packets: x.Packets, Bytes: x.Bytes}
	}
	return api.InterfaceCounters{
		InterfaceIndex: c.SwIfIndex,
		InterfaceName:  c.Name,
		Rx:             p(c.Rx),
		Tx:             p(c.Tx),
		RxUnicast:      p(c.RxUnicast),
		RxMulticast:    p(c.RxMulticast),
		RxBroadcast:    p(c.RxBroadcast),
		TxUnicast:      p(c.TxUnicast),
		TxMulticast:    p(c.TxMulticast),
		TxBroadcast:    p(c.TxBroadcast),
		Drops:          c.Drops,
		Punts:          c.Punt,
		IP4:            c.IP4,
		IP6:            c.IP6,
		Mpls:           c.Mpls,
		RxNoBuf:        c.RxNoBuf,
		RxMiss:         c.RxMiss,
		RxErrors:       c.RxError,
		TxErrors:       c.TxError,
	}
}

type readFn func() []api.InterfaceCounters

// reader reads through one StatsConnection repeatedly, as the agent's metrics
// would, so that directory reuse and refresh after an epoch change are tested.
func reader(t *testing.T, conn *core.StatsConnection) readFn {
	var st api.InterfaceStats
	return func() []api.InterfaceCounters {
		t.Helper()
		if err := conn.GetInterfaceStats(&st); err != nil {
			t.Fatalf("GetInterfaceStats: %v", err)
		}
		return st.Interfaces
	}
}
