package selfsigned

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

// certSubject is the certificate's subject as written (order and all),
// in openssl's -subj form.
func certSubject(t *testing.T, c *x509.Certificate) string {
	t.Helper()
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(c.RawSubject, &seq); err != nil || len(rest) > 0 {
		t.Fatalf("subject does not parse: %v", err)
	}
	return OpenSSLString(seq)
}

func TestParseSubject(t *testing.T) {
	tests := []struct {
		in   string
		want string // the certificate's subject in -subj form ("" = same as in)
		err  string
	}{
		{in: "/CN=app"},
		{in: "/CN=my-app/OU=Platform/O=Example Corp/C=DE"},
		{in: "/C=DE/ST=Berlin/L=Berlin/O=Example Corp/OU=Platform/CN=my-app"},
		{in: "/C=us/O=Acme/CN=x", want: "/C=US/O=Acme/CN=x"},
		{in: `/CN=a\/b\+c\\d/O=x`},
		{in: "/CN=a+UID=b/O=org"},
		{in: "/commonName=long/organizationName=names", want: "/CN=long/O=names"},
		{in: "/cn=lower/o=case", want: "/CN=lower/O=case"},
		{in: "/CN=eq=in=value"},
		{in: `/CN=escaped\=eq`, want: "/CN=escaped=eq"},
		{in: "/emailAddress=ops@example.com/CN=x"},
		{in: "/DC=com/DC=example/CN=x"},
		{in: "/2.5.4.3=oid-cn", want: "/CN=oid-cn"},
		{in: "/1.2.3.4=private", want: "/1.2.3.4=private"},
		{in: "/CN=Grüße/street=Hauptstraße 1/postalCode=10115/serialNumber=42/title=ops"},
		{in: "", err: "subject is empty"},
		{in: "CN=x", err: "must start with /"},
		{in: "/", err: "empty attribute"},
		{in: "/CN=x/", err: "empty attribute"},
		{in: "/CN=x//O=y", err: "empty attribute"},
		{in: "/CN", err: "has no = between name and value"},
		{in: "/=x", err: "has no = between name and value"},
		{in: "/CN=", err: "empty value"},
		{in: "/XX=y", err: `unknown attribute name "XX"`},
		{in: "/C=Germany", err: "two-letter ISO 3166 code"},
		{in: "/C=D1", err: "two-letter"},
		{in: `/CN=x\`, err: "lone backslash"},
		{in: "/emailAddress=ü@example.com", err: "must be ASCII"},
		{in: "/1.x=y", err: "neither a known name nor a dotted OID"},
		{in: "/CN=" + strings.Repeat("a", 257), err: "longer than 256 bytes"},
	}
	for _, tc := range tests {
		seq, err := ParseSubject(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSubject(%q) = %v, want error containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSubject(%q): %v", tc.in, err)
			continue
		}
		r, err := Generate(Options{Subject: seq, KeyType: P256, Days: 1})
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		want := tc.want
		if want == "" {
			want = tc.in
		}
		if got := certSubject(t, r.Cert); got != want {
			t.Errorf("ParseSubject(%q): certificate subject %q, want %q", tc.in, got, want)
		}
	}
}

func TestSubjectEncoding(t *testing.T) {
	seq, err := ParseSubject("/CN=my-app/OU=Platform/O=Example Corp/C=de/emailAddress=ops@example.com/DC=example")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Generate(Options{Subject: seq, KeyType: P256, Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Cert.Subject
	if s.CommonName != "my-app" || s.OrganizationalUnit[0] != "Platform" || s.Organization[0] != "Example Corp" || s.Country[0] != "DE" {
		t.Errorf("Go reads the subject as %+v", s)
	}
	// X.520/RFC 5280 string types: C PrintableString, email and DC IA5String.
	var raw []rawRDNSET
	if _, err := asn1.Unmarshal(r.Cert.RawSubject, &raw); err != nil {
		t.Fatal(err)
	}
	tags := map[string]int{}
	for _, rdn := range raw {
		for _, atv := range rdn {
			tags[atv.Type.String()] = atv.Value.Tag
		}
	}
	want := map[string]int{"2.5.4.6": asn1.TagPrintableString, "1.2.840.113549.1.9.1": asn1.TagIA5String,
		"0.9.2342.19200300.100.1.25": asn1.TagIA5String, "2.5.4.3": asn1.TagPrintableString}
	for oid, tag := range want {
		if tags[oid] != tag {
			t.Errorf("attribute %s has tag %d, want %d", oid, tags[oid], tag)
		}
	}
}

func TestFieldsSubject(t *testing.T) {
	tests := []struct {
		f    Fields
		want string
		err  string
	}{
		{Fields{CommonName: "app"}, "/CN=app", ""},
		{Fields{CommonName: "app", OrganizationalUnit: "ops", Organization: "Acme", Locality: "Berlin", State: "BE", Country: "de"}, "/C=DE/ST=BE/L=Berlin/O=Acme/OU=ops/CN=app", ""},
		{Fields{}, "", "a subject is required"},
		{Fields{CommonName: "x", Country: "DEU"}, "", "two-letter"},
	}
	for _, tc := range tests {
		seq, err := tc.f.Subject()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: err %v, want %q", tc.f, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", tc.f, err)
		}
		r, err := Generate(Options{Subject: seq, KeyType: P256, Days: 1})
		if err != nil {
			t.Fatal(err)
		}
		if got := certSubject(t, r.Cert); got != tc.want {
			t.Errorf("%+v: subject %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestParseKeyType(t *testing.T) {
	tests := map[string]KeyType{
		"": RSA2048, "rsa2048": RSA2048, "RSA-3072": RSA3072, "rsa_4096": RSA4096,
		"p256": P256, "P-256": P256, "ecdsa-p384": P384, "prime256v1": P256, "secp384r1": P384,
	}
	for in, want := range tests {
		if got, err := ParseKeyType(in); err != nil || got != want {
			t.Errorf("ParseKeyType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"rsa1024", "ed25519", "p521", "dsa"} {
		if _, err := ParseKeyType(bad); err == nil || !strings.Contains(err.Error(), "want one of rsa2048, rsa3072, rsa4096, p256, p384") {
			t.Errorf("ParseKeyType(%q) = %v, want an error listing the types", bad, err)
		}
	}
}

func TestGenerate(t *testing.T) {
	subject, err := ParseSubject("/CN=client/O=Example")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		kt       KeyType
		days     int
		checkKey func(any) bool
		keyUsage x509.KeyUsage
	}{
		{RSA2048, 365, func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 2048 }, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment},
		{RSA3072, 30, func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 3072 }, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment},
		{RSA4096, 1, func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 4096 }, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment},
		{P256, 730, func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve == elliptic.P256() }, x509.KeyUsageDigitalSignature},
		{P384, 90, func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve == elliptic.P384() }, x509.KeyUsageDigitalSignature},
	}
	serials := map[string]bool{}
	for _, tc := range tests {
		t.Run(string(tc.kt), func(t *testing.T) {
			r, err := Generate(Options{Subject: subject, KeyType: tc.kt, Days: tc.days, Now: now, Backdate: DefaultBackdate})
			if err != nil {
				t.Fatal(err)
			}
			c := r.Cert
			if !tc.checkKey(r.Key) {
				t.Errorf("key is %T, not %s", r.Key, tc.kt)
			}
			if !pki.KeyMatches(r.Key, c) {
				t.Error("key does not match the certificate")
			}
			if c.Subject.String() != "CN=client,O=Example" || c.Issuer.String() != c.Subject.String() {
				t.Errorf("subject %q issuer %q", c.Subject, c.Issuer)
			}
			if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil || !bytes.Equal(c.RawIssuer, c.RawSubject) {
				t.Errorf("not self-signed: %v", err)
			}
			if !c.NotBefore.Equal(now.Add(-DefaultBackdate)) || !c.NotAfter.Equal(now.AddDate(0, 0, tc.days)) {
				t.Errorf("validity %s … %s, want %s … %s", c.NotBefore, c.NotAfter, now.Add(-DefaultBackdate), now.AddDate(0, 0, tc.days))
			}
			if c.KeyUsage != tc.keyUsage {
				t.Errorf("key usage %b, want %b", c.KeyUsage, tc.keyUsage)
			}
			if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
				t.Errorf("extended key usage %v, want clientAuth only", c.ExtKeyUsage)
			}
			if !c.BasicConstraintsValid || c.IsCA {
				t.Errorf("basic constraints valid=%t CA=%t, want CA:FALSE", c.BasicConstraintsValid, c.IsCA)
			}
			if len(c.SubjectKeyId) != 20 {
				t.Errorf("subject key id %x", c.SubjectKeyId)
			}
			if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %s: want positive, at most 128 bits", c.SerialNumber)
			}
			if serials[c.SerialNumber.String()] {
				t.Errorf("serial %s repeated", c.SerialNumber)
			}
			serials[c.SerialNumber.String()] = true
			if len(c.DNSNames)+len(c.IPAddresses)+len(c.URIs)+len(c.EmailAddresses) != 0 {
				t.Error("a client certificate needs no SANs; got some")
			}
			// A server that has the certificate in its trust store accepts it
			// as a client certificate at a time inside its validity.
			pool := x509.NewCertPool()
			pool.AddCert(c)
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("does not verify as a client certificate: %v", err)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
				t.Error("verifies as a server certificate; want clientAuth only")
			}
		})
	}
}

func TestGenerateRefuses(t *testing.T) {
	subject, _ := ParseSubject("/CN=x")
	tests := []struct {
		name string
		o    Options
		err  string
	}{
		{"no subject", Options{Days: 1}, "a subject is required"},
		{"zero days", Options{Subject: subject, Days: 0}, "want at least 1"},
		{"negative days", Options{Subject: subject, Days: -5}, "want at least 1"},
		{"absurd days", Options{Subject: subject, Days: 20000}, "beyond 30 years"},
		{"bad key type", Options{Subject: subject, Days: 1, KeyType: "rsa1024"}, "not supported"},
		{"negative backdate", Options{Subject: subject, Days: 1, Backdate: -time.Second}, "must not be negative"},
	}
	for _, tc := range tests {
		if _, err := Generate(tc.o); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestSerialIsPositiveAndWide(t *testing.T) {
	var max big.Int
	for i := 0; i < 200; i++ {
		s, err := Serial(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if s.Sign() <= 0 || s.BitLen() > 128 {
			t.Fatalf("serial %s out of range", s)
		}
		if s.Cmp(&max) > 0 {
			max.Set(s)
		}
	}
	// 200 draws of 128 random bits: the largest has its top bits set with
	// overwhelming probability; a serial from a narrow source would not.
	if max.BitLen() < 120 {
		t.Errorf("largest of 200 serials has %d bits; the source is not 128-bit", max.BitLen())
	}
}

func TestWrite(t *testing.T) {
	subject, _ := ParseSubject("/CN=writer")
	r1, err := Generate(Options{Subject: subject, KeyType: P256, Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Generate(Options{Subject: subject, KeyType: RSA2048, Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "new", "dir")
	keyPath, certPath, err := Write(dir, r1, false)
	if err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{keyPath: 0o600, certPath: 0o644} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v mode %v, want %v", p, err, st.Mode().Perm(), mode)
		}
	}
	keyData, _ := os.ReadFile(keyPath)
	if b, _ := pem.Decode(keyData); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("tls.key is not a PKCS#8 PEM block:\n%s", keyData)
	}
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		t.Errorf("tls.LoadX509KeyPair: %v", err)
	}
	key, err := pki.ParsePrivateKey(keyData, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	certData, _ := os.ReadFile(certPath)
	certs, err := pki.ParseCertificates(certData, certPath)
	if err != nil || len(certs) != 1 || !pki.KeyMatches(key, certs[0]) || !certs[0].Equal(r1.Cert) {
		t.Fatalf("written pair does not read back: %v", err)
	}

	// A second run without --force keeps both files byte for byte.
	_, _, err = Write(dir, r2, false)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--force") || !strings.Contains(err.Error(), keyPath) {
		t.Errorf("second write: %v, want ErrExists naming %s and --force", err, keyPath)
	}
	if k, _ := os.ReadFile(keyPath); string(k) != string(keyData) {
		t.Error("the key changed without --force")
	}
	// Only a certificate present (uploaded elsewhere) is refused too.
	os.Remove(keyPath)
	if _, _, err := Write(dir, r2, false); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), certPath) {
		t.Errorf("write over a lone certificate: %v", err)
	}
	// --force replaces both.
	if _, _, err := Write(dir, r2, true); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pair.PrivateKey.(*rsa.PrivateKey); !ok || !pair.Leaf.Equal(r2.Cert) {
		t.Errorf("--force did not replace the pair")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want tls.key and tls.crt only (no temp files)", len(entries))
	}
}

func TestWriteErrorsNameThePath(t *testing.T) {
	subject, _ := ParseSubject("/CN=x")
	r, err := Generate(Options{Subject: subject, KeyType: P256, Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, nil, 0o600)
	if _, _, err := Write(file, r, false); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("writing under a file: %v, want an error naming %s", err, file)
	}
}

// rawRDNSET reads an RDN keeping each value's string type (the SET suffix
// makes encoding/asn1 expect a SET).
type rawRDNSET []struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}
