package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExamplesParse keeps examples/ loadable: every example config must
// expand and validate with the environment the demo gives it.
func TestExamplesParse(t *testing.T) {
	env := []string{"DEMO_DIR=/d", "POD_NAME=node1", "NODE_DIR=/n", "CRYPTO_DIR=/c", "CLIENT_DIR=/r",
		"NATIVE_PORT=19042", "STORAGE_PORT=17000", "JOLOKIA_PORT=18778", "METRICS_PORT=19180"}
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) < 3 {
		t.Fatalf("found %d example configs", len(files))
	}
	for _, f := range files {
		c, err := Load(f, env)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if c.Cqlshrc != nil && c.Cqlshrc.Port != 19042 {
			t.Errorf("%s: port from ${NATIVE_PORT} = %d", f, c.Cqlshrc.Port)
		}
		if len(c.Stores) > 0 && !strings.HasPrefix(c.Stores[0].Source, "/d/secrets/") {
			t.Errorf("%s: source %q not expanded", f, c.Stores[0].Source)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "stores: []\nwatchh: {}\n", "field watchh not found"},
		{"missing env", "stores:\n  - name: a\n    source: ${NOPE}\n", "no value for NOPE"},
		{"bad duration", "watch: {debounce: soon}\n", "is not a duration"},
		{"undefined store ref", "wait: {hosts: [h:1], store: x}\n", `store "x" is not defined`},
		{"two actions in one", "reload:\n  - {exec: {command: [a]}, http: {url: u}}\n", "exactly one of"},
		{"duplicate store", "stores:\n  - {name: a, source: s, pem: {dir: d}}\n  - {name: a, source: s, pem: {dir: d}}\n", "duplicate store name"},
		{"keystore without password", "stores:\n  - {name: a, source: s, keystore: {path: k}}\n", "needs passwordFile or passwordEnv"},
		{"cqlshrc store without pem", "stores:\n  - {name: a, source: s, keystore: {path: k}, passwordFile: p}\ncqlshrc: {out: o, host: h, store: a}\n", "needs pem.dir"},
		{"bootstrap without wait", "bootstrap: [CREATE KEYSPACE x]\n", "needs a wait section"},
		{"bad port", "cqlshrc: {out: o, host: h, port: ninety}\n", "not a whole number"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.yaml), "c.yaml", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	c, err := Parse([]byte("watch: {debounce: 250ms}\n"), "c.yaml", nil)
	if err != nil || c.Watch.Debounce.Or(0) != 250*time.Millisecond || c.Watch.Resync.Or(time.Minute) != time.Minute {
		t.Errorf("durations: %v %+v", err, c)
	}
	if c, err := Parse(nil, "empty.yaml", nil); err != nil || c == nil {
		t.Errorf("an empty file: %v", err)
	}
}
