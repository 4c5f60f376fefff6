// Command vppmesh-lab runs lab topologies: validate, up, down, status, exec,
// graph and export. See docs/labs.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vppmesh/vppmesh/pkg/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRoot(os.Stdout, os.Stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec)) // exec: the command's own status, it spoke for itself
		}
		fmt.Fprintln(os.Stderr, "vppmesh-lab:", err)
		os.Exit(1)
	}
}

// exitCode is the status of a command run by exec, passed through.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

type flags struct {
	dir, runtime, binDir, output, logLevel string
	timeout                                time.Duration
}

func (f *flags) options(out, errw io.Writer) (lab.Options, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return lab.Options{}, fmt.Errorf("--log-level: %w", err)
	}
	return lab.Options{Dir: f.dir, Runtime: f.runtime, BinDir: f.binDir, Timeout: f.timeout, Out: out,
		Logger: slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: lvl}))}, nil
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	f := &flags{}
	root := &cobra.Command{
		Use:           "vppmesh-lab",
		Short:         "Run lab topologies of VPP nodes, CNFs and links (netns or Docker)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&f.dir, "dir", "", "lab directory (sockets, logs, state); default /tmp/vppmesh-lab-<name>")
	pf.StringVar(&f.runtime, "runtime", lab.RuntimeNetns, "netns or docker")
	pf.StringVar(&f.binDir, "bin-dir", "", "where vppsim, vppmesh-agent, agentctl and vppmesh-cnf are (default: beside vppmesh-lab, then PATH)")
	pf.DurationVar(&f.timeout, "timeout", 60*time.Second, "bound on each wait of up")
	pf.StringVarP(&f.output, "output", "o", "text", "text or json")
	pf.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error (logs go to stderr)")

	load := func(path string) (*lab.Topology, error) { return lab.Load(path) }
	print := func(w io.Writer, v any, text func(io.Writer)) error {
		if f.output == "json" {
			e := json.NewEncoder(w)
			e.SetIndent("", "  ")
			return e.Encode(v)
		}
		text(w)
		return nil
	}

	root.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a lab file (no root needed) and say what this machine lacks to run it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := load(args[0])
			if err != nil {
				return err
			}
			svcs := ""
			if n := len(t.Topology.Services); n > 0 {
				svcs = fmt.Sprintf(", %d network service(s)", n)
			}
			fmt.Fprintf(stdout, "%s: lab %s is valid: %d node(s), %d link(s)%s\n", args[0], t.Name, len(t.Topology.Nodes), len(t.Topology.Links), svcs)
			if _, err := lab.NewPlan(t, lab.DefaultDir(t.Name)); err != nil {
				return err
			}
			opts, err := f.options(stdout, stderr)
			if err != nil {
				return err
			}
			for _, m := range lab.Preflight(t, opts) {
				fmt.Fprintf(stdout, "preflight (%s runtime): missing %s\n", opts.Runtime, m)
			}
			return nil
		},
	})

	root.AddCommand(&cobra.Command{
		Use:   "up FILE",
		Short: "Start a lab, wait until every link is up, send the generators' burst and report traffic per link",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := load(args[0])
			if err != nil {
				return err
			}
			opts, err := f.options(stdout, stderr)
			if err != nil {
				return err
			}
			rep, err := lab.Up(cmd.Context(), t, args[0], opts)
			if err != nil {
				return fmt.Errorf("%w\n(the lab is left as it is for inspection; `vppmesh-lab down %s` removes it)", err, args[0])
			}
			return print(stdout, rep, rep.Print)
		},
	})

	name := func(arg string) (string, error) {
		if t, err := lab.Load(arg); err == nil {
			if f.dir == "" {
				f.dir = lab.DefaultDir(t.Name)
			}
			return t.Name, nil
		} else if _, statErr := os.Stat(arg); statErr == nil {
			return "", err
		}
		if f.dir == "" {
			f.dir = lab.DefaultDir(arg)
		}
		return arg, nil
	}

	root.AddCommand(&cobra.Command{
		Use:   "down FILE|NAME",
		Short: "Remove everything of a lab (even after a failed up) and report leftovers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := name(args[0])
			if err != nil {
				return err
			}
			opts, err := f.options(stdout, stderr)
			if err != nil {
				return err
			}
			rep, err := lab.Down(cmd.Context(), n, opts)
			if rep != nil {
				_ = print(stdout, rep, func(w io.Writer) {
					for _, r := range rep.Removed {
						fmt.Fprintln(w, "removed", r)
					}
					for _, l := range rep.Leftovers {
						fmt.Fprintln(w, "LEFTOVER", l)
					}
					if len(rep.Removed) == 0 && len(rep.Leftovers) == 0 {
						fmt.Fprintf(w, "lab %s: nothing to remove\n", n)
					}
				})
			}
			return err
		},
	})

	root.AddCommand(&cobra.Command{
		Use:   "status FILE|NAME",
		Short: "Nodes, their processes or containers, and each link's state and counters",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := name(args[0])
			if err != nil {
				return err
			}
			opts, err := f.options(stdout, stderr)
			if err != nil {
				return err
			}
			rep, err := lab.Status(cmd.Context(), n, opts)
			if err != nil {
				return err
			}
			return print(stdout, rep, rep.Print)
		},
	})

	root.AddCommand(&cobra.Command{
		Use:   "exec FILE|NAME NODE -- CMD...",
		Short: "Run a command in a node (its namespace or container)",
		Args:  cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 2 {
				return errors.New("usage: exec FILE|NAME NODE -- CMD...")
			}
			n, err := name(args[0])
			if err != nil {
				return err
			}
			opts, err := f.options(stdout, stderr)
			if err != nil {
				return err
			}
			err = lab.Exec(cmd.Context(), n, args[1], args[2:], opts, os.Stdin, stdout, stderr)
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() > 0 {
				return exitCode(ee.ExitCode())
			}
			return err
		},
	})

	var format, outFile string
	graph := &cobra.Command{
		Use:   "graph FILE",
		Short: "Draw the topology: mermaid, dot or svg (svg needs Graphviz's dot)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := load(args[0])
			if err != nil {
				return err
			}
			var b []byte
			switch format {
			case "mermaid":
				b = []byte(lab.Mermaid(t))
			case "dot":
				b = []byte(lab.DOT(t))
			case "svg":
				if b, err = lab.SVG(cmd.Context(), t); err != nil {
					return err
				}
			default:
				return fmt.Errorf("--format %q: want mermaid, dot or svg", format)
			}
			return write(stdout, outFile, b)
		},
	}
	graph.Flags().StringVar(&format, "format", "mermaid", "mermaid, dot or svg")
	graph.Flags().StringVar(&outFile, "out", "", "write to this file instead of stdout")
	root.AddCommand(graph)

	var dockerDir, staticDir string
	images := &cobra.Command{
		Use:   "images",
		Short: "Build the lab's images locally (FROM scratch, static binaries; starts dockerd if it can)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return lab.BuildImages(cmd.Context(), dockerDir, staticDir, stdout)
		},
	}
	images.Flags().StringVar(&dockerDir, "dockerfiles", "docker", "directory of the Dockerfiles")
	images.Flags().StringVar(&staticDir, "context", "bin/static", "directory of the static binaries (the build context)")
	root.AddCommand(images)

	var compose, clab bool
	export := &cobra.Command{
		Use:   "export FILE (--compose | --containerlab)",
		Short: "Export the lab as a docker compose file or a containerlab topology",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if compose == clab {
				return errors.New("say one of --compose or --containerlab")
			}
			t, err := load(args[0])
			if err != nil {
				return err
			}
			dir := f.dir
			if dir == "" {
				dir = lab.DefaultDir(t.Name)
			}
			p, err := lab.NewPlan(t, dir)
			if err != nil {
				return err
			}
			var b []byte
			if compose {
				b, err = p.Compose()
				if err == nil {
					// The config services import these files.
					err = p.WriteConfigs()
				}
			} else {
				b, err = p.Containerlab()
			}
			if err != nil {
				return err
			}
			return write(stdout, outFile, b)
		},
	}
	export.Flags().BoolVar(&compose, "compose", false, "docker compose file")
	export.Flags().BoolVar(&clab, "containerlab", false, "containerlab topology")
	export.Flags().StringVar(&outFile, "out", "", "write to this file instead of stdout")
	root.AddCommand(export)
	return root
}

func write(stdout io.Writer, path string, b []byte) error {
	if path == "" {
		_, err := stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
