package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"go.yaml.in/yaml/v3"
)

// TestDeployManifests parses every manifest under deploy/ and loads the
// agent configurations its ConfigMap carries, so the shipped manifests
// cannot drift from the config schema.
func TestDeployManifests(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot(), "deploy", "*.yaml"))
	if len(files) < 5 {
		t.Fatalf("found %d manifests", len(files))
	}
	kinds := map[string]int{}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc struct {
				Kind     string `yaml:"kind"`
				Metadata struct{ Name string }
				Data     map[string]string `yaml:"data"`
			}
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kinds[doc.Kind]++
			if doc.Kind == "ConfigMap" && doc.Metadata.Name == "cassandra-tls-agent" {
				for name, body := range doc.Data {
					if _, err := config.Parse([]byte(body), name, []string{"POD_NAME=cluster1-dc1-default-sts-0"}); err != nil {
						t.Errorf("%s: %s: %v", f, name, err)
					}
				}
				if len(doc.Data) != 4 {
					t.Errorf("agent ConfigMap holds %d configs, want 4", len(doc.Data))
				}
			}
		}
	}
	for _, k := range []string{"Certificate", "Issuer", "CassandraDatacenter", "Deployment", "PodMonitor", "PrometheusRule", "ConfigMap"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in deploy/", k)
		}
	}
	var dash map[string]any
	data, _ := os.ReadFile(filepath.Join(repoRoot(), "deploy", "grafana-dashboard.json"))
	if err := json.Unmarshal(data, &dash); err != nil || len(dash["panels"].([]any)) == 0 {
		t.Errorf("dashboard: %v", err)
	}
}
