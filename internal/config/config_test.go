package config

import (
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	const store = "stores:\n  - {name: a, source: /s, passwordFile: /p, keystore: {path: /k/ks.jks}}\n"
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "stores: []\nwatchh: {}\n", "field watchh not found"},
		{"missing env", "stores:\n  - name: a\n    source: ${NOPE}\n", "no value for NOPE"},
		{"bad duration", "watch: {debounce: soon}\n", "not a duration"},
		{"negative duration", "watch: {resync: -1m}\n", "must not be negative"},
		{"undefined store ref", "wait: {hosts: [h:1], store: x}\n", `store "x" is not defined`},
		{"two actions in one", "reload:\n  - {exec: {command: [a]}, http: {url: u}}\n", "exactly one of"},
		{"duplicate store", "stores:\n  - {name: a, source: s, pem: {dir: d}}\n  - {name: a, source: s, pem: {dir: e}}\n", "duplicate store name"},
		{"keystore without password", "stores:\n  - {name: a, source: s, keystore: {path: k}}\n", "needs passwordFile or passwordEnv"},
		{"cqlshrc store without pem", store + "cqlshrc: {out: o, host: h, store: a}\n", "needs pem.dir"},
		{"bootstrap without wait", "bootstrap: [CREATE KEYSPACE x]\n", "needs a wait section"},
		{"bad port", "cqlshrc: {out: o, host: h, port: ninety}\n", "not a whole number"},
		{"store type typo", "stores:\n  - {name: a, source: s, passwordFile: p, keystore: {path: k, type: jsk}}\n", "line 2: unknown store type"},
		{"profile typo", "stores:\n  - {name: a, source: s, passwordFile: p, keystore: {path: k, type: pkcs12, profile: modern}}\n  - {name: b, source: s, passwordFile: p, keystore: {path: k2, profile: legasy}}\n", "unknown PKCS#12 profile"},
		{"require typo", "wait: {hosts: [h:1], require: most}\n", "require: want any, all or quorum"},
		{"mode not octal", "stores:\n  - {name: a, source: s, pem: {dir: d}, mode: \"0688\"}\n", "want an octal permission"},
		{"mode with junk", "stores:\n  - {name: a, source: s, pem: {dir: d}, mode: \"06x\"}\n", "want an octal permission"},
		{"negative retries", "reload:\n  - {exec: {command: [a]}, retries: -1}\n", "retries must not be negative"},
		{"unknown signal", "reload:\n  - {signal: {signal: SIGWINCH2, process: x}}\n", "unknown signal"},
		{"log level typo", "log: {level: verbose}\n", "log level"},
		{"same output twice", "stores:\n  - {name: a, source: /s, passwordFile: /p, keystore: {path: /o/ks}}\n  - {name: b, source: /t, passwordFile: /p, truststore: {path: /o/./ks}}\n", "is also written by stores[0] (a).keystore.path"},
		{"pem dir over the source", "stores:\n  - {name: a, source: /s, pem: {dir: /s}}\n", "one of the store's own inputs"},
		{"keystore over a bundle", "stores:\n  - {name: a, source: /s, trustBundles: [/b/ks], passwordFile: /p, keystore: {path: /b/ks}}\n", "one of the store's own inputs"},
		{"cqlshrc over a store", store + "cqlshrc: {out: /k/ks.jks, host: h}\n", "also written by"},
		{"two documents", "watch: {}\n---\nstores: []\n", "more than one YAML document"},
		{"template format typo", "templates:\n  - {template: /t, out: /o.properties, format: propertis}\n", "templates[0].format: want yaml, properties, ini, text or empty"},
		{"rotation without peers", store[:len(store)-2] + ", rotation: {}}\n", "rotation.peers: set jolokia, static or dns"},
		{"http username without password", "reload:\n  - {http: {url: \"http://h/\", username: u}}\n", "username and passwordFile go together"},
		{"http basic and bearer", "reload:\n  - {http: {url: \"http://h/\", username: u, passwordFile: /p, bearerTokenFile: /t}}\n", "not both"},
		{"jolokia password without username", "reload:\n  - {jolokia: {url: \"http://h/\", passwordFile: /p}}\n", "username and passwordFile go together"},
		{"relative reload url", "reload:\n  - {http: {url: /reload}}\n", "reload[0].http.url: want an absolute http:// or https:// URL"},
		{"endpoint without store", "stores:\n  - {name: a, source: s, pem: {dir: d}}\n  - {name: b, source: t, pem: {dir: e}}\nverify: {endpoints: [h:1]}\n", "name the store"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.yaml), "c.yaml", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	// A URL that does not parse is refused without being repeated: it may
	// carry a password or a token.
	_, err := Parse([]byte("reload:\n  - {http: {url: \"http://u:pw-secret-1@h:bad/?token=tok-secret-2\"}}\n"), "c.yaml", nil)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad URL: err = %v", err)
	}
	for _, f := range []string{"yaml", "Properties", "INI", "text", ""} {
		if _, err := Parse([]byte("templates:\n  - {template: /t, out: /o, format: \""+f+"\"}\n"), "c.yaml", nil); err != nil {
			t.Errorf("format %q: %v", f, err)
		}
	}
	if c, err := Parse(nil, "empty.yaml", nil); err != nil || c == nil {
		t.Errorf("an empty file: %v", err)
	}
}

// TestDefaults: after Parse every default is in place, so no consumer
// falls back on its own.
func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(`
stores: [{name: a, source: /s, passwordFile: /p, keystore: {path: /k}, rotation: {}}]
wait: {hosts: [h:1]}
reload: [{jolokia: {url: "http://127.0.0.1:8778/jolokia/"}}, {signal: {process: java}}, {exec: {command: [x], timeout: 5s}}]
verify: {endpoints: [h:7000]}
watch: {debounce: 250ms}
`), "c.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"debounce", c.Watch.Debounce.D(), 250 * time.Millisecond},
		{"resync", c.Watch.Resync.D(), DefaultResync},
		{"wait timeout", c.Wait.Timeout.D(), DefaultWaitTimeout},
		{"probe timeout", c.Wait.ProbeTimeout.D(), DefaultProbeTimeout},
		{"require", string(c.Wait.Require), "any"},
		{"mode", int(c.Stores[0].Mode), 0o600},
		{"store type", string(c.Stores[0].Keystore.Type), ""},
		{"reload timeout", c.Reload[0].Timeout.D(), DefaultReloadTimeout},
		{"exec timeout", c.Reload[2].Timeout.D(), 5 * time.Second},
		{"retries", int(*c.Reload[0].Retries), DefaultReloadRetries},
		{"signal", c.Reload[1].Signal.Signal.Signal, syscall.SIGHUP},
		{"verify deadline", c.Verify.Deadline.D(), DefaultVerifyDeadline},
		{"endpoint store", c.Verify.Endpoints[0].Store, "a"},
		{"listen", c.HTTP.Listen, DefaultListen},
		{"max hold", c.Stores[0].Rotation.MaxHold.D(), DefaultMaxHold},
		{"peers from the jolokia reload", c.Stores[0].Rotation.Peers.Jolokia, "http://127.0.0.1:8778/jolokia/"},
		{"gates on", c.Stores[0].Rotation.GatesOn(), true},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// TestErrorsNeverPrintVariables: a value that came from the environment
// may be a secret; no configuration error repeats it — whole, quoted the Go
// way (%q), or cut short the way yaml.v3's type errors show it.
func TestErrorsNeverPrintVariables(t *testing.T) {
	for _, secret := range []string{"s3cr3t-value", `s3cr3t"valu\e`} {
		quoted := strconv.Quote(secret)
		for _, doc := range []string{
			"watch: {debounce: \"${X}\"}\n",
			"cqlshrc:\n  port: ${X}\n",
			"stores: ${X}\n",
			"stores:\n  - ${X}\n",
			"wait:\n  hosts: [h:1]\n  store: ${X}\n",
			"verify: {endpoints: [{address: \"${X}\", store: nope}]}\n",
			"log:\n  level: ${X}\n",
			"log:\n  format: ${X}\n",
			"wait:\n  hosts: [h:1]\n  require: ${X}\n",
			"stores: pre${X}\n",
		} {
			_, err := Parse([]byte(doc), "c.yaml", []string{"X=" + secret})
			if err == nil {
				t.Errorf("%q: no error", doc)
				continue
			}
			for _, form := range []string{secret, quoted[1 : len(quoted)-1], secret[:7], "pre" + secret[:4]} {
				if strings.Contains(err.Error(), form) {
					t.Errorf("%q: the error prints the variable's value as %q: %v", doc, form, err)
				}
			}
		}
	}
}

// TestDollarRules: the config file follows the templates' placeholder
// rules: only ${NAME} and ${NAME:-default} expand, $${ is a literal ${,
// and every other $ stays as written.
func TestDollarRules(t *testing.T) {
	const doc = "stores:\n" +
		"  - {name: a, source: \"/etc/$POD_NAME/$$/Outer$Inner\", pem: {dir: \"/p/${POD_NAME}\"}}\n" +
		"  - {name: b, source: \"/etc/$${POD_NAME}\", pem: {dir: \"/q/${UNSET:-dflt}\"}}\n"
	c, err := Parse([]byte(doc), "c.yaml", []string{"POD_NAME=node1", "Inner=in"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []struct{ got, want string }{
		{c.Stores[0].Source, "/etc/$POD_NAME/$$/Outer$Inner"},
		{c.Stores[0].PEM.Dir, "/p/node1"},
		{c.Stores[1].Source, "/etc/${POD_NAME}"},
		{c.Stores[1].PEM.Dir, "/q/dflt"},
	} {
		if ch.got != ch.want {
			t.Errorf("got %q, want %q", ch.got, ch.want)
		}
	}
	_, err = Parse([]byte("stores:\n  - name: a\n    source: ${POD_NAME:=x}\n"), "c.yaml", []string{"POD_NAME=node1"})
	if err == nil || !strings.Contains(err.Error(), "c.yaml:3: ${POD_NAME:=…} is not supported") {
		t.Errorf("unsupported form: err = %v", err)
	}
}

// TestRedactsPlaceholdersTheRendererSaw: a placeholder spelled with a YAML
// escape is a placeholder; its value is redacted like any other.
func TestRedactsPlaceholdersTheRendererSaw(t *testing.T) {
	const secret = "s3cr3t-value"
	_, err := Parse([]byte("wait: {hosts: [h:1], store: \"\\x24{X}\"}\n"), "c.yaml", []string{"X=" + secret})
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), `store "${X}" is not defined`) {
		t.Fatalf("err = %v", err)
	}
}
