package pki

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// File names of cert-manager's Secret layout (kubernetes.io/tls plus ca.crt),
// which cert-manager's csi-driver writes too unless told otherwise.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
	CAFile   = "ca.crt"
)

// Source says where one store's material comes from: a directory (Dir) or
// a credential bundle (CredentialBundle), exactly one; plus trust bundles.
type Source struct {
	// Dir holds the certificate file (leaf first, then its chain), the key
	// file and, optionally, a CA file with one or more CAs: a cert-manager
	// Secret volume, or a cert-manager csi-driver volume.
	Dir string
	// Files names the files inside Dir; an empty name is cert-manager's
	// (tls.crt, tls.key, ca.crt).
	Files FileNames
	// CredentialBundle is one PEM file holding the private key and its
	// certificate chain, leaf first (see ParseCredentialBundle). It carries
	// no CA: trust comes from TrustBundles alone.
	CredentialBundle string
	// TrustBundles are PEM files whose CAs are trusted too, e.g. a
	// trust-manager bundle that holds the old and the new CA during a
	// rotation, or a clusterTrustBundle projection.
	TrustBundles []string
}

// FileNames are the names of a source directory's files.
type FileNames struct {
	Cert, Key, CA string
}

// names returns the directory's file names, cert-manager's where unset.
func (s Source) names() FileNames {
	n := s.Files
	if n.Cert == "" {
		n.Cert = CertFile
	}
	if n.Key == "" {
		n.Key = KeyFile
	}
	if n.CA == "" {
		n.CA = CAFile
	}
	return n
}

// Paths lists every file Load reads, in the order it reads them: the
// certificate, key and CA files of Dir, or the credential bundle; then the
// trust bundles. What changes none of them changes nothing Load returns.
func (s Source) Paths() []string {
	var out []string
	if s.Dir != "" {
		n := s.names()
		out = append(out, filepath.Join(s.Dir, n.Cert), filepath.Join(s.Dir, n.Key), filepath.Join(s.Dir, n.CA))
	}
	if s.CredentialBundle != "" {
		out = append(out, s.CredentialBundle)
	}
	return append(out, s.TrustBundles...)
}

// String names the source for logs and messages.
func (s Source) String() string {
	var b strings.Builder
	switch {
	case s.CredentialBundle != "" && s.Dir == "":
		b.WriteString("credential bundle " + s.CredentialBundle)
	default:
		b.WriteString(s.Dir)
		if n := s.names(); n != (FileNames{CertFile, KeyFile, CAFile}) {
			fmt.Fprintf(&b, " (cert %s, key %s, ca %s)", n.Cert, n.Key, n.CA)
		}
		if s.CredentialBundle != "" {
			b.WriteString(" and credential bundle " + s.CredentialBundle)
		}
	}
	if len(s.TrustBundles) > 0 {
		b.WriteString(" + trust bundles " + strings.Join(s.TrustBundles, ", "))
	}
	return b.String()
}

// Material is validated input for one keystore and its truststore.
type Material struct {
	Key  crypto.Signer
	Leaf *x509.Certificate
	// Chain is what followed the leaf in the certificate file or the
	// credential bundle, in order (issuer of the leaf first). It goes into
	// the keystore entry after the leaf.
	Chain []*x509.Certificate
	// CAs is every trusted CA, de-duplicated by SHA-256 fingerprint, in the
	// order first seen (the CA file, then the trust bundles).
	CAs []*x509.Certificate
}

// Load reads src and validates it at time now. Nothing is returned unless the
// material as a whole is usable: the key matches the leaf, the chain is in
// order, the leaf chains to a trusted CA and is inside its validity window.
func Load(src Source, now time.Time) (*Material, error) {
	var (
		m                 *Material
		cas               []*x509.Certificate
		certName, keyName string
		noCA              string
		err               error
	)
	switch {
	case src.Dir != "" && src.CredentialBundle == "":
		n := src.names()
		certName, keyName = filepath.Join(src.Dir, n.Cert), filepath.Join(src.Dir, n.Key)
		if m, cas, err = loadDir(src.Dir, n); err != nil {
			return nil, err
		}
		noCA = fmt.Sprintf("no trusted CA: %s is missing or empty and no trust bundle was given", n.CA)
	case src.CredentialBundle != "" && src.Dir == "":
		certName, keyName = src.CredentialBundle, "the private key in "+src.CredentialBundle
		data, err := ReadFile(src.CredentialBundle)
		if err != nil {
			return nil, err
		}
		key, certs, err := ParseCredentialBundle(data, src.CredentialBundle)
		if err != nil {
			return nil, err
		}
		m = &Material{Key: key, Leaf: certs[0], Chain: certs[1:]}
		noCA = fmt.Sprintf("no trusted CA: %s holds no CA and no trust bundle was given", src.CredentialBundle)
	default:
		return nil, refuse(ReasonOther, "source %s: want a directory or a credential bundle, exactly one", src)
	}
	for _, b := range src.TrustBundles {
		data, err := ReadFile(b)
		if err != nil {
			return nil, &SourceError{Reason: ReasonOf(err), Err: fmt.Errorf("trust bundle: %w", err)}
		}
		bc, err := ParseCertificates(data, b)
		if err != nil {
			return nil, &SourceError{Reason: ReasonOf(err), Err: fmt.Errorf("trust bundle: %w", err)}
		}
		cas = append(cas, bc...)
	}
	m.CAs = Dedupe(cas)
	if len(m.CAs) == 0 {
		return nil, refuse(ReasonUntrusted, "%s", noCA)
	}
	if err := m.Validate(now, certName, keyName); err != nil {
		return nil, err
	}
	return m, nil
}

// loadDir reads a source directory: the certificate file, the key file and
// the optional CA file.
func loadDir(dir string, n FileNames) (*Material, []*x509.Certificate, error) {
	certPath := filepath.Join(dir, n.Cert)
	keyPath := filepath.Join(dir, n.Key)
	caPath := filepath.Join(dir, n.CA)

	certData, err := ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	certs, err := ParseCertificates(certData, certPath)
	if err != nil {
		return nil, nil, err
	}
	keyData, err := ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	key, err := ParsePrivateKey(keyData, keyPath)
	if err != nil {
		return nil, nil, err
	}
	m := &Material{Key: key, Leaf: certs[0], Chain: certs[1:]}

	var cas []*x509.Certificate
	switch data, err := ReadFile(caPath); {
	case err == nil:
		if cas, err = ParseCertificates(data, caPath); err != nil {
			return nil, nil, err
		}
	case ReasonOf(err) == ReasonMissing:
		// ACME and some external issuers leave ca.crt out or empty; trust
		// then comes from the bundles alone.
	default:
		return nil, nil, err
	}
	return m, cas, nil
}

// Validate checks the rules that must hold before material is published.
// certName and keyName only label errors.
func (m *Material) Validate(now time.Time, certName, keyName string) error {
	if len(m.CAs) == 0 {
		return refuse(ReasonUntrusted, "no trusted CA: ca.crt is missing or empty and no trust bundle was given")
	}
	if !KeyMatches(m.Key, m.Leaf) {
		for i, c := range m.Chain {
			if KeyMatches(m.Key, c) {
				return refuse(ReasonChainOrder, "%s: the chain is out of order: the certificate matching %s is number %d; the leaf must come first, then each issuer", certName, keyName, i+2)
			}
		}
		return refuse(ReasonKeyMismatch, "%s does not match the leaf certificate in %s (%s)", keyName, certName, Describe(m.Leaf))
	}
	if err := checkKeyType(m.Key); err != nil {
		return &SourceError{Reason: ReasonOf(err), Err: fmt.Errorf("%s: %w", keyName, err)}
	}
	if err := CheckValidity(m.Leaf, now); err != nil {
		return &SourceError{Reason: ReasonOf(err), Err: fmt.Errorf("%s: leaf %w", certName, err)}
	}
	for i, c := range m.Chain {
		child := m.Leaf
		if i > 0 {
			child = m.Chain[i-1]
		}
		if err := child.CheckSignatureFrom(c); err != nil {
			return refuse(ReasonChainOrder, "%s: certificate %d (%s) did not issue certificate %d (%s): the chain must be ordered leaf first, then each issuer",
				certName, i+2, Describe(c), i+1, Describe(child))
		}
	}
	roots := x509.NewCertPool()
	for _, c := range m.CAs {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range m.Chain {
		inter.AddCert(c)
	}
	_, err := m.Leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			return refuse(ReasonUntrusted, "%s: leaf (%s, issuer %q) does not chain to any of the %d trusted CAs", certName, Describe(m.Leaf), m.Leaf.Issuer.String(), len(m.CAs))
		}
		return refuse(ReasonUntrusted, "%s: leaf does not verify against the trusted CAs: %w", certName, err)
	}
	return nil
}

// CheckValidity reports whether now lies inside c's validity window.
func CheckValidity(c *x509.Certificate, now time.Time) error {
	if now.Before(c.NotBefore) {
		return refuse(ReasonNotYetValid, "certificate (%s) is not valid until %s", Describe(c), c.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return refuse(ReasonExpired, "certificate (%s) expired at %s", Describe(c), c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// Dedupe drops repeated certificates (same SHA-256 fingerprint), keeping the
// first occurrence and the order.
func Dedupe(certs []*x509.Certificate) []*x509.Certificate {
	seen := make(map[[32]byte]bool, len(certs))
	out := make([]*x509.Certificate, 0, len(certs))
	for _, c := range certs {
		fp := sha256.Sum256(c.Raw)
		if seen[fp] {
			continue
		}
		seen[fp] = true
		out = append(out, c)
	}
	return out
}

// Fingerprint is the SHA-256 of the certificate's DER, as uppercase hex pairs
// separated by colons — the form keytool and openssl print.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// Describe names a certificate for humans and logs: its subject and serial.
func Describe(c *x509.Certificate) string {
	return fmt.Sprintf("subject %q, serial %s", c.Subject.String(), SerialHex(c))
}

// SerialHex is the serial number in lowercase hex, as Java and openssl show it.
func SerialHex(c *x509.Certificate) string {
	return c.SerialNumber.Text(16)
}

// TLSCertificate is the material as a crypto/tls certificate: leaf, chain
// and key, for a TLS client or server.
func (m *Material) TLSCertificate() tls.Certificate {
	chain := [][]byte{m.Leaf.Raw}
	for _, c := range m.Chain {
		chain = append(chain, c.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: m.Key, Leaf: m.Leaf}
}
