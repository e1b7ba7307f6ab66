package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func mustCert(t *testing.T) func(*pkitest.Cert, error) *pkitest.Cert {
	return func(c *pkitest.Cert, err error) *pkitest.Cert {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// TestParseCredentialBundle: one PEM file with the key and its chain, as a
// podCertificate projection or cert-manager's CombinedPEM writes it. Every
// refusal names the file, says what is wrong in words, and carries its reason.
func TestParseCredentialBundle(t *testing.T) {
	must := mustCert(t)
	ca := must(pkitest.CA("ca"))
	inter := must(pkitest.New(ca, pkitest.Options{CN: "inter", IsCA: true}))
	leaf := must(pkitest.Leaf(inter, "node1", pkitest.P256))
	rsaLeaf := must(pkitest.Leaf(inter, "node1", pkitest.RSA2048))
	ecKey := leaf.Key.(*ecdsa.PrivateKey)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224DER, _ := x509.MarshalECPrivateKey(p224)
	enc := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	key := pkitest.KeyPEM(leaf.Key)
	chain := pkitest.CertPEM(leaf.Cert, inter.Cert)

	tests := []struct {
		name   string
		data   []byte
		chain  int        // certificates expected on success
		reason pki.Reason // refusal; "" for success
		want   string     // the message, after "b.pem: "
	}{
		{"PKCS#8 key, then the chain (podCertificate)", cat(key, chain), 2, "", ""},
		{"the chain, then the key", cat(chain, key), 2, "", ""},
		{"the key between leaf and issuer", cat(pkitest.CertPEM(leaf.Cert), key, pkitest.CertPEM(inter.Cert)), 2, "", ""},
		{"leaf only", cat(key, pkitest.CertPEM(leaf.Cert)), 1, "", ""},
		{"PKCS#1 RSA key", cat(enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaLeaf.Key.(*rsa.PrivateKey))), pkitest.CertPEM(rsaLeaf.Cert)), 1, "", ""},
		{"SEC1 key after EC PARAMETERS", cat(enc("EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}), enc("EC PRIVATE KEY", ecDER), chain), 2, "", ""},
		{"text between blocks (openssl's Bag Attributes), as in tls.crt", cat([]byte("Bag Attributes\n    localKeyID: 01\n"), key, []byte("subject=CN = node1\n"), chain), 2, "", ""},
		{"no key", chain, 0, pki.ReasonMalformed, "no private key found"},
		{"two keys", cat(key, chain, key), 0, pki.ReasonMalformed, "more than one private key (PEM block 4)"},
		{"two keys of different forms", cat(key, enc("EC PRIVATE KEY", ecDER), chain), 0, pki.ReasonMalformed, "more than one private key (PEM block 2)"},
		{"no certificate", key, 0, pki.ReasonMalformed, "no certificate found: a credential bundle holds the private key and its certificate chain (leaf first)"},
		{"encrypted PKCS#8 key", cat(enc("ENCRYPTED PRIVATE KEY", []byte{0x30, 0}), chain), 0, pki.ReasonUnsupportedKey, "PEM block 1 is an encrypted private key; provide it unencrypted"},
		{"legacy encrypted key", cat(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}}), chain), 0, pki.ReasonUnsupportedKey, "PEM block 1 is an encrypted private key"},
		{"a CSR among the blocks", cat(key, chain, enc("CERTIFICATE REQUEST", []byte{1})), 0, pki.ReasonMalformed, `PEM block 4 is "CERTIFICATE REQUEST": a credential bundle holds one private key and CERTIFICATE blocks`},
		{"a public key among the blocks", cat(enc("PUBLIC KEY", []byte{1}), chain, key), 0, pki.ReasonMalformed, `PEM block 1 is "PUBLIC KEY"`},
		{"trailing garbage", cat(key, chain, []byte("junk")), 0, pki.ReasonMalformed, "4 bytes after PEM block 3 are not valid PEM (truncated or corrupt block?)"},
		{"truncated last block", cat(key, chain)[:len(key)+len(chain)-40], 0, pki.ReasonMalformed, "after PEM block 2 are not valid PEM"},
		{"garbage", []byte("this is not PEM\n"), 0, pki.ReasonMalformed, "no PEM data found"},
		{"corrupt certificate DER", cat(key, enc("CERTIFICATE", []byte{0x30, 0x82, 0, 1, 0})), 0, pki.ReasonMalformed, "PEM block 2: x509: "},
		{"corrupt key DER", cat(enc("PRIVATE KEY", []byte{0x30, 0x03, 1, 2, 3}), chain), 0, pki.ReasonMalformed, "PEM block 1: parse PRIVATE KEY"},
		{"weak RSA key", cat(pkitest.KeyPEM(small), chain), 0, pki.ReasonUnsupportedKey, "PEM block 1: RSA key of 1024 bits is too weak (want at least 2048)"},
		{"P-224 key", cat(enc("EC PRIVATE KEY", p224DER), chain), 0, pki.ReasonUnsupportedKey, "PEM block 1: ECDSA curve P-224 is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, certs, err := pki.ParseCredentialBundle(tc.data, "b.pem")
			if tc.reason == "" {
				if err != nil || k == nil || len(certs) != tc.chain {
					t.Fatalf("key %v, %d certificates, error %v; want %d certificates", k != nil, len(certs), err, tc.chain)
				}
				if !pki.KeyMatches(k, certs[0]) {
					t.Error("the key does not match the first certificate")
				}
				return
			}
			if k != nil || certs != nil {
				t.Error("a refusal returned material")
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want b.pem: …%s", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "b.pem: ") {
				t.Errorf("error does not start with the file name: %v", err)
			}
			if got := pki.ReasonOf(err); got != tc.reason {
				t.Errorf("reason = %q, want %q", got, tc.reason)
			}
		})
	}
}

// TestLoadCredentialBundle: a credential bundle gets the same validation as
// a directory, with the CAs from trust bundles only, and the same reasons.
func TestLoadCredentialBundle(t *testing.T) {
	must := mustCert(t)
	ca := must(pkitest.CA("ca"))
	other := must(pkitest.CA("other"))
	inter := must(pkitest.New(ca, pkitest.Options{CN: "inter", IsCA: true}))
	leaf := must(pkitest.Leaf(inter, "node1", pkitest.P256))
	stranger := must(pkitest.Leaf(other, "node1", pkitest.P256))
	expired := must(pkitest.New(inter, pkitest.Options{CN: "old", NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-48 * time.Hour)}))
	future := must(pkitest.New(inter, pkitest.Options{CN: "new", NotBefore: time.Now().Add(24 * time.Hour), NotAfter: time.Now().Add(72 * time.Hour)}))

	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bundleOf := func(c *pkitest.Cert, chain ...*x509.Certificate) []byte {
		return cat(pkitest.KeyPEM(c.Key), pkitest.CertPEM(append([]*x509.Certificate{c.Cert}, chain...)...))
	}
	trust := write("trust.pem", pkitest.CertPEM(ca.Cert))
	otherTrust := write("other.pem", pkitest.CertPEM(other.Cert))
	both := write("both.pem", pkitest.CertPEM(other.Cert, ca.Cert, ca.Cert))

	t.Run("valid: key, leaf, chain, CAs from the trust bundles", func(t *testing.T) {
		b := write("good.pem", bundleOf(leaf, inter.Cert))
		m, err := pki.Load(pki.Source{CredentialBundle: b, TrustBundles: []string{trust, both}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !m.Leaf.Equal(leaf.Cert) || len(m.Chain) != 1 || !m.Chain[0].Equal(inter.Cert) || !pki.KeyMatches(m.Key, leaf.Cert) {
			t.Errorf("material: leaf %s, chain %d", pki.Describe(m.Leaf), len(m.Chain))
		}
		if len(m.CAs) != 2 || !m.CAs[0].Equal(ca.Cert) || !m.CAs[1].Equal(other.Cert) {
			t.Errorf("CAs = %d, want ca then other (deduplicated, in order)", len(m.CAs))
		}
	})

	tests := []struct {
		name   string
		src    func() pki.Source
		reason pki.Reason
		want   string
	}{
		{"missing bundle", func() pki.Source {
			return pki.Source{CredentialBundle: filepath.Join(dir, "nope.pem"), TrustBundles: []string{trust}}
		}, pki.ReasonMissing, filepath.Join(dir, "nope.pem") + ": file does not exist"},
		{"empty bundle", func() pki.Source {
			return pki.Source{CredentialBundle: write("empty.pem", []byte("\n")), TrustBundles: []string{trust}}
		}, pki.ReasonMissing, "empty.pem: file is empty"},
		{"key of another certificate", func() pki.Source {
			return pki.Source{CredentialBundle: write("mismatch.pem", cat(pkitest.KeyPEM(stranger.Key), pkitest.CertPEM(leaf.Cert, inter.Cert))), TrustBundles: []string{trust}}
		}, pki.ReasonKeyMismatch, "the private key in " + filepath.Join(dir, "mismatch.pem") + " does not match the leaf certificate in " + filepath.Join(dir, "mismatch.pem")},
		{"issuer before the leaf", func() pki.Source {
			return pki.Source{CredentialBundle: write("order.pem", cat(pkitest.KeyPEM(leaf.Key), pkitest.CertPEM(inter.Cert, leaf.Cert))), TrustBundles: []string{trust}}
		}, pki.ReasonChainOrder, "order.pem: the chain is out of order: the certificate matching the private key in " + filepath.Join(dir, "order.pem") + " is number 2"},
		{"a certificate that did not issue the one before it", func() pki.Source {
			return pki.Source{CredentialBundle: write("gap.pem", bundleOf(leaf, ca.Cert, inter.Cert)), TrustBundles: []string{trust}}
		}, pki.ReasonChainOrder, "gap.pem: certificate 2 (subject \"CN=ca,O=cassandra-tls-agent test\""},
		{"not trusted by the trust bundles", func() pki.Source {
			return pki.Source{CredentialBundle: write("good.pem", bundleOf(leaf, inter.Cert)), TrustBundles: []string{otherTrust}}
		}, pki.ReasonUntrusted, "good.pem: leaf (subject \"CN=node1,O=cassandra-tls-agent test\""},
		{"expired leaf", func() pki.Source {
			return pki.Source{CredentialBundle: write("expired.pem", bundleOf(expired, inter.Cert)), TrustBundles: []string{trust}}
		}, pki.ReasonExpired, "expired.pem: leaf certificate (subject \"CN=old,O=cassandra-tls-agent test\""},
		{"leaf not yet valid", func() pki.Source {
			return pki.Source{CredentialBundle: write("future.pem", bundleOf(future, inter.Cert)), TrustBundles: []string{trust}}
		}, pki.ReasonNotYetValid, "future.pem: leaf certificate (subject \"CN=new,O=cassandra-tls-agent test\""},
		{"no trust bundle", func() pki.Source {
			return pki.Source{CredentialBundle: write("good.pem", bundleOf(leaf, inter.Cert))}
		}, pki.ReasonUntrusted, "no trusted CA: " + filepath.Join(dir, "good.pem") + " holds no CA and no trust bundle was given"},
		{"missing trust bundle", func() pki.Source {
			return pki.Source{CredentialBundle: write("good.pem", bundleOf(leaf, inter.Cert)), TrustBundles: []string{filepath.Join(dir, "gone.pem")}}
		}, pki.ReasonMissing, "trust bundle: " + filepath.Join(dir, "gone.pem") + ": file does not exist"},
		{"a key in the trust bundle", func() pki.Source {
			return pki.Source{CredentialBundle: write("good.pem", bundleOf(leaf, inter.Cert)), TrustBundles: []string{write("keyed.pem", bundleOf(leaf))}}
		}, pki.ReasonMalformed, "trust bundle: " + filepath.Join(dir, "keyed.pem") + `: PEM block 1 is "PRIVATE KEY", expected CERTIFICATE`},
		{"both a directory and a bundle", func() pki.Source {
			return pki.Source{Dir: dir, CredentialBundle: write("good.pem", bundleOf(leaf, inter.Cert)), TrustBundles: []string{trust}}
		}, pki.ReasonOther, "want a directory or a credential bundle, exactly one"},
		{"neither", func() pki.Source { return pki.Source{TrustBundles: []string{trust}} }, pki.ReasonOther, "want a directory or a credential bundle, exactly one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := pki.Load(tc.src(), time.Now())
			if err == nil || m != nil {
				t.Fatalf("accepted (material %v)", m != nil)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to say %q", err, tc.want)
			}
			if got := pki.ReasonOf(err); got != tc.reason {
				t.Errorf("reason = %q, want %q (%v)", got, tc.reason, err)
			}
		})
	}
}

// TestCredentialBundleHostileFiles: whatever sits where the bundle should
// be — a FIFO, a device behind a symlink, a huge file, a directory, a
// dangling symlink — is refused at once with its reason, never waited on
// or read whole.
func TestCredentialBundleHostileFiles(t *testing.T) {
	ca, _ := pkitest.CA("ca")
	dir := t.TempDir()
	trust := filepath.Join(dir, "trust.pem")
	os.WriteFile(trust, pkitest.CertPEM(ca.Cert), 0o600)
	p := func(n string) string { return filepath.Join(dir, n) }
	if err := syscall.Mkfifo(p("fifo.pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", p("zero.pem"))
	big, _ := os.Create(p("big.pem"))
	big.Truncate(17 << 20) // sparse: costs no disk
	big.Close()
	os.Mkdir(p("dir.pem"), 0o755)
	os.Symlink(p("..data/bundle.pem"), p("dangling.pem"))

	tests := []struct {
		file   string
		reason pki.Reason
		want   string
	}{
		{"fifo.pem", pki.ReasonUnreadable, "is a FIFO, expected a regular file"},
		{"zero.pem", pki.ReasonUnreadable, "is a device, expected a regular file"},
		{"big.pem", pki.ReasonTooLarge, "larger than the 16777216-byte limit"},
		{"dir.pem", pki.ReasonUnreadable, "is a directory, expected a file"},
		{"dangling.pem", pki.ReasonMissing, "file does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := pki.Load(pki.Source{CredentialBundle: p(tc.file), TrustBundles: []string{trust}}, time.Now())
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.HasPrefix(err.Error(), p(tc.file)+": ") || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error = %v, want %s: …%s", err, p(tc.file), tc.want)
				}
				if got := pki.ReasonOf(err); got != tc.reason {
					t.Errorf("reason = %q, want %q", got, tc.reason)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Load blocked on the file")
			}
		})
	}
}

// TestLoadDirFileNames: a csi-driver volume with its file names changed
// (csi.cert-manager.io/certificate-file, privatekey-file, ca-file) is read
// by those names, and messages name the files as configured.
func TestLoadDirFileNames(t *testing.T) {
	must := mustCert(t)
	ca := must(pkitest.CA("ca"))
	leaf := must(pkitest.Leaf(ca, "node1", pkitest.P256))
	dir := t.TempDir()
	names := pki.FileNames{Cert: "cert.pem", Key: "key.pem", CA: "issuer.pem"}
	os.WriteFile(filepath.Join(dir, "cert.pem"), pkitest.CertPEM(leaf.Cert), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), pkitest.KeyPEM(leaf.Key), 0o600)
	os.WriteFile(filepath.Join(dir, "issuer.pem"), pkitest.CertPEM(ca.Cert), 0o600)

	m, err := pki.Load(pki.Source{Dir: dir, Files: names}, time.Now())
	if err != nil || !m.Leaf.Equal(leaf.Cert) || len(m.CAs) != 1 {
		t.Fatalf("csi-driver names: %v", err)
	}
	if _, err := pki.Load(pki.Source{Dir: dir}, time.Now()); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "tls.crt")+": file does not exist") {
		t.Errorf("default names in a renamed directory: %v", err)
	}
	// Only the names that are set change.
	os.WriteFile(filepath.Join(dir, "tls.key"), pkitest.KeyPEM(leaf.Key), 0o600)
	if _, err := pki.Load(pki.Source{Dir: dir, Files: pki.FileNames{Cert: "cert.pem", CA: "issuer.pem"}}, time.Now()); err != nil {
		t.Errorf("cert and ca renamed, key by default: %v", err)
	}
	os.Remove(filepath.Join(dir, "issuer.pem"))
	_, err = pki.Load(pki.Source{Dir: dir, Files: names}, time.Now())
	if err == nil || err.Error() != "no trusted CA: issuer.pem is missing or empty and no trust bundle was given" || pki.ReasonOf(err) != pki.ReasonUntrusted {
		t.Errorf("no CA file: %v", err)
	}
	other := must(pkitest.Leaf(ca, "other", pkitest.P256))
	os.WriteFile(filepath.Join(dir, "issuer.pem"), pkitest.CertPEM(ca.Cert), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), pkitest.KeyPEM(other.Key), 0o600)
	_, err = pki.Load(pki.Source{Dir: dir, Files: names}, time.Now())
	if want := filepath.Join(dir, "key.pem") + " does not match the leaf certificate in " + filepath.Join(dir, "cert.pem"); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("mismatch: %v, want %q", err, want)
	}
}

func TestSourcePathsAndString(t *testing.T) {
	tests := []struct {
		src   pki.Source
		paths []string
		str   string
	}{
		{pki.Source{Dir: "/s", TrustBundles: []string{"/t/a.pem"}}, []string{"/s/tls.crt", "/s/tls.key", "/s/ca.crt", "/t/a.pem"}, "/s + trust bundles /t/a.pem"},
		{pki.Source{Dir: "/s", Files: pki.FileNames{Cert: "c.pem", Key: "k.pem", CA: "ca.pem"}}, []string{"/s/c.pem", "/s/k.pem", "/s/ca.pem"}, "/s (cert c.pem, key k.pem, ca ca.pem)"},
		{pki.Source{CredentialBundle: "/i/b.pem", TrustBundles: []string{"/t/a.pem", "/t/b.pem"}}, []string{"/i/b.pem", "/t/a.pem", "/t/b.pem"}, "credential bundle /i/b.pem + trust bundles /t/a.pem, /t/b.pem"},
	}
	for _, tc := range tests {
		if got := tc.src.Paths(); strings.Join(got, " ") != strings.Join(tc.paths, " ") {
			t.Errorf("%+v: paths %v, want %v", tc.src, got, tc.paths)
		}
		if got := tc.src.String(); got != tc.str {
			t.Errorf("%+v: %q, want %q", tc.src, got, tc.str)
		}
	}
}
