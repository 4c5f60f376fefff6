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
			if err := c.restCall(cmd.Context(), "POST", restapi.PathVPPCommand, q, &out); err != nil {
				return err
			}
			return c.render(out, func(w io.Writer) error {
				_, err := fmt.Fprint(w, out.Output)
				return err
			})
		},
	}
	cmd.AddCommand(cliCmd)
	return cmd
}
