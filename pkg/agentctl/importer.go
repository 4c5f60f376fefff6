package agentctl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"sigs.k8s.io/yaml"
)

// Import file formats.
const (
	FormatAuto  = "auto"
	FormatLines = "lines" // Ligato's: one "KEY VALUE-JSON" per line
	FormatYAML  = "yaml"  // YAML or JSON: a map key→value or a list of {key, value}
)

// importEntry is one key-value pair read from an import file.
type importEntry struct {
	Where string // "line 3", "item 2" or "key"
	Key   string // as written in the file
	Data  []byte // the value as JSON
	Err   error  // the entry could not even be read
}

// ImportError reports one entry that was not imported.
type ImportError struct {
	Where string `json:"where"`
	Key   string `json:"key,omitempty"`
	Error string `json:"error"`
}

// ImportTxn is one etcd transaction an import committed.
type ImportTxn struct {
	Keys     int   `json:"keys"`
	Revision int64 `json:"revision"`
}

// ImportReport is what import prints with -o json/yaml.
type ImportReport struct {
	Entries  int           `json:"entries"`
	Imported int           `json:"imported"`
	DryRun   bool          `json:"dry_run,omitempty"`
	Txns     []ImportTxn   `json:"txns"`
	Errors   []ImportError `json:"errors,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
}

func newImportCommand(c *cli) *cobra.Command {
	var (
		txOps  int
		format string
		force  bool
		dryRun bool
		file   string
	)
	cmd := &cobra.Command{
		Use:   "import [FILE | -f FILE]",
		Short: "Import many key-value pairs into etcd from a file",
		Long: `Import key-value pairs into etcd. FILE ("-" for stdin) is either
  - Ligato's line format: one "KEY VALUE-JSON" per line; empty lines and lines
    starting with '#' are ignored, or
  - YAML or JSON: a map of key to value object, or a list of {key: ..., value: ...}, or
  - Ligato's configurator YAML/JSON (vppConfig: {interfaces: [...], bridgeDomains: [...],
    xconnectPairs: [...], ...}), as agentctl config update reads it.
Keys are full (/vnf-agent/vpp1/config/...) or relative to --service-label's root.
Every value is validated first; each bad entry is reported and the good ones are
written in etcd transactions of at most --txops operations (etcd refuses bigger
ones by default). The exit code is non-zero when any entry was bad.`,
		Example: `  $ cat input.txt
  config/vpp/v2/interfaces/loop1 {"name":"loop1","type":"SOFTWARE_LOOPBACK"}
  config/vpp/l2/v2/bridge-domain/bd1 {"name":"bd1"}
  $ agentctl import input.txt`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if txOps < 1 {
				return fmt.Errorf("--txops %d: want at least 1", txOps)
			}
			name, err := fileArg(args, file)
			if err != nil {
				return err
			}
			data, err := readInput(cmd, name)
			if err != nil {
				return err
			}
			entries, err := parseImport(data, format)
			if err != nil {
				return fmt.Errorf("import %s: %w", name, err)
			}
			return c.runImport(cmd, entries, txOps, force, dryRun)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "the file to import (\"-\" for stdin), as the FILE argument")
	f.IntVar(&txOps, "txops", DefaultTxOps, "operations per etcd transaction")
	f.StringVar(&format, "format", FormatAuto, "file format: auto, lines or yaml (JSON is YAML)")
	f.BoolVar(&force, "force", false, "write values without validating them")
	f.BoolVar(&dryRun, "dry-run", false, "validate only, write nothing")
	return cmd
}

// fileArg takes the input file from the argument or -f, not both.
func fileArg(args []string, flagFile string) (string, error) {
	switch {
	case len(args) == 1 && flagFile != "":
		return "", fmt.Errorf("give the file once: as an argument (%s) or with -f (%s)", args[0], flagFile)
	case len(args) == 1:
		return args[0], nil
	case flagFile != "":
		return flagFile, nil
	}
	return "", errors.New("missing file: give FILE, -f FILE, or - for stdin")
}

func readInput(cmd *cobra.Command, name string) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read import file: %w", err)
	}
	return b, nil
}

// parseImport reads the entries of an import file.
func parseImport(data []byte, format string) ([]importEntry, error) {
	if format == FormatAuto {
		format = detectFormat(data)
	}
	switch format {
	case FormatLines:
		return parseLines(data), nil
	case FormatYAML, "json":
		return parseYAML(data)
	}
	return nil, fmt.Errorf("unknown format %q: want auto, lines or yaml", format)
}

// detectFormat looks at the first meaningful line: Ligato's line format
// starts with a key (no ':' in it) followed by a value; anything else is
// YAML or JSON.
func detectFormat(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) >= 2 && !strings.Contains(fields[0], ":") &&
			fields[0] != "-" && fields[0] != "---" && !strings.HasPrefix(fields[0], "{") && !strings.HasPrefix(fields[0], "[") {
			return FormatLines
		}
		return FormatYAML
	}
	return FormatYAML
}

func parseLines(data []byte) []importEntry {
	var out []importEntry
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := "line " + strconv.Itoa(i+1)
		key, val := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			key, val = line[:i], strings.TrimSpace(line[i+1:])
		}
		if val == "" {
			out = append(out, importEntry{Where: where, Key: key, Err: errors.New("want KEY VALUE on one line")})
			continue
		}
		out = append(out, importEntry{Where: where, Key: key, Data: []byte(val)})
	}
	return out
}

func parseYAML(data []byte) ([]importEntry, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	var out []importEntry
	switch d := doc.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		if isLigatoConfig(d) {
			return parseLigatoConfig(d), nil
		}
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, valueEntry("key "+k, k, d[k]))
		}
	case []any:
		for i, it := range d {
			where := "item " + strconv.Itoa(i+1)
			obj, ok := it.(map[string]any)
			if !ok {
				out = append(out, importEntry{Where: where, Err: errors.New("want an object with key and value")})
				continue
			}
			key, _ := obj["key"].(string)
			val, hasVal := obj["value"]
			if key == "" || !hasVal {
				out = append(out, importEntry{Where: where, Key: key, Err: errors.New("want an object with key and value")})
				continue
			}
			out = append(out, valueEntry(where, key, val))
		}
	default:
		return nil, errors.New("want a map of key to value, a list of {key, value}, or KEY VALUE lines")
	}
	return out, nil
}

// valueEntry takes a value object, or a string holding JSON (as Ligato's
// files and etcdctl users write them).
func valueEntry(where, key string, v any) importEntry {
	if v == nil || v == "" {
		return importEntry{Where: where, Key: key, Err: errors.New("no value")}
	}
	if s, ok := v.(string); ok {
		return importEntry{Where: where, Key: key, Data: []byte(s)}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return importEntry{Where: where, Key: key, Err: fmt.Errorf("encode value: %w", err)}
	}
	return importEntry{Where: where, Key: key, Data: b}
}

type goodEntry struct {
	full  string
	data  []byte
	where string
}

func (c *cli) runImport(cmd *cobra.Command, entries []importEntry, txOps int, force, dryRun bool) error {
	rep := ImportReport{Entries: len(entries), DryRun: dryRun, Txns: []ImportTxn{}}
	var good []goodEntry
	seen := map[string]int{} // full key → index in good
	for _, e := range entries {
		if e.Err != nil {
			rep.Errors = append(rep.Errors, ImportError{Where: e.Where, Key: e.Key, Error: e.Err.Error()})
			continue
		}
		full := fullKey(c.label, e.Key)
		data := e.Data
		if !force {
			canon, err := validate(full, data)
			if err != nil {
				rep.Errors = append(rep.Errors, ImportError{Where: e.Where, Key: e.Key, Error: err.Error()})
				continue
			}
			data = canon
		}
		// etcd refuses a txn naming a key twice; the file's last word wins.
		if i, dup := seen[full]; dup {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: %s repeats %s; the later value wins", e.Where, full, good[i].where))
			good[i] = goodEntry{full: full, data: data, where: e.Where}
			continue
		}
		seen[full] = len(good)
		good = append(good, goodEntry{full: full, data: data, where: e.Where})
	}
	if !dryRun && len(good) > 0 {
		cl, err := c.etcdClient()
		if err != nil {
			return err
		}
		for start := 0; start < len(good); start += txOps {
			batch := good[start:min(start+txOps, len(good))]
			ops := make([]clientv3.Op, len(batch))
			for i, g := range batch {
				ops[i] = clientv3.OpPut(g.full, string(g.data))
			}
			ctx, cancel := c.reqCtx(cmd.Context())
			resp, err := cl.Txn(ctx).Then(ops...).Commit()
			cancel()
			if err != nil {
				return c.etcdErr("import txn of", fmt.Sprintf("%d keys (%s..%s, %d already imported)", len(batch), batch[0].full, batch[len(batch)-1].full, rep.Imported), err)
			}
			rep.Txns = append(rep.Txns, ImportTxn{Keys: len(batch), Revision: resp.Header.Revision})
			rep.Imported += len(batch)
		}
	}
	err := c.render(rep, func(w io.Writer) error {
		for _, t := range rep.Txns {
			fmt.Fprintf(w, "committed txn of %d keys (revision %d)\n", t.Keys, t.Revision)
		}
		verb := "imported"
		n := rep.Imported
		if dryRun {
			verb, n = "valid (dry run)", len(good)
		}
		_, err := fmt.Fprintf(w, "%s %d keys from %d entries in %d txns, %d bad\n", verb, n, rep.Entries, len(rep.Txns), len(rep.Errors))
		return err
	})
	if err != nil {
		return err
	}
	for _, wmsg := range rep.Warnings {
		fmt.Fprintf(c.errOut, "warning: %s\n", wmsg)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(c.errOut, "bad entry %s (%s): %s\n", e.Where, e.Key, e.Error)
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("import: %d of %d entries are bad and were not imported", len(rep.Errors), rep.Entries)
	}
	return nil
}
