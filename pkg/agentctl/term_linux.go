package agentctl

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether w is a terminal (a tty or pty).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// termHeight is the terminal's number of rows (24 when unknown).
func termHeight(out io.Writer) int {
	if f, ok := out.(*os.File); ok && f != nil {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Row > 8 {
			return int(ws.Row)
		}
	}
	return 24
}
