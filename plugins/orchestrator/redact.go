package orchestrator

import "strings"

// redactParseError keeps a parse error useful (key, field, line:column) but
// drops the value text protojson quotes when that text may be a memif
// secret: an error naming the secret field, or a syntax error, which names
// no field at all. Log lines and status keys get the redacted text.
func redactParseError(msg string) string {
	for _, marker := range []string{"field secret:", "syntax error"} {
		i := strings.Index(msg, marker)
		if i < 0 {
			continue
		}
		// Keep up to the position ("(line 1:31):"), drop the token after it.
		rest := msg[i:]
		if j := strings.Index(rest, "):"); j >= 0 && marker == "syntax error" {
			return msg[:i] + rest[:j+2] + " invalid value (redacted)"
		}
		return msg[:i] + marker + " (value redacted)"
	}
	return msg
}
