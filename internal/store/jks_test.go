package store_test

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
)

// javaMade are JKS files the JDK 17 wrote (keytool -genkeypair, then
// KeyStore.setKeyEntry/store under each password; see test/java/JKSCheck.java
// repass). The key entry is "javakey", an EC P-256 key with a self-signed
// certificate for CN=java-made.
var javaMade = []struct{ file, password string }{
	{"java-made-1.jks", "pässwörd"},
	{"java-made-2.jks", "пароль"},
	{"java-made-3.jks", "密码"},
	{"java-made-4.jks", "🔑key"}, // a surrogate pair in Java's char[]
}

func TestDecodeJKSMadeByJavaWithUnicodePasswords(t *testing.T) {
	for _, c := range javaMade {
		data, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := store.Decode(data, []byte(c.password))
		if err != nil {
			t.Errorf("%s (%s): %v", c.file, c.password, err)
			continue
		}
		if len(got.Keys) != 1 || got.Keys[0].Alias != "javakey" || len(got.Keys[0].Chain) != 1 ||
			got.Keys[0].Chain[0].Subject.CommonName != "java-made" {
			t.Errorf("%s: decoded %+v", c.file, got)
			continue
		}
		if signer, ok := got.Keys[0].Key.(crypto.Signer); !ok || !pki.KeyMatches(signer, got.Keys[0].Chain[0]) {
			t.Errorf("%s: the decrypted key does not match its certificate", c.file)
		}
		// The UTF-8 bytes read as Latin-1 characters (what a byte-based
		// derivation amounts to) must not open it.
		if _, err := store.Decode(data, latin1AsUTF8(c.password)); err == nil {
			t.Errorf("%s: opened with the wrong password", c.file)
		}
	}
	// A truststore with a non-ASCII alias (Java writes modified UTF-8).
	data, err := os.ReadFile(filepath.Join("testdata", "java-made-truststore.jks"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.Decode(data, []byte("🔑key"))
	if err != nil || len(got.Trusted) != 1 || got.Trusted[0].Alias != "trusted-ü" {
		t.Fatalf("java-made truststore: %v %+v", err, got)
	}
}

// latin1AsUTF8 re-encodes every byte of s's UTF-8 form as a character.
func latin1AsUTF8(s string) []byte {
	var r []rune
	for _, b := range []byte(s) {
		r = append(r, rune(b))
	}
	return []byte(string(r))
}

// TestJKSIntegrityUsesUTF16: the store digest is SHA-1 over the password's
// UTF-16 code units (big-endian), "Mighty Aphrodite" and the body — computed
// here independently of the encoder.
func TestJKSIntegrityUsesUTF16(t *testing.T) {
	m := material(t, 1)
	for _, pw := range []string{"pässwörd", "пароль", "密码", "🔑key", "ascii-pw"} {
		dir := t.TempDir()
		spec := store.Spec{Keystore: filepath.Join(dir, "ks.jks"), Truststore: filepath.Join(dir, "ts.jks"), Password: []byte(pw)}
		if _, err := store.Publish(m, spec, time.Now()); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{spec.Keystore, spec.Truststore} {
			data, _ := os.ReadFile(p)
			body, sum := data[:len(data)-sha1.Size], data[len(data)-sha1.Size:]
			h := sha1.New()
			for _, u := range utf16.Encode([]rune(pw)) {
				h.Write(binary.BigEndian.AppendUint16(nil, u))
			}
			h.Write([]byte("Mighty Aphrodite"))
			h.Write(body)
			if !bytes.Equal(h.Sum(nil), sum) {
				t.Errorf("%q: %s: the integrity digest is not Java's", pw, filepath.Base(p))
			}
		}
	}
}

// TestJKSAgreesWithKeystoreGoForASCII: for ASCII passwords, where
// keystore-go's derivation and Java's agree, each implementation reads what
// the other wrote — our codec against an independent one.
func TestJKSAgreesWithKeystoreGoForASCII(t *testing.T) {
	m := material(t, 3)
	pw := []byte("changeit")
	dir := t.TempDir()
	spec := store.Spec{Keystore: filepath.Join(dir, "ks.jks"), Truststore: filepath.Join(dir, "ts.jks"), Password: pw, Alias: "Node"}
	if _, err := store.Publish(m, spec, time.Now()); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(spec.Keystore)
	ks := keystore.New()
	if err := ks.Load(bytes.NewReader(data), pw); err != nil {
		t.Fatalf("keystore-go cannot load our keystore: %v", err)
	}
	e, err := ks.GetPrivateKeyEntry("node", pw)
	if err != nil {
		t.Fatalf("keystore-go cannot decrypt our key entry: %v", err)
	}
	want, _ := x509.MarshalPKCS8PrivateKey(m.Key)
	if !bytes.Equal(e.PrivateKey, want) || len(e.CertificateChain) != 1 || !bytes.Equal(e.CertificateChain[0].Content, m.Leaf.Raw) {
		t.Errorf("keystore-go read a different key entry")
	}
	data, _ = os.ReadFile(spec.Truststore)
	ts := keystore.New()
	if err := ts.Load(bytes.NewReader(data), pw); err != nil || len(ts.Aliases()) != 3 {
		t.Fatalf("keystore-go cannot load our truststore: %v %v", err, ts.Aliases())
	}

	// And the other way: keystore-go writes, we read.
	other := keystore.New()
	if err := other.SetPrivateKeyEntry("k", keystore.PrivateKeyEntry{CreationTime: time.Now(), PrivateKey: want,
		CertificateChain: []keystore.Certificate{{Type: "X509", Content: m.Leaf.Raw}}}, pw); err != nil {
		t.Fatal(err)
	}
	other.SetTrustedCertificateEntry("ca", keystore.TrustedCertificateEntry{CreationTime: time.Now(), Certificate: keystore.Certificate{Type: "X509", Content: m.CAs[0].Raw}})
	var buf bytes.Buffer
	if err := other.Store(&buf, pw); err != nil {
		t.Fatal(err)
	}
	c, err := store.Decode(buf.Bytes(), pw)
	if err != nil || len(c.Keys) != 1 || len(c.Trusted) != 1 || !c.Keys[0].Chain[0].Equal(m.Leaf) || !c.Trusted[0].Cert.Equal(m.CAs[0]) {
		t.Fatalf("reading keystore-go's store: %v %+v", err, c)
	}
}

// TestJKSHostileBytes: truncations and lengths pointing past the end are
// errors, never panics or huge allocations.
func TestJKSHostileBytes(t *testing.T) {
	m := material(t, 2)
	dir := t.TempDir()
	spec := store.Spec{Keystore: filepath.Join(dir, "ks.jks"), Password: []byte("pw")}
	if _, err := store.Publish(m, spec, time.Now()); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(spec.Keystore)
	for n := 0; n < len(good); n += 7 {
		if _, err := store.Decode(good[:n], []byte("pw")); err == nil {
			t.Fatalf("a store truncated to %d bytes decoded", n)
		}
	}
	// A body claiming a 4 GiB key, with a valid digest over it.
	body := binary.BigEndian.AppendUint32(nil, 0xFEEDFEED)
	body = binary.BigEndian.AppendUint32(body, 2)
	body = binary.BigEndian.AppendUint32(body, 1)
	body = binary.BigEndian.AppendUint32(body, 1)
	body = append(body, 0, 1, 'a')
	body = binary.BigEndian.AppendUint64(body, 0)
	body = binary.BigEndian.AppendUint32(body, 0xFFFFFFFF)
	h := sha1.New()
	h.Write([]byte{0, 'p', 0, 'w'})
	h.Write([]byte("Mighty Aphrodite"))
	h.Write(body)
	_, err := store.Decode(h.Sum(body), []byte("pw"))
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("a 4 GiB length: %v", err)
	}
}

// FuzzDecodeJKS feeds the parser bodies with a valid integrity digest, so
// that it gets past the digest check to the entries.
func FuzzDecodeJKS(f *testing.F) {
	const pw = "🔑key"
	for _, file := range []string{"java-made-4.jks", "java-made-truststore.jks"} {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data[:len(data)-sha1.Size])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h := sha1.New()
		for _, u := range utf16.Encode([]rune(pw)) {
			h.Write(binary.BigEndian.AppendUint16(nil, u))
		}
		h.Write([]byte("Mighty Aphrodite"))
		h.Write(body)
		store.Decode(h.Sum(body), []byte(pw)) // must not panic
	})
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		typ store.Type
		pw  string
		ok  bool
	}{
		{store.JKS, "pässwörd", true},
		{store.JKS, "🔑key", true},
		{store.JKS, "tab\tand\x00nul", true},
		{store.JKS, "bad\xffutf8", false},
		{store.PKCS12, "plain ASCII ~!", true},
		{store.PKCS12, "pässwörd", false},
		{store.PKCS12, "tab\tpw", false},
		{store.PKCS12, "del\x7f", false},
	}
	for _, tt := range tests {
		err := store.CheckPassword(tt.typ, []byte(tt.pw))
		if (err == nil) != tt.ok {
			t.Errorf("%s %q: err = %v, want ok=%v", tt.typ, tt.pw, err, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), tt.pw) {
			t.Errorf("%s %q: the error repeats the password", tt.typ, tt.pw)
		}
	}
	// Publish refuses before writing anything.
	dir := t.TempDir()
	spec := store.Spec{Keystore: filepath.Join(dir, "ks.p12"), KeystoreType: store.PKCS12, Password: []byte("пароль")}
	_, err := store.Publish(material(t, 1), spec, time.Now())
	var pe *store.PasswordError
	if !errors.As(err, &pe) || pe.Store != "keystore" {
		t.Fatalf("err = %v, want a keystore PasswordError", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written: %v", entries)
	}
}
