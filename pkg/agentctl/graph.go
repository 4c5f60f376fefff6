package agentctl

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vppmesh/vppmesh/plugins/restapi"
)

// Graph output formats.
const (
	graphDOT = "dot"
	graphSVG = "svg"
)

func newGraphCommand(c *cli) *cobra.Command {
	var format, outFile string
	cmd := &cobra.Command{
		Use:   "graph [MODEL | KEY | PREFIX]...",
		Short: "The dependency graph of the selected values as DOT or SVG (REST): states, derived values, what PENDING values wait on",
		Long: `Draw the scheduler's graph of the selected values (every value without an
argument): a box per value coloured by its state, a dashed edge to each value
derived from it, an edge to each value it depends on (red while missing, so a
PENDING value shows what it waits on), and a legend. An argument is a model name,
a key (its value, its derived values and its dependencies) or a key prefix.
--format svg runs Graphviz's dot (installed where agentctl runs); -o json prints
the graph's nodes instead.`,
		Example: `  agentctl graph vpp.l2.xconnect > xc.dot
  agentctl graph config/vppmesh/v1/xconnect/xc1 --format svg --out xc1.svg`,
		ValidArgsFunction: c.completePrefixes,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != graphDOT && format != graphSVG {
				return fmt.Errorf("--format %q: want dot or svg", format)
			}
			q := url.Values{"format": {"json"}}
			var sel []string
			for _, a := range args {
				p, err := selectPrefix(a)
				if err != nil {
					return err
				}
				if p == "" {
					q.Del("key") // "all": everything
					sel = nil
					break
				}
				sel = append(sel, p)
				q.Add("key", p)
				if !strings.HasSuffix(p, "/") {
					q.Add("key", p+"/") // a key names its subtree too
				}
			}
			var g restapi.GraphJSON
			if err := c.restCall(cmd.Context(), "GET", restapi.PathGraph, q, &g); err != nil {
				return err
			}
			if len(g.Nodes) == 0 {
				return fmt.Errorf("graph: the agent knows no value matching %s", joinOrDash(args))
			}
			if c.output != "table" {
				return c.render(g, nil)
			}
			data := restapi.RenderDOT(g.GraphSnapshot, restapi.GraphTitle(sel, g.Truncated))
			if format == graphSVG {
				svg, err := restapi.RenderSVG(cmd.Context(), data)
				if err != nil {
					return err
				}
				data = svg
			}
			if outFile != "" {
				if err := os.WriteFile(outFile, data, 0o644); err != nil {
					return fmt.Errorf("graph: %w", err)
				}
				fmt.Fprintf(c.out, "wrote %s: %d values\n", outFile, len(g.Nodes))
				return nil
			}
			_, err := c.out.Write(data)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", graphDOT, "dot or svg (svg needs Graphviz's dot)")
	cmd.Flags().StringVar(&outFile, "out", "", "write to this file instead of stdout")
	return cmd
}
