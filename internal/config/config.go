package config

import (
	"fmt"
	"strings"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"go.yaml.in/yaml/v3"
)

// Config is the whole file. Every section is optional; init and sidecar each
// use the sections that concern them. After Load every default is applied:
// consumers read values, never fall back themselves.
type Config struct {
	Stores    []Store    `yaml:"stores"`
	Templates []Template `yaml:"templates"`
	Cqlshrc   *Cqlshrc   `yaml:"cqlshrc"`
	Wait      *Wait      `yaml:"wait"`
	Bootstrap Bootstrap  `yaml:"bootstrap"`
	Watch     Watch      `yaml:"watch"`
	Reload    []Reload   `yaml:"reload"`
	Verify    *Verify    `yaml:"verify"`
	HTTP      HTTP       `yaml:"http"`
	Log       Log        `yaml:"log"`
}

// Store is one source → keystore + truststore (+ PEM outputs). The source
// is a directory (Source, with Files naming what is in it) or one credential
// bundle (CredentialBundle), exactly one; CAs come from the directory's CA
// file and TrustBundles.
type Store struct {
	Name string `yaml:"name"`
	// Source is a directory: a cert-manager Secret volume, or a cert-manager
	// csi-driver volume.
	Source string `yaml:"source"`
	// Files names the files inside Source (csi-driver's
	// csi.cert-manager.io/certificate-file, privatekey-file and ca-file).
	// After Load, set (cert-manager's names by default) whenever Source is.
	Files *SourceFiles `yaml:"files"`
	// CredentialBundle is one PEM file holding the PKCS#8 private key and
	// its certificate chain, leaf first: Kubernetes' podCertificate
	// projection (credentialBundlePath) or cert-manager's CombinedPEM
	// (tls-combined.pem). It needs at least one trust bundle.
	CredentialBundle string   `yaml:"credentialBundle"`
	TrustBundles     []string `yaml:"trustBundles"`
	// PasswordFile (a mounted Secret key) or PasswordEnv (the name of an
	// environment variable) supplies the store password.
	PasswordFile           string    `yaml:"passwordFile"`
	PasswordEnv            string    `yaml:"passwordEnv"`
	TruststorePasswordFile string    `yaml:"truststorePasswordFile"`
	Keystore               *Output   `yaml:"keystore"`
	Truststore             *Output   `yaml:"truststore"`
	PEM                    *PEM      `yaml:"pem"`
	Mode                   Mode      `yaml:"mode"` // default 0600
	Rotation               *Rotation `yaml:"rotation"`
}

// SourceFiles are the names of a source directory's files: plain names
// inside it, no paths.
type SourceFiles struct {
	Cert string `yaml:"cert"` // leaf, then its chain; default tls.crt
	Key  string `yaml:"key"`  // default tls.key
	CA   string `yaml:"ca"`   // optional file of CAs; default ca.crt
}

// PKISource is where the store's material comes from, for pki.Load: the one
// translation of the configuration, used by every command.
func (s *Store) PKISource() pki.Source {
	src := pki.Source{Dir: s.Source, CredentialBundle: s.CredentialBundle, TrustBundles: s.TrustBundles}
	if f := s.Files; f != nil {
		src.Files = pki.FileNames{Cert: f.Cert, Key: f.Key, CA: f.CA}
	}
	return src
}

// Output is a keystore or truststore file.
type Output struct {
	Path    string    `yaml:"path"`
	Type    StoreType `yaml:"type"`    // jks (default) or pkcs12
	Alias   string    `yaml:"alias"`   // keystore only
	Profile Profile   `yaml:"profile"` // pkcs12 only: modern2023 (default) or legacydes
}

// PEM asks for PEM outputs.
type PEM struct {
	Dir string `yaml:"dir"`
}

// Rotation turns on the zero-downtime gates for a store whose certificates
// are checked by peers (internode) or clients.
type Rotation struct {
	Peers        Peers    `yaml:"peers"`
	PresentAfter Duration `yaml:"presentAfter"`
	RetainFor    Duration `yaml:"retainFor"`
	MaxHold      Duration `yaml:"maxHold"` // default 72h
	Gates        *Bool    `yaml:"gates"`   // default true
	// ProbeInterval is the first delay of the hold re-probe timer (default
	// 2s), doubled after each probe up to 5s (or ProbeInterval if longer).
	ProbeInterval Duration `yaml:"probeInterval"`
}

// Peers says where the peers of a store are. At most one is set; when none
// is, the local node's gossip is asked through the Jolokia URL of the first
// jolokia reload action.
type Peers struct {
	Jolokia string   `yaml:"jolokia"`
	Static  []string `yaml:"static"`
	DNS     string   `yaml:"dns"` // host:port of a headless Service
	// StoragePort is used when gossip lists addresses without ports (3.11).
	StoragePort Int `yaml:"storagePort"`
	// JolokiaUsername and JolokiaPasswordFile authenticate to the Jolokia
	// agent; by default those of the jolokia reload action whose URL is used.
	JolokiaUsername     string `yaml:"jolokiaUsername"`
	JolokiaPasswordFile string `yaml:"jolokiaPasswordFile"`
}

// GatesOn reports whether the gates are enabled.
func (r *Rotation) GatesOn() bool { return r.Gates == nil || bool(*r.Gates) }

// Template is one file rendered with secrets.
type Template struct {
	Template   string `yaml:"template"`
	Out        string `yaml:"out"`
	SecretsDir string `yaml:"secretsDir"`
	Format     string `yaml:"format"` // yaml, properties, ini, text, or empty: by the out file's name
	Mode       Mode   `yaml:"mode"`   // default 0600
}

// Cqlshrc generates cqlsh's configuration from a store's PEM outputs.
type Cqlshrc struct {
	Out            string `yaml:"out"`
	CredentialsOut string `yaml:"credentialsOut"`
	Host           string `yaml:"host"`
	Port           Int    `yaml:"port"`
	Store          string `yaml:"store"`
	Validate       *Bool  `yaml:"validate"`   // default true
	ClientAuth     *Bool  `yaml:"clientAuth"` // default true
	TLSVersion     string `yaml:"tlsVersion"`
	Username       string `yaml:"username"`
	UsernameFile   string `yaml:"usernameFile"`
	PasswordFile   string `yaml:"passwordFile"`
	// CertificateAuth: the node authenticates cqlsh by its client
	// certificate (Cassandra 5.0 MutualTlsAuthenticator), no password.
	CertificateAuth Bool `yaml:"certificateAuth"`
}

// Wait is the CQL readiness check.
type Wait struct {
	Hosts        []string `yaml:"hosts"`
	Store        string   `yaml:"store"` // TLS material from this store's source
	ServerName   string   `yaml:"serverName"`
	Username     string   `yaml:"username"`
	UsernameFile string   `yaml:"usernameFile"`
	PasswordFile string   `yaml:"passwordFile"`
	Require      Require  `yaml:"require"`      // default any
	Timeout      Duration `yaml:"timeout"`      // default 20m
	ProbeTimeout Duration `yaml:"probeTimeout"` // default 10s
}

// Bootstrap is the idempotent CQL init runs once CQL answers, on the wait
// section's session: the statements in order, then the identity mappings.
// It decodes from a plain list of statements too.
type Bootstrap struct {
	Statements []string   `yaml:"statements"`
	Identities []Identity `yaml:"identities"`
}

// Identity maps a client certificate's identity (Cassandra 5.0
// MutualTlsAuthenticator; e.g. the spiffe:// URI SAN) to a role.
type Identity struct {
	Identity string `yaml:"identity"`
	Role     string `yaml:"role"`
	// CreateRole creates the role (IF NOT EXISTS, LOGIN = true, never
	// SUPERUSER) before mapping the identity to it.
	CreateRole Bool `yaml:"createRole"`
}

func (b *Bootstrap) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		return n.Decode(&b.Statements)
	}
	// Node.Decode does not inherit the file decoder's strictness: check
	// the keys here so that a typo is an error, not a silent no-op.
	if err := knownKeys(n, "bootstrap", "statements", "identities"); err != nil {
		return err
	}
	for i := 1; i < len(n.Content); i += 2 {
		if n.Content[i-1].Value == "identities" && n.Content[i].Kind == yaml.SequenceNode {
			for _, e := range n.Content[i].Content {
				if err := knownKeys(e, "bootstrap.identities", "identity", "role", "createRole"); err != nil {
					return err
				}
			}
		}
	}
	type plain Bootstrap
	return n.Decode((*plain)(b))
}

func knownKeys(n *yaml.Node, where string, keys ...string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i < len(n.Content); i += 2 {
		k := n.Content[i]
		found := false
		for _, want := range keys {
			found = found || k.Value == want
		}
		if !found {
			return fmt.Errorf("line %d: %s: field %s not found (want %s)", k.Line, where, k.Value, strings.Join(keys, ", "))
		}
	}
	return nil
}

// Empty reports whether there is nothing to run.
func (b Bootstrap) Empty() bool { return len(b.Statements) == 0 && len(b.Identities) == 0 }

// Watch tunes the sidecar's watcher.
type Watch struct {
	Debounce Duration `yaml:"debounce"` // default 500ms
	Resync   Duration `yaml:"resync"`   // default 1m
	// Poll forces polling instead of inotify (network filesystems).
	Poll Bool `yaml:"poll"`
}

// Reload is one reload action; exactly one of the action fields is set.
type Reload struct {
	Jolokia *Jolokia `yaml:"jolokia"`
	Exec    *Exec    `yaml:"exec"`
	Signal  *Signal  `yaml:"signal"`
	HTTP    *Webhook `yaml:"http"`
	// Stores limits the action to changes of these stores (default: all).
	Stores []string `yaml:"stores"`
	// Timeout per try (default 30s) and Retries after the first try (default 3).
	Timeout Duration `yaml:"timeout"`
	Retries *Int     `yaml:"retries"`
}

// Jolokia calls MessagingService.reloadSslCertificates through a Jolokia
// agent; passwordFile is read at every call.
type Jolokia struct {
	URL          string `yaml:"url"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"passwordFile"`
}

// Exec runs a command, e.g. [nodetool, reloadssl]. A timeout here overrides
// the reload entry's.
type Exec struct {
	Command []string `yaml:"command"`
	Timeout Duration `yaml:"timeout"`
}

// Signal sends a signal (default SIGHUP) to a process found by pid file or by name.
type Signal struct {
	Signal  *SignalName `yaml:"signal"`
	PIDFile string      `yaml:"pidFile"`
	Process string      `yaml:"process"` // matched against /proc/*/cmdline
}

// Webhook is a generic HTTP call. Credentials come from files, read at
// every call: basic authentication (username + passwordFile) or a bearer
// token (bearerTokenFile), not both.
type Webhook struct {
	URL             string `yaml:"url"`
	Method          string `yaml:"method"`
	ExpectedStatus  Int    `yaml:"expectedStatus"`
	Username        string `yaml:"username"`
	PasswordFile    string `yaml:"passwordFile"`
	BearerTokenFile string `yaml:"bearerTokenFile"`
}

// Verify dials TLS endpoints after a reload and compares the served leaf.
type Verify struct {
	Endpoints []Endpoint `yaml:"endpoints"`
	Deadline  Duration   `yaml:"deadline"` // default 60s
	Store     string     `yaml:"store"`
	// ServerName is sent as SNI when dialling the endpoints.
	ServerName string `yaml:"serverName"`
}

// Endpoint is host:port and the store whose leaf it must serve (after Load,
// always set). It decodes from a plain "host:port" string too.
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
	Listen string `yaml:"listen"` // default :9180
}

// Log configures the logger; flags given on the command line win.
type Log struct {
	Format LogFormat `yaml:"format"`
	Level  LogLevel  `yaml:"level"`
}

// StoreByName finds a store.
func (c *Config) StoreByName(name string) *Store {
	for i := range c.Stores {
		if c.Stores[i].Name == name {
			return &c.Stores[i]
		}
	}
	return nil
}

// EndpointsOf lists the verify endpoints that serve store name.
func (c *Config) EndpointsOf(name string) []string {
	if c.Verify == nil {
		return nil
	}
	var out []string
	for _, e := range c.Verify.Endpoints {
		if e.Store == name {
			out = append(out, e.Address)
		}
	}
	return out
}
