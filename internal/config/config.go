// Package config loads the agent's YAML configuration file (init and
// sidecar). ${VAR} placeholders in values expand from the environment before
// decoding — strictly, through the same YAML-safe renderer as templates — so
// one pod template can select per-pod material with ${POD_NAME}.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render"
	"go.yaml.in/yaml/v3"
)

// Config is the whole file. Every section is optional; init and sidecar each
// use the sections that concern them.
type Config struct {
	Stores    []Store    `yaml:"stores"`
	Templates []Template `yaml:"templates"`
	Cqlshrc   *Cqlshrc   `yaml:"cqlshrc"`
	Wait      *Wait      `yaml:"wait"`
	Bootstrap []string   `yaml:"bootstrap"`
	Watch     Watch      `yaml:"watch"`
	Reload    []Reload   `yaml:"reload"`
	Verify    *Verify    `yaml:"verify"`
	HTTP      HTTP       `yaml:"http"`
	Log       Log        `yaml:"log"`
}

// Store is one source → keystore + truststore (+ PEM outputs).
type Store struct {
	Name         string   `yaml:"name"`
	Source       string   `yaml:"source"`
	TrustBundles []string `yaml:"trustBundles"`
	// PasswordFile (a mounted Secret key) or PasswordEnv (the name of an
	// environment variable) supplies the store password.
	PasswordFile           string  `yaml:"passwordFile"`
	PasswordEnv            string  `yaml:"passwordEnv"`
	TruststorePasswordFile string  `yaml:"truststorePasswordFile"`
	Keystore               *Output `yaml:"keystore"`
	Truststore             *Output `yaml:"truststore"`
	PEM                    *PEM    `yaml:"pem"`
	Mode                   Mode    `yaml:"mode"`
}

// Output is a keystore or truststore file.
type Output struct {
	Path    string `yaml:"path"`
	Type    string `yaml:"type"`    // jks (default) or pkcs12
	Alias   string `yaml:"alias"`   // keystore only
	Profile string `yaml:"profile"` // pkcs12 only: modern2023 (default) or legacydes
}

// PEM asks for PEM outputs.
type PEM struct {
	Dir string `yaml:"dir"`
}

// Template is one file rendered with secrets.
type Template struct {
	Template   string `yaml:"template"`
	Out        string `yaml:"out"`
	SecretsDir string `yaml:"secretsDir"`
	Format     string `yaml:"format"` // yaml, text, or empty for by-extension
	Mode       Mode   `yaml:"mode"`
}

// Cqlshrc generates cqlsh's configuration from a store's PEM outputs.
type Cqlshrc struct {
	Out            string `yaml:"out"`
	CredentialsOut string `yaml:"credentialsOut"`
	Host           string `yaml:"host"`
	Port           Int    `yaml:"port"`
	Store          string `yaml:"store"`
	Validate       *Bool  `yaml:"validate"` // default true
	ClientAuth     *Bool  `yaml:"clientAuth"`
	TLSVersion     string `yaml:"tlsVersion"`
	Username       string `yaml:"username"`
	UsernameFile   string `yaml:"usernameFile"`
	PasswordFile   string `yaml:"passwordFile"`
}

// Wait is the CQL readiness check.
type Wait struct {
	Hosts        []string `yaml:"hosts"`
	Store        string   `yaml:"store"` // TLS material from this store's source
	ServerName   string   `yaml:"serverName"`
	Username     string   `yaml:"username"`
	UsernameFile string   `yaml:"usernameFile"`
	PasswordFile string   `yaml:"passwordFile"`
	Require      string   `yaml:"require"`
	Timeout      Duration `yaml:"timeout"`
	ProbeTimeout Duration `yaml:"probeTimeout"`
}

// Watch tunes the sidecar's watcher.
type Watch struct {
	Debounce Duration `yaml:"debounce"`
	Resync   Duration `yaml:"resync"`
	// Poll forces polling instead of inotify (network filesystems).
	Poll Bool `yaml:"poll"`
}

// Reload is one reload action; exactly one field is set.
type Reload struct {
	Jolokia *Jolokia `yaml:"jolokia"`
	Exec    *Exec    `yaml:"exec"`
	Signal  *Signal  `yaml:"signal"`
	HTTP    *Webhook `yaml:"http"`
	// Stores limits the action to changes of these stores (default: all).
	Stores []string `yaml:"stores"`
	// Timeout per try and Retries (after the first try).
	Timeout Duration `yaml:"timeout"`
	Retries *Int     `yaml:"retries"`
}

// Jolokia calls MessagingService.reloadSslCertificates through a Jolokia agent.
type Jolokia struct {
	URL          string `yaml:"url"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"passwordFile"`
}

// Exec runs a command, e.g. [nodetool, reloadssl]. Timeout may be given
// here or on the reload entry.
type Exec struct {
	Command []string `yaml:"command"`
	Timeout Duration `yaml:"timeout"`
}

// Signal sends a signal to a process found by pid file or by name.
type Signal struct {
	Signal  string `yaml:"signal"` // e.g. SIGHUP, SIGTERM
	PIDFile string `yaml:"pidFile"`
	Process string `yaml:"process"` // matched against /proc/*/cmdline
}

// Webhook is a generic HTTP call.
type Webhook struct {
	URL            string `yaml:"url"`
	Method         string `yaml:"method"`
	ExpectedStatus Int    `yaml:"expectedStatus"`
}

// Verify dials TLS endpoints after a reload and compares the served leaf.
type Verify struct {
	Endpoints  []Endpoint `yaml:"endpoints"`
	Deadline   Duration   `yaml:"deadline"`
	Store      string     `yaml:"store"`
	ServerName string     `yaml:"serverName"`
}

// Endpoint is host:port and the store whose leaf it must serve. It decodes
// from a plain "host:port" string too.
type Endpoint struct {
	Address string `yaml:"address"`
	Store   string `yaml:"store"`
}

func (e *Endpoint) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		e.Address = n.Value
		return nil
	}
	type plain Endpoint
	return n.Decode((*plain)(e))
}

// HTTP is the sidecar's listener for /metrics, /healthz and /readyz.
type HTTP struct {
	Listen string `yaml:"listen"`
}

// Log configures the logger.
type Log struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// Duration decodes "500ms", "1m", "20m".
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 500ms, 1m, 20m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Or returns d, or def when d is zero.
func (d Duration) Or(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// Int decodes a number written plainly or produced by a ${VAR}: expanded
// values are strings (see package render), and a port from the environment
// must still be a port.
type Int int

func (i *Int) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a whole number", n.Line, n.Value)
	}
	*i = Int(v)
	return nil
}

// Bool decodes true/false written plainly or produced by a ${VAR}.
type Bool bool

func (b *Bool) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseBool(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not true or false", n.Line, n.Value)
	}
	*b = Bool(v)
	return nil
}

// Mode decodes an octal permission such as "0600" or 0640.
type Mode os.FileMode

func (m *Mode) UnmarshalYAML(n *yaml.Node) error {
	var v uint32
	if _, err := fmt.Sscanf(n.Value, "%o", &v); err != nil || v > 0o777 {
		return fmt.Errorf("line %d: mode %q: want an octal permission such as \"0600\"", n.Line, n.Value)
	}
	*m = Mode(v)
	return nil
}

// Load reads, expands and validates the file at path.
func Load(path string, environ []string) (*Config, error) {
	data, err := pki.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path, environ)
}

// Parse expands ${VAR} from environ, decodes strictly (unknown keys are
// errors: a typo must not silently disable a feature) and validates.
func Parse(data []byte, name string, environ []string) (*Config, error) {
	expanded, err := render.Bytes(data, name, render.FromEnviron(environ), render.YAML)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

// StoreByName finds a store.
func (c *Config) StoreByName(name string) (*Store, bool) {
	for i := range c.Stores {
		if c.Stores[i].Name == name {
			return &c.Stores[i], true
		}
	}
	return nil, false
}

// Validate checks references and required fields, naming every problem.
func (c *Config) Validate() error {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	seen := map[string]bool{}
	for i, s := range c.Stores {
		where := fmt.Sprintf("stores[%d]", i)
		if s.Name == "" {
			add("%s: name is required", where)
		} else if seen[s.Name] {
			add("%s: duplicate store name %q", where, s.Name)
		}
		seen[s.Name] = true
		if s.Source == "" {
			add("%s (%s): source is required", where, s.Name)
		}
		if s.Keystore == nil && s.Truststore == nil && s.PEM == nil {
			add("%s (%s): no output: set keystore, truststore or pem", where, s.Name)
		}
		if (s.Keystore != nil || s.Truststore != nil) && s.PasswordFile == "" && s.PasswordEnv == "" {
			add("%s (%s): a keystore or truststore needs passwordFile or passwordEnv", where, s.Name)
		}
		for _, o := range []*Output{s.Keystore, s.Truststore} {
			if o != nil && o.Path == "" {
				add("%s (%s): keystore/truststore path is required", where, s.Name)
			}
		}
	}
	ref := func(where, name string, needPEM bool) {
		if name == "" {
			return
		}
		s, ok := c.StoreByName(name)
		if !ok {
			add("%s: store %q is not defined", where, name)
		} else if needPEM && (s.PEM == nil || s.PEM.Dir == "") {
			add("%s: store %q needs pem.dir (cqlsh reads PEM files)", where, name)
		}
	}
	for i, t := range c.Templates {
		if t.Template == "" || t.Out == "" {
			add("templates[%d]: template and out are required", i)
		}
	}
	if q := c.Cqlshrc; q != nil {
		if q.Out == "" || q.Host == "" {
			add("cqlshrc: out and host are required")
		}
		ref("cqlshrc", q.Store, true)
		if (q.Username != "" || q.UsernameFile != "") != (q.PasswordFile != "") {
			add("cqlshrc: credentials need a username (or usernameFile) and a passwordFile")
		}
		if q.PasswordFile != "" && q.CredentialsOut == "" {
			add("cqlshrc: credentialsOut is required with credentials (they never go into cqlshrc)")
		}
	}
	if w := c.Wait; w != nil {
		if len(w.Hosts) == 0 {
			add("wait: hosts is required")
		}
		ref("wait", w.Store, false)
		if strings.ToLower(w.Require) != "" && !oneOf(strings.ToLower(w.Require), "any", "all", "quorum") {
			add("wait: require %q: want any, all or quorum", w.Require)
		}
	}
	if len(c.Bootstrap) > 0 && c.Wait == nil {
		add("bootstrap needs a wait section (statements run once CQL answers)")
	}
	for i, r := range c.Reload {
		n := 0
		for _, set := range []bool{r.Jolokia != nil, r.Exec != nil, r.Signal != nil, r.HTTP != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			add("reload[%d]: exactly one of jolokia, exec, signal, http must be set", i)
		}
		if r.Exec != nil && len(r.Exec.Command) == 0 {
			add("reload[%d]: exec.command is empty", i)
		}
		if r.Signal != nil && (r.Signal.PIDFile == "") == (r.Signal.Process == "") {
			add("reload[%d]: signal needs exactly one of pidFile or process", i)
		}
		if r.Jolokia != nil && r.Jolokia.URL == "" || r.HTTP != nil && r.HTTP.URL == "" {
			add("reload[%d]: url is required", i)
		}
		for _, s := range r.Stores {
			ref(fmt.Sprintf("reload[%d]", i), s, false)
		}
	}
	if v := c.Verify; v != nil {
		ref("verify", v.Store, false)
		for i, e := range v.Endpoints {
			ref(fmt.Sprintf("verify.endpoints[%d]", i), e.Store, false)
			if e.Store == "" && v.Store == "" && len(c.Stores) != 1 {
				add("verify.endpoints[%d]: name the store whose certificate %s serves", i, e.Address)
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func oneOf(s string, opts ...string) bool {
	for _, o := range opts {
		if s == o {
			return true
		}
	}
	return false
}
