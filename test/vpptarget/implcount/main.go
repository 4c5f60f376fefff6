// Command implcount reads `go test -json` on stdin, prints what plain `go
// test` would (package results, and the output of failed tests), and ends
// with how many tests ran against each VPP implementation: subtests named
// "vppsim" or "vpp" (see test/vpptarget). Its exit status is 1 when a test
// or package failed, so a pipeline needs no pipefail to notice.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// Counts is the pass/fail/skip tally of one implementation.
type Counts struct{ Pass, Fail, Skip int }

// impl returns the implementation a test name ran against: the last path
// element, if it is one of the matrix's subtest names.
func impl(test string) string {
	last := test[strings.LastIndex(test, "/")+1:]
	switch last {
	case "vppsim", "vpp":
		return last
	}
	return ""
}

// run copies the relevant output to w and returns the tallies and whether
// anything failed.
func run(r io.Reader, w io.Writer) (map[string]*Counts, bool, error) {
	counts, _, failed, err := runWhy(r, w)
	return counts, failed, err
}

// runWhy is run that also returns why the first skipped vpp test skipped.
func runWhy(r io.Reader, w io.Writer) (map[string]*Counts, string, bool, error) {
	counts := map[string]*Counts{"vppsim": {}, "vpp": {}}
	why := ""
	buf := map[string][]string{} // package/test → its output, printed if it fails
	failed := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if err := json.Unmarshal(line, &ev); err != nil || ev.Action == "" {
			// Not test2json (a build error, say): pass it through.
			fmt.Fprintln(w, string(line))
			continue
		}
		key := ev.Package + " " + ev.Test
		switch ev.Action {
		case "build-output":
			// Compiler errors (go 1.24+ reports them as events too).
			fmt.Fprint(w, ev.Output)
		case "build-fail":
			failed = true
		case "output":
			if ev.Test == "" {
				if !strings.HasPrefix(ev.Output, "=== ") && !strings.HasPrefix(ev.Output, "PASS\n") {
					fmt.Fprint(w, ev.Output)
				}
				continue
			}
			buf[key] = append(buf[key], ev.Output)
		case "pass", "fail", "skip":
			if ev.Test != "" {
				if c := counts[impl(ev.Test)]; c != nil {
					switch ev.Action {
					case "pass":
						c.Pass++
					case "fail":
						c.Fail++
					case "skip":
						c.Skip++
					}
				}
				if ev.Action == "fail" {
					failed = true
					fmt.Fprint(w, strings.Join(buf[key], ""))
				}
				if ev.Action == "skip" && why == "" && impl(ev.Test) == "vpp" {
					why = skipReason(buf[key])
				}
				delete(buf, key)
			} else if ev.Action == "fail" {
				failed = true
			}
		}
	}
	return counts, why, failed, sc.Err()
}

// skipReason is the t.Skip line in a skipped test's output.
func skipReason(out []string) string {
	for _, l := range out {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "=== ") && !strings.HasPrefix(l, "--- ") {
			// "file.go:12: reason" → "reason"
			if f := strings.SplitN(l, ": ", 2); len(f) == 2 && strings.Contains(f[0], ".go:") {
				l = f[1]
			}
			return l
		}
	}
	return ""
}

func main() {
	counts, why, failed, err := runWhy(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "implcount:", err)
		os.Exit(2)
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Println("tests per VPP implementation (subtests of the vpptarget matrix):")
	for _, n := range names {
		c := counts[n]
		fmt.Printf("  %-7s %4d ran (%d passed, %d failed), %d skipped\n", n, c.Pass+c.Fail, c.Pass, c.Fail, c.Skip)
	}
	if c := counts["vpp"]; c.Pass+c.Fail == 0 && why != "" {
		fmt.Printf("  vpp runs skipped: %s\n", why)
	}
	if failed {
		os.Exit(1)
	}
}
