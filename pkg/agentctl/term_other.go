//go:build !linux

package agentctl

import "io"

// isTerminal is false off Linux: agentctl then prints plain lines.
func isTerminal(io.Writer) bool { return false }
