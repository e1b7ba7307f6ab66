package test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render/rendertest"
)

// cassandraJar finds one of Cassandra's jars in the cache `make deps` fills.
func cassandraJar(t *testing.T, prefix string) string {
	t.Helper()
	jars, _ := filepath.Glob(filepath.Join(repoRoot(), ".cache", "cassandra", "lib", prefix+"-*.jar"))
	if len(jars) == 0 {
		t.Fatalf("no %s jar in .cache/cassandra/lib: run `make deps` (./test/deps.sh)", prefix)
	}
	return jars[0]
}

// fileValues keeps the values a secrets file can carry: not only white
// space (an empty secret is refused), and not ending in CR (with the file's
// newline it would read as CRLF, which is dropped whole).
func fileValues(values []string) []string {
	var out []string
	for _, v := range values {
		if strings.TrimSpace(v) != "" && !strings.HasSuffix(v, "\r") {
			out = append(out, v)
		}
	}
	return out
}

// secretsFor writes one secrets-directory file per value (v000 → ${V000})
// and returns the directory. A file's one trailing newline is dropped by the
// agent, so each file gets one.
func secretsFor(t *testing.T, values []string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	for i, v := range values {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("v%03d", i)), []byte(v+"\n"))
	}
	return dir
}

// TestYAMLValuesReadBySnakeYAML: a YAML template rendered with values that
// YAML 1.1 readers retype (off, Yes, 190:20:30, 0x1F, ~, 2001-12-14, ...) and
// hostile ones; SnakeYAML, which Cassandra uses, must read every value back
// as a java.lang.String equal to the input.
func TestYAMLValuesReadBySnakeYAML(t *testing.T) {
	need(t, "java")
	jar := cassandraJar(t, "snakeyaml")
	values := fileValues(append(append([]string{}, rendertest.YAML11...), rendertest.Hostile...))
	dir := t.TempDir()
	var tmpl strings.Builder
	for i := range values {
		fmt.Fprintf(&tmpl, "k%03d: ${V%03d}\n", i, i)
	}
	tp, out := filepath.Join(dir, "cassandra.yaml.tmpl"), filepath.Join(dir, "cassandra.yaml")
	writeFile(t, tp, []byte(tmpl.String()))
	if r := agent(t, nil, "render", "--template", tp, "--out", out, "--format", "yaml", "--secrets-dir", secretsFor(t, values)); r.code != 0 {
		t.Fatalf("render: exit %d\n%s", r.code, r.stderr)
	}
	got := run(t, "java", "-cp", jar, filepath.Join(repoRoot(), "test", "java", "YamlTypes.java"), out)
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		f := strings.Split(line, "\t")
		var i int
		if len(f) != 3 || !strings.HasPrefix(f[0], "k") {
			t.Fatalf("unexpected SnakeYAML output line %q", line)
		}
		fmt.Sscanf(f[0][1:], "%d", &i)
		val, _ := base64.StdEncoding.DecodeString(f[2])
		if f[1] != "java.lang.String" || string(val) != values[i] {
			t.Errorf("%q read back by SnakeYAML as %s %q", values[i], f[1], val)
		}
		seen++
	}
	if seen != len(values) {
		data, _ := os.ReadFile(out)
		t.Errorf("SnakeYAML read %d entries, want %d:\n%s", seen, len(values), data)
	}
}
