package config

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render"
)

// FuzzParse: config.Parse never panics, returns a configuration or an
// error, and an error never shows the value of a variable the file refers
// to — whole, quoted the Go way, or cut short as yaml.v3 shows long values
// — unless that text is in the file itself (then it is no secret).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	for _, p := range files {
		data, _ := os.ReadFile(p)
		f.Add(string(data), "s3cr3t-value")
	}
	for _, doc := range []string{
		"watch: {debounce: \"${X}\"}\n", "cqlshrc:\n  port: ${X}\n", "stores: ${X}\n", "stores:\n  - ${X}\n",
		"wait:\n  hosts: [h:1]\n  store: ${X}\n", "log:\n  level: ${X}\n", "stores: pre${X}\n",
		"stores:\n  - name: a\n    source: /s/${X}\n    pem: {dir: /s/${X}}\n",
		"stores:\n  - name: a\n    credentialBundle: /i/${X}\n    trustBundles: [\"/t/${X}\"]\n    pem: {dir: /o}\n",
		"stores:\n  - name: a\n    source: /s\n    files: {cert: \"${X}\", key: k}\n    pem: {dir: /o}\n",
		"reload:\n  - signal: {signal: \"${X}\", process: p}\n", "templates:\n  - {template: t, out: o, format: \"${X}\"}\n",
	} {
		f.Add(doc, `s3cr3t"valu\e`)
	}
	f.Fuzz(func(t *testing.T, doc, value string) {
		env := []string{"X=" + value, "POD_NAME=node1", "DEMO_DIR=/d"}
		c, err := Parse([]byte(doc), "c.yaml", env)
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", c, err)
		}
		if err == nil || len(value) < 3 || strings.Contains(doc, value) || strings.ContainsAny(value, "${}") {
			return
		}
		if _, used, _ := render.Render([]byte(doc), "c.yaml", render.FromEnviron(env), render.YAML); !slices.Contains(used, "X") {
			return
		}
		q := strconv.Quote(value)
		forms := []string{value, q[1 : len(q)-1]}
		if len(value) > 10 {
			forms = append(forms, "`"+value[:7]+"...`")
		}
		for _, form := range forms {
			if strings.Contains(err.Error(), form) {
				t.Fatalf("the error shows the value of ${X} as %q: %v", form, err)
			}
		}
	})
}
