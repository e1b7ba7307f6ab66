package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

// Validate checks required fields, references between sections and output
// paths, naming every problem with its key. It expects defaults applied.
func (c *Config) Validate() error {
	v := &validator{c: c, outputs: map[string]string{}}
	v.stores()
	v.templates()
	v.cqlshrc()
	v.wait()
	v.reload()
	v.verify()
	if len(v.errs) > 0 {
		return errors.New(strings.Join(v.errs, "; "))
	}
	return nil
}

type validator struct {
	c    *Config
	errs []string
	// outputs maps every output path (cleaned) to the key that writes it.
	outputs map[string]string
}

func (v *validator) add(format string, a ...any) { v.errs = append(v.errs, fmt.Sprintf(format, a...)) }

// output records that key writes path, refusing a second writer.
func (v *validator) output(key, path string) {
	if path == "" {
		return
	}
	p := filepath.Clean(path)
	if prev, dup := v.outputs[p]; dup {
		v.add("%s: %s is also written by %s", key, path, prev)
		return
	}
	v.outputs[p] = key
}

func (v *validator) stores() {
	seen := map[string]bool{}
	for i, s := range v.c.Stores {
		where := fmt.Sprintf("stores[%d]", i)
		if s.Name != "" {
			where = fmt.Sprintf("stores[%d] (%s)", i, s.Name)
		}
		switch {
		case s.Name == "":
			v.add("%s: name is required", where)
		case seen[s.Name]:
			v.add("%s: duplicate store name", where)
		}
		seen[s.Name] = true
		v.source(where, s)
		if s.Keystore == nil && s.Truststore == nil && s.PEM == nil {
			v.add("%s: no output: set keystore, truststore or pem", where)
		}
		if (s.Keystore != nil || s.Truststore != nil) && s.PasswordFile == "" && s.PasswordEnv == "" {
			v.add("%s: a keystore or truststore needs passwordFile or passwordEnv", where)
		}
		if s.PasswordFile != "" && s.PasswordEnv != "" {
			v.add("%s: set passwordFile or passwordEnv, not both", where)
		}
		sources := map[string]string{}
		own, label := s.PKISource(), "source"
		if s.Source == "" {
			label = "credentialBundle"
		}
		own.TrustBundles = nil
		for _, f := range own.Paths() {
			sources[filepath.Clean(f)] = label
		}
		for _, f := range s.TrustBundles {
			if f != "" {
				sources[filepath.Clean(f)] = "trustBundles"
			}
		}
		for _, f := range []string{s.PasswordFile, s.TruststorePasswordFile} {
			if f != "" {
				sources[filepath.Clean(f)] = "a password file"
			}
		}
		out := func(key, path string) {
			if path == "" {
				v.add("%s.%s: path is required", where, key)
				return
			}
			if from, ok := sources[filepath.Clean(path)]; ok {
				v.add("%s.%s: %s is one of the store's own inputs (%s): the agent would overwrite what it reads", where, key, path, from)
			}
			v.output(where+"."+key, path)
		}
		if s.Keystore != nil {
			out("keystore.path", s.Keystore.Path)
		}
		if s.Truststore != nil {
			out("truststore.path", s.Truststore.Path)
			if s.Truststore.Alias != "" {
				v.add("%s.truststore.alias: a truststore has no key entry to name", where)
			}
		}
		if s.PEM != nil {
			switch {
			case s.PEM.Dir == "":
				v.add("%s.pem.dir is required", where)
			case s.Source != "" && filepath.Clean(s.PEM.Dir) == filepath.Clean(s.Source):
				// Its ..data layout would replace the kubelet's.
				v.add("%s.pem.dir: %s is one of the store's own inputs (the source directory): the agent would overwrite what it reads", where, s.PEM.Dir)
			default:
				for _, f := range []string{store.PEMKeyFile, store.PEMCertFile, store.PEMCAFile, store.PEMKeystoreFile} {
					out("pem.dir", filepath.Join(s.PEM.Dir, f))
				}
			}
		}
		if r := s.Rotation; r != nil {
			v.rotation(where+".rotation", r)
		}
	}
}

// source checks where a store's material comes from: a directory or a
// credential bundle, exactly one, and the CAs a credential bundle lacks.
func (v *validator) source(where string, s Store) {
	switch {
	case s.Source == "" && s.CredentialBundle == "":
		v.add("%s: set source (a directory: tls.crt, tls.key, ca.crt) or credentialBundle (one PEM file: key and chain)", where)
	case s.Source != "" && s.CredentialBundle != "":
		v.add("%s: set source or credentialBundle, not both (a store has one certificate source)", where)
	}
	if s.CredentialBundle != "" && len(s.TrustBundles) == 0 {
		v.add("%s: credentialBundle holds the key and its chain but no CA: name the CAs to trust in trustBundles "+
			"(a clusterTrustBundle projection, a trust-manager Bundle or the issuer's ca.crt)", where)
	}
	for i, f := range s.TrustBundles {
		if f == "" {
			v.add("%s.trustBundles[%d] is empty", where, i)
		}
	}
	f := s.Files
	if f == nil {
		return
	}
	if s.Source == "" {
		v.add("%s.files: names the files inside source; set source, or leave files out (a credentialBundle is one file)", where)
		return
	}
	for _, n := range []struct{ key, name string }{{"cert", f.Cert}, {"key", f.Key}, {"ca", f.CA}} {
		if n.name == "" || n.name == "." || n.name == ".." || strings.ContainsRune(n.name, '/') {
			v.add("%s.files.%s: want a file name inside source (no '/', not '.' or '..')", where, n.key)
		}
	}
	if f.Cert == f.Key || f.Cert == f.CA || f.Key == f.CA {
		v.add("%s.files: cert, key and ca must name three different files", where)
	}
}

func (v *validator) rotation(where string, r *Rotation) {
	n := 0
	for _, set := range []bool{r.Peers.Jolokia != "", len(r.Peers.Static) > 0, r.Peers.DNS != ""} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		v.add("%s.peers: set jolokia, static or dns (there is no jolokia reload action to ask the local node)", where)
	case n > 1:
		v.add("%s.peers: set only one of jolokia, static or dns", where)
	}
	if r.Peers.Jolokia != "" {
		v.url(where+".peers.jolokia", r.Peers.Jolokia)
	}
	if r.PresentAfter > r.MaxHold || r.RetainFor < 0 {
		v.add("%s: presentAfter must not exceed maxHold", where)
	}
}

func (v *validator) templates() {
	for i, t := range v.c.Templates {
		if t.Template == "" || t.Out == "" {
			v.add("templates[%d]: template and out are required", i)
		}
		if _, err := render.ParseFormat(t.Format); err != nil {
			v.add("templates[%d].format: want yaml, properties, ini, text or empty (by the out file's name)", i)
		}
		v.output(fmt.Sprintf("templates[%d].out", i), t.Out)
	}
}

// ref checks that a section names a defined store (and, with needPEM, one
// with PEM outputs).
func (v *validator) ref(where, name string, needPEM bool) {
	if name == "" {
		return
	}
	s := v.c.StoreByName(name)
	switch {
	case s == nil:
		v.add("%s: store %q is not defined", where, name)
	case needPEM && (s.PEM == nil || s.PEM.Dir == ""):
		v.add("%s: store %q needs pem.dir (cqlsh reads PEM files)", where, name)
	}
}

func (v *validator) cqlshrc() {
	q := v.c.Cqlshrc
	if q == nil {
		return
	}
	if q.Out == "" || q.Host == "" {
		v.add("cqlshrc: out and host are required")
	}
	v.ref("cqlshrc.store", q.Store, true)
	if (q.Username != "" || q.UsernameFile != "") != (q.PasswordFile != "") {
		v.add("cqlshrc: credentials need a username (or usernameFile) and a passwordFile")
	}
	if bool(q.CertificateAuth) && (q.PasswordFile != "" || q.Store == "" || !bool(*q.ClientAuth)) {
		v.add("cqlshrc.certificateAuth: needs a store (its client certificate is the credential), clientAuth and no passwordFile")
	}
	if q.PasswordFile != "" && q.CredentialsOut == "" {
		v.add("cqlshrc: credentialsOut is required with credentials (they never go into cqlshrc)")
	}
	v.output("cqlshrc.out", q.Out)
	if q.PasswordFile != "" {
		v.output("cqlshrc.credentialsOut", q.CredentialsOut)
	}
}

func (v *validator) wait() {
	w := v.c.Wait
	if w == nil {
		if !v.c.Bootstrap.Empty() {
			v.add("bootstrap needs a wait section (statements run once CQL answers)")
		}
		return
	}
	v.identities()
	if len(w.Hosts) == 0 {
		v.add("wait.hosts is required")
	}
	v.ref("wait.store", w.Store, false)
	if (w.Username != "" || w.UsernameFile != "") && w.PasswordFile == "" {
		v.add("wait: a username needs a passwordFile")
	}
}

func (v *validator) reload() {
	for i, r := range v.c.Reload {
		where := fmt.Sprintf("reload[%d]", i)
		n := 0
		for _, set := range []bool{r.Jolokia != nil, r.Exec != nil, r.Signal != nil, r.HTTP != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			v.add("%s: exactly one of jolokia, exec, signal, http must be set", where)
		}
		if r.Exec != nil && len(r.Exec.Command) == 0 {
			v.add("%s.exec.command is empty", where)
		}
		if r.Signal != nil && (r.Signal.PIDFile == "") == (r.Signal.Process == "") {
			v.add("%s.signal: set exactly one of pidFile or process", where)
		}
		if r.Jolokia != nil {
			v.url(where+".jolokia.url", r.Jolokia.URL)
			if (r.Jolokia.Username == "") != (r.Jolokia.PasswordFile == "") {
				v.add("%s.jolokia: username and passwordFile go together", where)
			}
		}
		if h := r.HTTP; h != nil {
			v.url(where+".http.url", h.URL)
			if (h.Username == "") != (h.PasswordFile == "") {
				v.add("%s.http: username and passwordFile go together (basic authentication)", where)
			}
			if h.BearerTokenFile != "" && h.PasswordFile != "" {
				v.add("%s.http: set basic authentication (username, passwordFile) or bearerTokenFile, not both", where)
			}
		}
		if r.Retries != nil && *r.Retries < 0 {
			v.add("%s.retries must not be negative", where)
		}
		for _, s := range r.Stores {
			v.ref(where+".stores", s, false)
		}
	}
}

// url checks a reload or peers URL. The message never repeats the URL: it
// may carry a password or a token.
func (v *validator) url(key, raw string) {
	if raw == "" {
		v.add("%s is required", key)
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add("%s: want an absolute http:// or https:// URL", key)
	}
}

func (v *validator) verify() {
	vf := v.c.Verify
	if vf == nil {
		return
	}
	v.ref("verify.store", vf.Store, false)
	for i, e := range vf.Endpoints {
		where := fmt.Sprintf("verify.endpoints[%d]", i)
		if e.Address == "" {
			v.add("%s: address is required", where)
		}
		if e.Store == "" {
			v.add("%s: name the store whose certificate this endpoint serves", where)
			continue
		}
		v.ref(where+".store", e.Store, false)
	}
}

// identities checks the identity mappings of bootstrap. The superuser check
// needs the cluster and happens when they are applied.
func (v *validator) identities() {
	seen := map[string]string{}
	for i, id := range v.c.Bootstrap.Identities {
		where := fmt.Sprintf("bootstrap.identities[%d]", i)
		if id.Role == "" {
			v.add("%s.role is required", where)
		}
		if err := CheckIdentity(id.Identity); err != nil {
			v.add("%s.identity: %v", where, err)
			continue
		}
		if prev, dup := seen[id.Identity]; dup && prev != id.Role {
			v.add("%s: identity %s is also mapped to role %q (an identity maps to one role)", where, id.Identity, prev)
		}
		seen[id.Identity] = id.Role
	}
}

// CheckIdentity checks the shape of a certificate identity. A spiffe://
// identity must be a SPIFFE ID: a trust domain of lower-case letters, digits,
// '.', '-' and '_', then an optional path of non-empty segments, with no
// port, user, query or fragment. Other validators' identities (a subject,
// a DNS name) need only be non-empty and on one line.
func CheckIdentity(id string) error {
	switch {
	case id == "":
		return errors.New("is required")
	case strings.ContainsAny(id, "\n\r\x00"):
		return errors.New("must be on one line")
	case !strings.HasPrefix(strings.ToLower(id), "spiffe:"):
		return nil
	}
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok {
		return errors.New("a SPIFFE ID starts with spiffe:// (lower case)")
	}
	td, path, _ := strings.Cut(rest, "/")
	if td == "" {
		return errors.New("a SPIFFE ID needs a trust domain (spiffe://TRUST-DOMAIN/PATH)")
	}
	for _, r := range td {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("trust domain %q: only lower-case letters, digits, '.', '-' and '_' (no port, user or upper case)", td)
		}
	}
	if strings.HasPrefix(rest, td+"/") {
		for _, seg := range strings.Split(path, "/") {
			switch seg {
			case "":
				return errors.New("a SPIFFE ID path has no empty segments (no '//', no trailing '/')")
			case ".", "..":
				return errors.New("a SPIFFE ID path has no '.' or '..' segments")
			}
			for _, r := range seg {
				if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
					return fmt.Errorf("path segment %q: only letters, digits, '.', '-' and '_' (no query or fragment)", seg)
				}
			}
		}
	}
	return nil
}
