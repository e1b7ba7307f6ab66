// Package inspect reports what a PEM file, a cert-manager directory, a JKS
// or a PKCS#12 store holds, and what is wrong with it.
package inspect

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

// Report is the result of inspecting one path.
type Report struct {
	Path         string     `json:"path"`
	Kind         string     `json:"kind"` // cert-manager-dir, credential-bundle, pem, jks, pkcs12
	Certificates []CertInfo `json:"certificates"`
	// KeyMatchesLeaf is nil when the path holds no private key.
	KeyMatchesLeaf *bool    `json:"key_matches_leaf,omitempty"`
	Problems       []string `json:"problems"`
}

// CertInfo describes one certificate.
type CertInfo struct {
	Role      string    `json:"role"` // leaf, chain, ca, trusted
	Alias     string    `json:"alias,omitempty"`
	Subject   string    `json:"subject"`
	SANs      []string  `json:"sans,omitempty"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	SHA256    string    `json:"sha256"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	IsCA      bool      `json:"is_ca"`
}

// Options control what counts as a problem.
type Options struct {
	Password []byte        // for JKS and PKCS#12
	Now      time.Time     // validity is judged at Now
	Within   time.Duration // a certificate expiring before Now+Within is a problem
}

// Path inspects path. An error means the path could not be read at all; a
// readable but invalid input yields a Report with Problems.
func Path(path string, o Options) (*Report, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r := &Report{Path: path}
	if st.IsDir() {
		err = r.dir(path, o)
	} else {
		err = r.file(path, o)
	}
	if err != nil {
		return nil, err
	}
	for _, c := range r.Certificates {
		switch {
		case o.Now.Before(c.NotBefore):
			r.problem("%s %q is not valid until %s", c.Role, c.Subject, c.NotBefore.Format(time.RFC3339))
		case o.Now.After(c.NotAfter):
			r.problem("%s %q expired at %s", c.Role, c.Subject, c.NotAfter.Format(time.RFC3339))
		case o.Within > 0 && c.NotAfter.Before(o.Now.Add(o.Within)):
			r.problem("%s %q expires at %s, within %s", c.Role, c.Subject, c.NotAfter.Format(time.RFC3339), o.Within)
		}
	}
	if r.KeyMatchesLeaf != nil && !*r.KeyMatchesLeaf {
		r.problem("the private key does not match the leaf certificate")
	}
	return r, nil
}

func (r *Report) problem(format string, a ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
}

func (r *Report) add(role, alias string, certs ...*x509.Certificate) {
	for _, c := range certs {
		r.Certificates = append(r.Certificates, describe(role, alias, c))
	}
}

// dir inspects a cert-manager directory, running the same validation the
// stores command does so that "inspect says fine" means "stores would build".
func (r *Report) dir(path string, o Options) error {
	r.Kind = "cert-manager-dir"
	certPath := filepath.Join(path, pki.CertFile)
	data, err := pki.ReadFile(certPath)
	if err != nil {
		return err
	}
	certs, err := pki.ParseCertificates(data, certPath)
	if err != nil {
		return err
	}
	r.add("leaf", "", certs[0])
	r.add("chain", "", certs[1:]...)
	if data, err := pki.ReadFile(filepath.Join(path, pki.CAFile)); err == nil {
		if cas, err := pki.ParseCertificates(data, filepath.Join(path, pki.CAFile)); err == nil {
			r.add("ca", "", pki.Dedupe(cas)...)
		}
	}
	if data, err := pki.ReadFile(filepath.Join(path, pki.KeyFile)); err == nil {
		if key, err := pki.ParsePrivateKey(data, filepath.Join(path, pki.KeyFile)); err == nil {
			m := pki.KeyMatches(key, certs[0])
			r.KeyMatchesLeaf = &m
		}
	}
	if _, err := pki.Load(pki.Source{Dir: path}, o.Now); err != nil {
		r.problem("%v", err)
	}
	return nil
}

func (r *Report) file(path string, o Options) error {
	data, err := pki.ReadFile(path)
	if err != nil {
		return err
	}
	if isPEM(data) {
		return r.pemFile(path, data)
	}
	if _, err := store.DetectType(data); err != nil {
		return fmt.Errorf("%s: not PEM, and %v", path, err)
	}
	if len(o.Password) == 0 {
		return fmt.Errorf("%s: a keystore password is needed to read it (--password-file)", path)
	}
	c, err := store.Decode(data, o.Password)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	r.Kind = string(c.Type)
	for _, k := range c.Keys {
		if len(k.Chain) == 0 {
			r.problem("key entry %q has no certificate", k.Alias)
			continue
		}
		r.add("leaf", k.Alias, k.Chain[0])
		r.add("chain", k.Alias, k.Chain[1:]...)
		signer, ok := k.Key.(crypto.Signer)
		m := ok && pki.KeyMatches(signer, k.Chain[0])
		r.KeyMatchesLeaf = &m
	}
	for _, t := range c.Trusted {
		r.add("trusted", t.Alias, t.Cert)
	}
	if len(c.Keys) == 0 && len(c.Trusted) == 0 {
		r.problem("the store is empty")
	}
	return nil
}

func (r *Report) pemFile(path string, data []byte) error {
	r.Kind = "pem"
	var certData, keyData []byte
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE":
			certData = append(certData, pem.EncodeToMemory(b)...)
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			keyData = append(keyData, pem.EncodeToMemory(b)...)
		}
	}
	if len(certData) == 0 && len(keyData) == 0 {
		return fmt.Errorf("%s: no certificate or private key found", path)
	}
	if len(certData) > 0 && len(keyData) > 0 {
		return r.credentialBundle(path, data)
	}
	var certs []*x509.Certificate
	if len(certData) > 0 {
		var err error
		if certs, err = pki.ParseCertificates(certData, path); err != nil {
			return err
		}
	}
	for i, c := range certs {
		role := "ca"
		if !c.IsCA || (i == 0 && len(keyData) > 0) {
			role = "leaf"
			if i > 0 {
				role = "chain"
			}
		}
		r.add(role, "", c)
	}
	if len(keyData) > 0 {
		key, err := pki.ParsePrivateKey(keyData, path)
		if err != nil {
			return err
		}
		if len(certs) > 0 {
			m := pki.KeyMatches(key, certs[0])
			r.KeyMatchesLeaf = &m
		}
	}
	return nil
}

// credentialBundle inspects a PEM file holding a key and its chain (a
// podCertificate projection, cert-manager's tls-combined.pem, the agent's
// keystore.pem), read exactly as a store's credentialBundle is. Its CAs
// come from elsewhere, so trust is not judged here; the chain's order is.
func (r *Report) credentialBundle(path string, data []byte) error {
	r.Kind = "credential-bundle"
	key, certs, err := pki.ParseCredentialBundle(data, path)
	if err != nil {
		return err
	}
	r.add("leaf", "", certs[0])
	r.add("chain", "", certs[1:]...)
	m := pki.KeyMatches(key, certs[0])
	r.KeyMatchesLeaf = &m
	for i := 1; i < len(certs); i++ {
		if certs[i-1].CheckSignatureFrom(certs[i]) != nil {
			r.problem("certificate %d (%s) did not issue certificate %d: the chain must be ordered leaf first, then each issuer", i+1, certs[i].Subject, i)
		}
	}
	return nil
}

func isPEM(data []byte) bool {
	return bytes.Contains(data[:min(len(data), 64<<10)], []byte("-----BEGIN "))
}

func describe(role, alias string, c *x509.Certificate) CertInfo {
	var sans []string
	for _, d := range c.DNSNames {
		sans = append(sans, "DNS:"+d)
	}
	for _, ip := range c.IPAddresses {
		sans = append(sans, "IP:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		sans = append(sans, "email:"+e)
	}
	for _, u := range c.URIs {
		sans = append(sans, "URI:"+u.String())
	}
	return CertInfo{
		Role: role, Alias: alias,
		Subject: c.Subject.String(), SANs: sans, Issuer: c.Issuer.String(),
		Serial: pki.SerialHex(c), SHA256: pki.Fingerprint(c),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), IsCA: c.IsCA,
	}
}
