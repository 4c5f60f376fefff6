package agentctl

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParseValidate1k measures reading and validating a 1,000-line
// import file, the part of import that runs before etcd is touched.
func BenchmarkParseValidate1k(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&sb, "config/vpp/v2/interfaces/memif%d {\"name\":\"memif%d\",\"type\":\"MEMIF\",\"memif\":{\"id\":%d,\"socket_filename\":\"/run/m.sock\"}}\n", i, i, i)
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		entries, err := parseImport(data, FormatAuto)
		if err != nil || len(entries) != 1000 {
			b.Fatalf("%d entries, %v", len(entries), err)
		}
		for _, e := range entries {
			if _, err := validate(fullKey("vpp1", e.Key), e.Data); err != nil {
				b.Fatal(err)
			}
		}
	}
}
