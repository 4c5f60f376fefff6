package agentctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"
)

// render writes v as JSON or YAML when asked, else calls table, which
// writes the human view.
func (c *cli) render(v any, table func(w io.Writer) error) error {
	switch c.output {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		_, err = fmt.Fprintf(c.out, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = c.out.Write(b)
		return err
	}
	return table(c.out)
}

// table writes rows under a header, aligned.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			// A tab or newline inside a cell would break the alignment.
			r[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(r[i])
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// compactJSON shows a JSON value on one line; other bytes as they are.
func compactJSON(b []byte) string {
	if len(b) > 0 && json.Valid(b) {
		var out bytes.Buffer
		if err := json.Compact(&out, b); err == nil {
			return out.String()
		}
	}
	return string(b)
}

// rawOrString embeds a JSON value as JSON and anything else as a string, so
// -o json output stays parseable whatever etcd holds.
func rawOrString(b []byte) any {
	if len(b) > 0 && json.Valid(b) {
		return json.RawMessage(b)
	}
	return string(b)
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return t.Local().Format("2006-01-02 15:04:05") + " (" + d.String() + " ago)"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
