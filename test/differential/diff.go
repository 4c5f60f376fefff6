package differential

import (
	"fmt"
	"strings"
)

// Diff returns a readable line diff of two texts ("" when equal): lines only in a
// start with "-", lines only in b with "+", each hunk with up to three lines of context
// and the scenario step ("## …") it belongs to.
func Diff(aName, a, bName, b string) string {
	if a == b {
		return ""
	}
	x := strings.Split(a, "\n")
	y := strings.Split(b, "\n")
	// Longest common subsequence table, from the end.
	lcs := make([][]int32, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte // ' ', '-', '+'
		text string
	}
	var ops []op
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			ops = append(ops, op{' ', x[i]})
			i++
			j++
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			ops = append(ops, op{'+', y[j]})
			j++
		default:
			ops = append(ops, op{'-', x[i]})
			i++
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", aName, bName)
	const ctx = 3
	lastPrinted := -1
	for k, o := range ops {
		if o.kind == ' ' {
			continue
		}
		start := max(k-ctx, lastPrinted+1)
		if start > lastPrinted+1 {
			// name the step the hunk is in
			for s := start; s >= 0; s-- {
				if strings.HasPrefix(ops[s].text, "## ") {
					if s < start {
						fmt.Fprintf(&out, "@@ %s\n", ops[s].text)
					}
					break
				}
			}
			if lastPrinted >= 0 {
				out.WriteString("...\n")
			}
		}
		end := min(k+ctx, len(ops)-1)
		for n := start; n <= end; n++ {
			if n <= lastPrinted {
				continue
			}
			// stop the trailing context at the next change; it prints itself
			fmt.Fprintf(&out, "%c %s\n", ops[n].kind, ops[n].text)
			lastPrinted = n
			if n > k && ops[n].kind != ' ' {
				break
			}
		}
	}
	return out.String()
}
