package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// nonASCIIPasswords cover Latin-1 (one byte per character in ISO-8859-1, two
// in UTF-8), Cyrillic and CJK (UTF-16 code units above 0xFF) and a character
// outside the BMP (a surrogate pair in Java's char[]).
var nonASCIIPasswords = []string{"pässwörd", "пароль", "密码", "🔑key"}

// runJava runs a JDK tool in a UTF-8 locale, so that non-ASCII arguments
// reach it as the characters they are (under the C locale the JVM decodes
// argv as ASCII and turns every other byte into '?').
func runJava(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestJKSNonASCIIPasswordsAgreeWithJava: for every password, the JKS
// keystore and truststore the agent writes open in keytool and in the
// KeyStore API (store integrity, and the key entry decrypted with the
// password), a mutual-TLS handshake works from them as in Cassandra, and
// the agent reads a JKS the JDK itself wrote under that password.
func TestJKSNonASCIIPasswordsAgreeWithJava(t *testing.T) {
	need(t, "keytool", "java")
	jksCheck := filepath.Join(repoRoot(), "test", "java", "JKSCheck.java")
	type pwCase struct {
		password, pwFile, ks, ts, javaMade string
		f                                  pkiFixture
		srv                                *tlsServer
	}
	var cases []*pwCase
	var loads, repass, tlsCases []string
	for i, password := range nonASCIIPasswords {
		dir := t.TempDir()
		c := &pwCase{password: password, pwFile: filepath.Join(dir, "password"),
			ks: filepath.Join(dir, "keystore.jks"), ts: filepath.Join(dir, "truststore.jks"), javaMade: filepath.Join(dir, "java-made.jks"),
			f: newFixture(t, []pkitest.KeyType{pkitest.RSA2048, pkitest.P256}[i%2])}
		c.f.writeSource(t, filepath.Join(dir, "src"))
		writeFile(t, c.pwFile, []byte(password+"\n"))
		if r := agent(t, nil, "stores", "--source", filepath.Join(dir, "src"), "--keystore", c.ks, "--truststore", c.ts,
			"--password-file", c.pwFile, "--alias", "Cassandra"); r.code != 0 {
			t.Fatalf("%s: stores exit %d: %s", password, r.code, r.stderr)
		}
		// keytool checks the store's integrity digest with -storepass.
		for _, store := range []string{c.ks, c.ts} {
			out, err := runJava(t, "keytool", "-list", "-v", "-storetype", "JKS", "-keystore", store, "-storepass", password)
			if err != nil {
				t.Errorf("%s: keytool -list %s: %v\n%s", password, filepath.Base(store), err, out)
			} else if fps := sha256Lines(out); len(fps) == 0 {
				t.Errorf("%s: keytool listed no certificate in %s:\n%s", password, filepath.Base(store), out)
			}
		}
		c.srv = startTLSServer(t, c.f)
		cases = append(cases, c)
		loads = append(loads, c.ks, c.pwFile, c.ts, c.pwFile)
		repass = append(repass, c.javaMade, c.pwFile)
		tlsCases = append(tlsCases, strings.Join([]string{c.srv.addr, "JKS", c.ks, c.ts, c.pwFile}, ","))
	}

	// The other way round: JKS files the JDK wrote under each password, from
	// one keytool-made key pair (keytool itself refuses passwords shorter
	// than 6 characters, the KeyStore API does not).
	seed := filepath.Join(t.TempDir(), "seed.jks")
	if out, err := runJava(t, "keytool", "-genkeypair", "-storetype", "JKS", "-keystore", seed, "-storepass", "initial-pw",
		"-keypass", "initial-pw", "-alias", "javakey", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=java-made", "-validity", "30"); err != nil {
		t.Fatalf("keytool -genkeypair: %v\n%s", err, out)
	}
	if out, err := runJava(t, "java", append([]string{jksCheck, "repass", seed, "initial-pw"}, repass...)...); err != nil {
		t.Fatalf("re-storing with the JDK: %v\n%s", err, out)
	}
	for _, c := range cases {
		loads = append(loads, c.javaMade, c.pwFile)
	}

	// The KeyStore API: integrity, and the key entry decrypted with the password.
	out, _ := runJava(t, "java", append([]string{jksCheck, "load"}, loads...)...)
	stores := javaStores(out)
	for _, c := range cases {
		if got, want := stores[c.ks], "KEY cassandra "; !strings.Contains(got, want) || !strings.Contains(got, pki.Fingerprint(c.f.leaf.Cert)) {
			t.Errorf("%s: Java could not load the key entry of our keystore:\n%s", c.password, got)
		}
		if got, want := stores[c.ts], "CERT ca "+pki.Fingerprint(c.f.root.Cert); !strings.Contains(got, want) {
			t.Errorf("%s: Java could not load our truststore:\n%s", c.password, got)
		}
		javaOut := stores[c.javaMade]
		if !strings.Contains(javaOut, "KEY javakey EC ") {
			t.Fatalf("%s: the JDK cannot read its own store:\n%s", c.password, out)
		}
		r := agent(t, nil, "inspect", "--password-file", c.pwFile, "--output", "json", c.javaMade)
		var rep struct {
			Kind         string
			Certificates []struct{ Role, Alias, SHA256 string }
			KeyMatches   *bool `json:"key_matches_leaf"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Errorf("%s: inspect of a Java-made JKS: exit %d %v\n%s%s", c.password, r.code, err, r.stdout, r.stderr)
			continue
		}
		if rep.Kind != "jks" || len(rep.Certificates) != 1 || rep.Certificates[0].Alias != "javakey" ||
			!strings.Contains(javaOut, "KEY javakey EC "+rep.Certificates[0].SHA256) || rep.KeyMatches == nil || !*rep.KeyMatches {
			t.Errorf("%s: inspect of a Java-made JKS: %+v, Java says:\n%s", c.password, rep, javaOut)
		}
	}

	// Cassandra's way: KeyManagerFactory + TrustManagerFactory, then a handshake.
	out, _ = runJava(t, "java", append([]string{filepath.Join(repoRoot(), "test", "java", "TLSCheck.java")}, tlsCases...)...)
	for _, c := range cases {
		if want := fmt.Sprintf("OK %s %s", c.srv.addr, pki.Fingerprint(c.f.leaf.Cert)); !strings.Contains(out, want) {
			t.Errorf("%s: Java handshake: want %q in:\n%s", c.password, want, out)
		}
	}
}

// javaStores splits JKSCheck's load output by store.
func javaStores(out string) map[string]string {
	m := map[string]string{}
	var cur string
	for _, line := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(line, "STORE "); ok {
			cur = p
			continue
		}
		m[cur] += line + "\n"
	}
	return m
}

// TestPKCS12NonASCIIPasswordRefused: Java refuses PKCS#12 passwords outside
// printable ASCII ("Password is not ASCII"), so the agent refuses them
// before writing anything, saying why, with exit 1.
func TestPKCS12NonASCIIPasswordRefused(t *testing.T) {
	f := newFixture(t, pkitest.P256)
	for _, password := range append(nonASCIIPasswords, "tab\tpw") {
		dir := t.TempDir()
		f.writeSource(t, filepath.Join(dir, "src"))
		pw := filepath.Join(dir, "password")
		writeFile(t, pw, []byte(password))
		out := filepath.Join(dir, "out")
		r := agent(t, nil, "stores", "--source", filepath.Join(dir, "src"), "--keystore", filepath.Join(out, "keystore.p12"),
			"--truststore", filepath.Join(out, "truststore.p12"), "--store-type", "pkcs12", "--password-file", pw)
		if r.code != 1 || !strings.Contains(r.stderr, "PKCS#12") || !strings.Contains(r.stderr, "printable ASCII") {
			t.Errorf("%q: exit %d, want 1 with a PKCS#12/ASCII explanation: %s", password, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, password) {
			t.Errorf("%q: the password is in the error output", password)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%q: something was written: %v", password, err)
		}
	}
}
