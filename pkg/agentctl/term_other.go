//go:build !linux

package agentctl

import "io"

// isTerminal is false off Linux: agentctl then prints plain lines.
func isTerminal(io.Writer) bool { return false }

// termHeight is 24 off Linux.
func termHeight(io.Writer) int { return 24 }
