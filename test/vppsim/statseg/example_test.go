package statseg_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"go.fd.io/govpp/adapter/statsclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/core"

	"github.com/vppmesh/vppmesh/test/vppsim/statseg"
)

// vppsim publishes its interface counters; govpp reads them as from VPP.
func Example() {
	dir, _ := os.MkdirTemp("", "statseg")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "stats.sock")

	seg, err := statseg.New(sock, statseg.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer seg.Close()
	err = seg.Update([]statseg.InterfaceCounters{
		{SwIfIndex: 0, Name: "local0"},
		{SwIfIndex: 1, Name: "memif1/0", Rx: statseg.Pair{Packets: 10, Bytes: 640}, Drops: 2},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	conn, err := core.ConnectStats(statsclient.NewStatsClient(sock))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Disconnect()
	var stats api.InterfaceStats
	if err := conn.GetInterfaceStats(&stats); err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range stats.Interfaces {
		fmt.Printf("%d %s rx=%d/%d drops=%d\n", c.InterfaceIndex, c.InterfaceName, c.Rx.Packets, c.Rx.Bytes, c.Drops)
	}
	// Output:
	// 0 local0 rx=0/0 drops=0
	// 1 memif1/0 rx=10/640 drops=2
}
