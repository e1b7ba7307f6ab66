package render

import (
	"strings"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render/rendertest"

	"go.yaml.in/yaml/v3"
)

// TestYAML11ValuesAreQuoted: every substituted string is written in a form
// that no YAML version can resolve to another type — quoted (or a block
// scalar) — while the untouched plain scalars keep their form.
func TestYAML11ValuesAreQuoted(t *testing.T) {
	for _, v := range rendertest.YAML11 {
		out, err := Bytes([]byte("a: ${V}\nb:\n  - ${V}\nc: off\n"), "t.yaml", Vars{"V": v}, YAML)
		if err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(out, &doc); err != nil {
			t.Fatalf("%q: %v\n%s", v, err, out)
		}
		m := doc.Content[0]
		for _, n := range []*yaml.Node{m.Content[1], m.Content[3].Content[0]} {
			if n.Value != v || n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
				t.Errorf("%q written as %q, plain:\n%s", v, n.Value, out)
			}
		}
		if !strings.Contains(string(out), "\nc: off\n") {
			t.Errorf("the template's own plain scalar changed:\n%s", out)
		}
	}
}
