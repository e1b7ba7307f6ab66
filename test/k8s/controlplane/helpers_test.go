package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestStripTemplateLines(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{name: "plain", in: "a: 1\nb: 2\n", want: "a: 1\nb: 2\n"},
		{name: "wrapped", in: "{{- if .Values.crds.enabled }}\na: 1\n  {{- end }}\n", want: "a: 1\n"},
		{name: "no final newline", in: "a: 1\n{{ end }}", want: "a: 1\n"},
		{name: "inline expression", in: "a: 1\nname: {{ .Release.Name }}\n", err: ":2: a Helm template expression"},
		{name: "two on a line", in: "{{ if x }}{{ end }}\n", err: ":1: a Helm template expression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := stripTemplateLines([]byte(tc.in), "f.yaml")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestDecodeYAML(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		kinds    []string
		err      string
	}{
		{name: "empty", in: ""},
		{name: "comments and empty documents", in: "# c\n---\n---\n# only a comment\n", kinds: nil},
		{name: "two", in: "apiVersion: v1\nkind: A\n---\napiVersion: v1\nkind: B\n", kinds: []string{"A", "B"}},
		{name: "JSON", in: `{"apiVersion": "v1", "kind": "A"}`, kinds: []string{"A"}},
		{name: "no kind", in: "apiVersion: v1\nkind: A\n---\napiVersion: v1\n", err: "YAML document 2: no apiVersion or kind"},
		{name: "bad YAML", in: "apiVersion: v1\nkind: [\n", err: "YAML document 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := DecodeYAML([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v; want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.GetKind())
			}
			if !slices.Equal(kinds, tc.kinds) {
				t.Fatalf("kinds %v, want %v", kinds, tc.kinds)
			}
		})
	}
}

func TestCassandraDatacenterPodTemplate(t *testing.T) {
	objs, err := DecodeYAML([]byte(`
apiVersion: cassandra.datastax.com/v1beta1
kind: CassandraDatacenter
metadata: {name: dc1}
spec:
  storageConfig:
    additionalVolumes:
      - {name: identity, mountPath: /id, volumeSource: {csi: {driver: csi.cert-manager.io}}}
      - {name: extra-data, mountPath: /extra, pvcSpec: {accessModes: [ReadWriteOnce]}}
  podTemplateSpec:
    spec:
      initContainers: [{name: server-config-init}, {name: ours}]
      containers: [{name: cassandra}, {name: sidecar, image: x}]
      volumes: [{name: server-config, configMap: {name: c}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := CassandraDatacenterPodTemplate(objs[0])
	if err != nil {
		t.Fatal(err)
	}
	volumes, _, _ := unstructured.NestedSlice(tmpl, "spec", "volumes")
	got := map[string]map[string]any{}
	var names []string
	for _, v := range volumes {
		m := v.(map[string]any)
		got[m["name"].(string)] = m
		names = append(names, m["name"].(string))
	}
	want := []string{"server-config", "identity", "extra-data", "server-data", "server-config-base", "server-logs", "vector-lib"}
	if !slices.Equal(names, want) {
		t.Errorf("volumes %v, want %v", names, want)
	}
	if _, ok := got["identity"]["csi"]; !ok {
		t.Errorf("identity volume %v lost its csi source", got["identity"])
	}
	if _, ok := got["server-config"]["configMap"]; !ok {
		t.Errorf("the template's own server-config volume was replaced: %v", got["server-config"])
	}
	for field, want := range map[string][]string{"initContainers": {OperatorImage, ""}, "containers": {OperatorImage, "x"}} {
		cs, _, _ := unstructured.NestedSlice(tmpl, "spec", field)
		for i, c := range cs {
			image, _ := c.(map[string]any)["image"].(string)
			if image != want[i] {
				t.Errorf("%s[%d] image %q, want %q", field, i, image, want[i])
			}
		}
	}
	// The input is left as it was.
	if vs, _, _ := unstructured.NestedSlice(objs[0].Object, "spec", "podTemplateSpec", "spec", "volumes"); len(vs) != 1 {
		t.Errorf("the CassandraDatacenter's own volumes changed: %v", vs)
	}
}

// TestLoadCRDs reads every CRD from the module cache (no control plane).
func TestLoadCRDs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	crds, err := LoadCRDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range crds {
		names = append(names, c.Name)
	}
	for _, want := range []string{
		"cassandradatacenters.cassandra.datastax.com", "certificates.cert-manager.io", "issuers.cert-manager.io",
		"clusterissuers.cert-manager.io", "certificaterequests.cert-manager.io", "bundles.trust.cert-manager.io",
		"podmonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("no CRD %s among %v", want, names)
		}
	}
}

func TestKustomize(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("kustomization.yaml", "namespace: ns\nnamePrefix: p-\nresources: [cm.yaml]\n"+
		"configMapGenerator: [{name: gen, literals: [a=b], options: {disableNameSuffixHash: true}}]\n")
	write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {k: v}\n")
	objs, err := Kustomize(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, Describe(o))
	}
	if want := []string{"ConfigMap ns/p-cm", "ConfigMap ns/p-gen"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := Kustomize(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing directory: got %v", err)
	}
}
