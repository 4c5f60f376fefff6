// Command agentctl manages vppmesh agents: their configuration in etcd and
// their state through the agent's REST API.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/vppmesh/vppmesh/pkg/agentctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := agentctl.NewRootCommand(os.Getenv).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentctl: "+err.Error())
		var ee *agentctl.ExitError
		if errors.As(err, &ee) && ee.Code > 0 {
			os.Exit(ee.Code) // --wait: 1 a value failed, 2 timed out
		}
		os.Exit(1)
	}
}
