package agentctl

import (
	"strings"
	"testing"
)

// FuzzParseImport: an import file is user input; whatever it holds, parsing
// must not panic, and every entry read must either carry an error or a key
// and a value.
func FuzzParseImport(f *testing.F) {
	f.Add([]byte("config/vpp/v2/interfaces/loop1 {\"name\":\"loop1\"}\n# c\n\nbad\n"))
	f.Add([]byte("config/vpp/v2/interfaces/a:\n  name: a\n"))
	f.Add([]byte("- key: k\n  value: {name: a}\n- 3\n"))
	f.Add([]byte(`{"config/vpp/l2/v2/xconnect/a": "{\"receive_interface\":\"a\"}"}`))
	f.Add([]byte("[1, {\"key\": 2}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []string{FormatAuto, FormatLines, FormatYAML} {
			entries, err := parseImport(data, format)
			if err != nil {
				continue
			}
			for _, e := range entries {
				if e.Err == nil && (e.Key == "" && format == FormatLines || len(e.Data) == 0) {
					t.Fatalf("%s: entry without error lacks key or value: %+v", format, e)
				}
				if e.Err == nil && !strings.HasPrefix(e.Where, "line ") && !strings.HasPrefix(e.Where, "key ") && !strings.HasPrefix(e.Where, "item ") {
					t.Fatalf("entry without a location: %+v", e)
				}
				// Validation is what import runs next; it must not panic either.
				validate(fullKey("vpp1", e.Key), e.Data)
			}
		}
	})
}
