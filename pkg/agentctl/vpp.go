package agentctl

import (
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vppmesh/vppmesh/plugins/restapi"
)

// newVPPCommand is Ligato's `agentctl vpp cli ...`: a VPP CLI command run by
// the agent over its binary API connection.
func newVPPCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vpp",
		Short: "Talk to VPP through the agent",
		Args:  cobra.NoArgs,
	}
	cliCmd := &cobra.Command{
		Use:   "cli COMMAND...",
		Short: "Run a VPP CLI command (e.g. show interface) and print its output (REST)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"command": {strings.Join(args, " ")}}
			var out restapi.VPPCommandJSON
			if err := c.restCall(cmd.Context(), "POST", restapi.PathVPPCLI, q, &out); err != nil {
				return err
			}
			// VPP answers a command it cannot parse with success and the
			// parse error as text.
			if strings.HasPrefix(strings.TrimSpace(out.Output), "unknown input") {
				return fmt.Errorf("vpp cli %q: %s", q.Get("command"), strings.TrimSpace(out.Output))
			}
			return c.render(out, func(w io.Writer) error {
				_, err := fmt.Fprint(w, out.Output)
				return err
			})
		},
	}
	info := &cobra.Command{
		Use:   "info",
		Short: "Show VPP's version, build and uptime (REST)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out restapi.VPPCommandJSON
			q := url.Values{"command": {"show version verbose"}}
			if err := c.restCall(cmd.Context(), "POST", restapi.PathVPPCLI, q, &out); err != nil {
				return err
			}
			if strings.TrimSpace(out.Output) == "" {
				return fmt.Errorf("vpp info: VPP answered %q with nothing", q.Get("command"))
			}
			return c.render(out, func(w io.Writer) error {
				_, err := fmt.Fprint(w, out.Output)
				return err
			})
		},
	}
	cmd.AddCommand(cliCmd, info)
	return cmd
}
