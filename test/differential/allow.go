package differential

import (
	"regexp"
	"strings"
)

// Allowance is one difference between vppsim and VPP 25.10 that is on purpose. Each
// entry names the row of the "Differences from VPP 25.10" table in
// test/vppsim/README.md that explains it; the suite tolerates exactly these: a Field
// entry masks one reply field on both targets, a Step entry replaces one scenario
// step's record on both targets, a Stat or Text entry masks stats entries or text.
type Allowance struct {
	Row   string // README row, e.g. "D1"
	Field string // "message_name.field_name"
	Step  string // scenario step name
	// Stat is a regular expression of stats segment entry names masked on both.
	Stat string
	// Text is a regular expression; its matches in transcript lines that start with
	// LinePrefix are masked on both.
	Text       string
	LinePrefix string
	// When, if set, limits the allowance to machines where it holds.
	When func() bool
	// MayMatch marks an allowance that hides a difference only on some machines
	// (it is not reported when it hides none).
	MayMatch bool
}

// Allowlist is the complete list; TestDifferentialVppsimVsVPP reports an entry that no
// longer hides any difference, so the list cannot silently outgrow the README.
var Allowlist = []Allowance{
	{Row: "D1", Field: "show_version_reply.version"},
	// VPP's answer depends on the host (/dev/vhost-net, a real Linux tap); vppsim
	// makes no tap. Not compared, so no machine can fail on it.
	{Row: "D2", Step: tapStep, MayMatch: true},
	{Row: "D3", Step: vhostRenumberStep},
	{Row: "D4", LinePrefix: "/if/names ", Text: `VirtualEthernet0/0/\d+`},
	{Row: "D5", LinePrefix: "  text: ", Text: `^  text: (l2 bridge loop1 bd_id 10 shg 0|l3 loop1)$`},
	{Row: "D7", Step: xconnectTxDeletedStep},
	{Row: "D10", Step: afPacketAdminStep},
	{Row: "D11", LinePrefix: "stats directory beyond ", Text: `\[.*\]$`},
	{Row: "D6", Stat: `^/sys/(loops_per_worker|vector_rate_per_worker)$`},
}

// maskText applies the Text allowances to one normalized line.
func maskText(line string) string {
	for _, a := range Allowlist {
		if a.Text == "" || !strings.HasPrefix(line, a.LinePrefix) || (a.When != nil && !a.When()) {
			continue
		}
		line = regexp.MustCompile(a.Text).ReplaceAllString(line, "<allowed "+a.Row+">")
	}
	return line
}

func allowedField(key string) (Allowance, bool) {
	for _, a := range Allowlist {
		if a.Field == key && (a.When == nil || a.When()) {
			return a, true
		}
	}
	return Allowance{}, false
}

func allowedStep(step string) (Allowance, bool) {
	for _, a := range Allowlist {
		if a.Step == step && (a.When == nil || a.When()) {
			return a, true
		}
	}
	return Allowance{}, false
}

func allowedStat(name string) (Allowance, bool) {
	for _, a := range Allowlist {
		if a.Stat != "" && regexp.MustCompile(a.Stat).MatchString(name) && (a.When == nil || a.When()) {
			return a, true
		}
	}
	return Allowance{}, false
}
