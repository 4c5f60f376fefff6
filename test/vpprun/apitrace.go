package vpprun

import (
	"context"
	"regexp"
)

// APITraceReset starts a fresh binary-API trace: every message VPP receives
// from any client from now on is recorded (VPP's trace ring holds 262,144).
func (v *VPP) APITraceReset(ctx context.Context) error {
	for _, cmd := range []string{"api trace off", "api trace free", "api trace on"} {
		if _, err := v.CLI(ctx, cmd); err != nil {
			return err
		}
	}
	return nil
}

// APITraceCounts counts the traced messages by name since APITraceReset.
func (v *VPP) APITraceCounts(ctx context.Context) (map[string]uint64, error) {
	out, err := v.CLI(ctx, "api trace dump")
	if err != nil {
		return nil, err
	}
	return ParseAPITrace(out), nil
}

var traceLine = regexp.MustCompile(`(?m)^vl_api_([a-z0-9_]+)_t:`)

// ParseAPITrace counts messages in `api trace dump` output, where each
// traced message starts a line "vl_api_<name>_t:".
func ParseAPITrace(dump string) map[string]uint64 {
	out := map[string]uint64{}
	for _, m := range traceLine.FindAllStringSubmatch(dump, -1) {
		out[m[1]]++
	}
	return out
}
