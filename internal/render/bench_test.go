package render

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// BenchmarkBytes renders the end-to-end tests' cassandra.yaml template (a
// real node's configuration) with secrets, as YAML (substitution inside the
// parsed tree) and as text.
func BenchmarkBytes(b *testing.B) {
	tmpl, err := os.ReadFile("../../test/cassandra/cassandra.yaml.tmpl")
	if err != nil {
		b.Skip(err)
	}
	vars := Vars{}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_0-9]+)\}`).FindAllStringSubmatch(string(tmpl), -1) {
		switch n := m[1]; {
		case strings.HasSuffix(n, "PORT"):
			vars[n] = "7000"
		case strings.HasSuffix(n, "PASSWORD"):
			vars[n] = `p@ss: "word" # ${NOT}`
		default:
			vars[n] = "/var/lib/cassandra"
		}
	}
	text := Vars{}
	for n, v := range vars {
		text[n] = strings.ReplaceAll(v, `"`, "")
	}
	for _, f := range []Format{YAML, Text} {
		b.Run(string(f), func(b *testing.B) {
			v := vars
			if f == Text {
				v = text
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := Bytes(tmpl, "cassandra.yaml", v, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
