package render

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const cassandraTmpl = `# rendered by cassandra-tls-agent
cluster_name: test
client_encryption_options:
  enabled: true
  keystore: /crypto/keystore.jks
  keystore_password: ${KEYSTORE_PASSWORD}   # from the Secret
  truststore_password: "${TRUSTSTORE_PASSWORD}"
  require_client_auth: true
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "${SEEDS:-127.0.0.1:7000}"
native_transport_port: !!int ${PORT:-9042}
`

// TestYAMLHostileValues: whatever a secret holds, the rendered file parses
// to the template's keys, and the password scalar holds exactly the secret.
func TestYAMLHostileValues(t *testing.T) {
	hostile := []string{
		`p"ss`, `a: b`, `x # not a comment`, "line1\nline2", "trailing newline\n", `${OTHER}`, `{}`, `[1, 2]`,
		`*alias`, `&anchor`, `true`, `null`, `123`, `0x1F`, `~`, `- item`, `'single'`, `key: {nested: map}`,
		`%TAG`, `!!binary`, `@at`, "`backtick", `|`, `>`, ` leading space`, `trailing space `, "tab\there", `---`, `...`,
		"\\backslash", `é unicode ✓`, `$$dollar`,
	}
	for _, pw := range hostile {
		t.Run(pw, func(t *testing.T) {
			vars := Vars{"KEYSTORE_PASSWORD": pw, "TRUSTSTORE_PASSWORD": pw, "OTHER": "expanded-twice"}
			out, err := Bytes([]byte(cassandraTmpl), "cassandra.yaml", vars, YAML)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			var got struct {
				ClusterName string           `yaml:"cluster_name"`
				Client      map[string]any   `yaml:"client_encryption_options"`
				Seeds       []map[string]any `yaml:"seed_provider"`
				Port        any              `yaml:"native_transport_port"`
			}
			if err := yaml.Unmarshal(out, &got); err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			wantKeys := []string{"enabled", "keystore", "keystore_password", "require_client_auth", "truststore_password"}
			if keys := sortedKeys(got.Client); !reflect.DeepEqual(keys, wantKeys) {
				t.Errorf("client_encryption_options keys = %v, want %v\n%s", keys, wantKeys, out)
			}
			if got.Client["keystore_password"] != pw || got.Client["truststore_password"] != pw {
				t.Errorf("passwords = %#v / %#v, want the string %q", got.Client["keystore_password"], got.Client["truststore_password"], pw)
			}
			if got.Client["require_client_auth"] != true || got.Port != 9042 || got.ClusterName != "test" {
				t.Errorf("untouched values changed type: %#v %#v", got.Client["require_client_auth"], got.Port)
			}
			if !strings.Contains(string(out), "# from the Secret") {
				t.Errorf("comment lost:\n%s", out)
			}
		})
	}
}

func sortedKeys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	for i := range k {
		for j := i + 1; j < len(k); j++ {
			if k[j] < k[i] {
				k[i], k[j] = k[j], k[i]
			}
		}
	}
	return k
}

func TestMissingVariablesAllNamed(t *testing.T) {
	_, err := Bytes([]byte(cassandraTmpl), "cassandra.yaml", Vars{"KEYSTORE_PASSWORD": ""}, YAML)
	var me *MissingError
	if !errors.As(err, &me) || !reflect.DeepEqual(me.Names, []string{"KEYSTORE_PASSWORD", "TRUSTSTORE_PASSWORD"}) {
		t.Fatalf("err = %v, want both passwords named (the empty one too)", err)
	}
	_, err = Bytes([]byte("a=${A}\nb=${B}\nc=${A}\n"), "x.properties", Vars{}, Text)
	if !errors.As(err, &me) || !reflect.DeepEqual(me.Names, []string{"A", "B"}) {
		t.Fatalf("text: err = %v", err)
	}
}

func TestYAMLRefusals(t *testing.T) {
	tests := []struct{ name, tmpl, want string }{
		{"placeholder in a key", "${K}: v\n", "values only"},
		{"int tag with a non-int", "port: !!int ${PW}\n", "not of that type"},
		{"invalid template", "a: [\n", "not valid YAML"},
	}
	for _, tc := range tests {
		_, err := Bytes([]byte(tc.tmpl), "t.yaml", Vars{"K": "k", "PW": "abc"}, YAML)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestTextRefusesLineBreaks(t *testing.T) {
	out, err := Bytes([]byte("user=${U}\npass=${P}\n"), "reaper.properties", Vars{"U": "u", "P": "a:b#c${X}"}, Text)
	if err != nil || string(out) != "user=u\npass=a:b#c${X}\n" {
		t.Fatalf("got %q, %v", out, err)
	}
	if _, err := Bytes([]byte("pass=${P}\n"), "r.properties", Vars{"P": "a\nevil=1"}, Text); err == nil || !strings.Contains(err.Error(), "line break") {
		t.Fatalf("newline in a text value: err = %v", err)
	}
}

func TestSecretsDirAndInPlace(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	os.MkdirAll(filepath.Join(secrets, "..2026_11_23"), 0o755)
	os.WriteFile(filepath.Join(secrets, "..2026_11_23", "keystore-password"), []byte("from-secret\n"), 0o600)
	os.Symlink("..2026_11_23/keystore-password", filepath.Join(secrets, "keystore-password"))
	os.WriteFile(filepath.Join(secrets, "truststore.password"), []byte("ts"), 0o600)
	vars := FromEnviron([]string{"KEYSTORE_PASSWORD=from-env"})
	if err := vars.LoadSecretsDir(secrets); err != nil {
		t.Fatal(err)
	}
	if vars["KEYSTORE_PASSWORD"] != "from-secret" || vars["TRUSTSTORE_PASSWORD"] != "ts" {
		t.Fatalf("vars = %v", vars)
	}
	p := filepath.Join(dir, "cassandra.yaml")
	os.WriteFile(p, []byte(cassandraTmpl), 0o644)
	wrote, err := File(p, p, vars, Auto, 0)
	if err != nil || !wrote {
		t.Fatalf("in-place render: %v %v", wrote, err)
	}
	// Rendering the rendered file again changes nothing and writes nothing.
	if wrote, err := File(p, p, vars, Auto, 0); err != nil || wrote {
		t.Fatalf("second in-place render: wrote=%v err=%v", wrote, err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}
