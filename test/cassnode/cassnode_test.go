package cassnode

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFindLogLine(t *testing.T) {
	log := strings.Join([]string{
		"Jolokia: Agent 2.6.0 started with URL http://127.0.0.1:8778/jolokia and PID 1",
		"WARNING: Starting listening for CQL clients (no timestamp: ignored)",
		"2026-11-23T18:22:55.814Z INFO  [main] PipelineConfigurator - Starting listening for CQL clients on /127.0.0.1:9042 (encrypted)...",
		"2026-11-23T19:22:56.001+01:00 INFO  [main] PipelineConfigurator - Starting listening for CQL clients on /127.0.0.1:9042 (encrypted)...",
		"2026-11-23T18:22:57.000Z INFO  [main] Other - done",
	}, "\n") + "\n"
	p := filepath.Join(t.TempDir(), "stdout.log")
	if err := os.WriteFile(p, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, line, err := FindLogLine(p, CQLReadyLine)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 23, 18, 22, 56, 1e6, time.UTC)
	if !ts.Equal(want) || !strings.Contains(line, "+01:00") {
		t.Fatalf("got %v %q, want %v (last match)", ts, line, want)
	}
	if _, _, err := FindLogLine(p, "never logged"); !errors.Is(err, ErrNoLogLine) {
		t.Fatalf("missing line: err = %v, want ErrNoLogLine", err)
	}
}

func TestJavaMajor(t *testing.T) {
	for in, want := range map[string]int{
		`openjdk version "17.0.15" 2025-04-15`: 17,
		`openjdk version "11.0.2" 2019-01-15`:  11,
		`java version "1.8.0_402"`:             8,
		`openjdk version "21" 2023-09-19`:      21,
		`garbage`:                              0,
	} {
		if got := javaMajor(in); got != want {
			t.Errorf("javaMajor(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "test", "cassandra", "cassandra.yaml.tmpl")); err != nil {
		t.Fatal(err)
	}
}
