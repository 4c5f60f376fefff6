package agentctl

import (
	"errors"
	"io"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/vppmesh/vppmesh/plugins/restapi"
	"github.com/vppmesh/vppmesh/plugins/vpp/ifstats"
)

// newStatsCommand shows the packet counters the agent reads from VPP's
// stats segment: per cross-connect (each direction) and per interface.
func newStatsCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Packet counters of cross-connects and interfaces (REST)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rep ifstats.Report
			if err := c.restCall(cmd.Context(), "GET", restapi.PathVPPCounters, nil, &rep); err != nil {
				return err
			}
			if !rep.Connected && len(rep.Interfaces) == 0 && len(rep.CrossConnects) == 0 {
				return errors.New("stats: the agent has no counters: VPP's stats segment is not connected (see the agent's --vpp-stats-socket)")
			}
			return c.render(rep, func(w io.Writer) error {
				u := func(v uint64) string { return strconv.FormatUint(v, 10) }
				var xrows [][]string
				for _, name := range sortedNames(rep.CrossConnects) {
					x := rep.CrossConnects[name]
					xrows = append(xrows,
						[]string{name, "a→b", u(x.AtoB.RxPackets), u(x.AtoB.TxPackets), u(x.AtoB.RxBytes), u(x.AtoB.TxBytes), u(x.Drops)},
						[]string{"", "b→a", u(x.BtoA.RxPackets), u(x.BtoA.TxPackets), u(x.BtoA.RxBytes), u(x.BtoA.TxBytes), ""})
				}
				if len(xrows) > 0 {
					if err := table(w, []string{"CROSS-CONNECT", "DIRECTION", "IN PKTS", "OUT PKTS", "IN BYTES", "OUT BYTES", "DROPS"}, xrows); err != nil {
						return err
					}
					if _, err := io.WriteString(w, "\n"); err != nil {
						return err
					}
				}
				var rows [][]string
				for _, name := range sortedNames(rep.Interfaces) {
					i := rep.Interfaces[name]
					rows = append(rows, []string{name, u(i.RxPackets), u(i.RxBytes), u(i.TxPackets), u(i.TxBytes), u(i.Drops)})
				}
				if !rep.Connected {
					if _, err := io.WriteString(w, "(VPP's stats segment is not connected; counters may be stale)\n"); err != nil {
						return err
					}
				}
				return table(w, []string{"INTERFACE", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES", "DROPS"}, rows)
			})
		},
	}
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
