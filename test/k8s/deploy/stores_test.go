package deploy_test

import (
	"bytes"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pavlo-v-chernykh/keystore-go/v4"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// compareStores: the JDK reads both the stores the agent built from the
// csi volume and the keystore.jks/truststore.jks cert-manager built from
// the same Certificate, and they differ where the README says the agent's
// do: the key entry's alias (the config's, not cert-manager's
// "certificate"), the truststore (every CA of the trust bundle and ca.crt,
// not ca.crt alone) and the PKCS#12 profile (Modern2023, not cert-manager's
// default LegacyRC2).
func compareStores(t *testing.T, p *pod, cryptoDir string) {
	pwDir := p.dirs["store-passwords"]
	ksPass := readTrim(t, filepath.Join(pwDir, "keystore-password"))
	tsPass := readTrim(t, filepath.Join(pwDir, "truststore-password"))
	s := p.secret()
	cmDir := t.TempDir()
	for _, k := range []string{"keystore.jks", "truststore.jks", "keystore.p12"} {
		if len(s.Data[k]) == 0 {
			t.Fatalf("cert-manager wrote no %s into Secret %s", k, s.Name)
		}
		writeFile(t, filepath.Join(cmDir, k), s.Data[k])
	}
	root := firstCert(t, []byte(readTrim(t, filepath.Join(p.dirs["ca-bundle"], "ca.pem"))))
	caCrt := firstCert(t, s.Data["ca.crt"])
	leaf := firstCert(t, s.Data["tls.crt"])

	// The agent's truststore holds every distinct CA of ca.crt and the
	// trust bundle (cert-manager's CA issuer puts the root in ca.crt, so
	// here they may be one), cert-manager's ca.crt alone.
	agentTrusts := []*x509.Certificate{caCrt}
	if !root.Equal(caCrt) {
		agentTrusts = append(agentTrusts, root)
	}
	agentAliases := []string{"ca"}
	if len(agentTrusts) == 2 {
		agentAliases = append(agentAliases, "ca-1")
	}
	t.Logf("ca.crt is %q; the trust bundle's root is %q", caCrt.Subject.CommonName, root.Subject.CommonName)

	type store struct {
		who, path, password string
		aliases             []string // what the store must hold
		trusts              []*x509.Certificate
	}
	for _, st := range []store{
		{"agent", filepath.Join(cryptoDir, "keystore.jks"), ksPass, []string{"cassandra"}, nil},
		// cert-manager adds ca.crt to its keystore as well.
		{"cert-manager", filepath.Join(cmDir, "keystore.jks"), ksPass, []string{"ca", "certificate"}, nil},
		{"agent", filepath.Join(cryptoDir, "truststore.jks"), tsPass, agentAliases, agentTrusts},
		{"cert-manager", filepath.Join(cmDir, "truststore.jks"), ksPass, []string{"ca"}, []*x509.Certificate{caCrt}},
	} {
		// The JDK reads it (keytool checks the integrity digest).
		out := keytool(t, "-list", "-keystore", st.path, "-storepass", st.password, "-storetype", "JKS")
		for _, a := range st.aliases {
			if !strings.Contains(out, a+",") {
				t.Errorf("%s's %s: keytool lists no alias %q:\n%s", st.who, filepath.Base(st.path), a, out)
			}
		}
		ks := keystore.New()
		f, err := os.Open(st.path)
		if err != nil {
			t.Fatal(err)
		}
		err = ks.Load(f, []byte(st.password))
		f.Close()
		if err != nil {
			t.Fatalf("%s's %s: %v", st.who, st.path, err)
		}
		got := ks.Aliases()
		slices.Sort(got)
		if !slices.Equal(got, st.aliases) {
			t.Errorf("%s's %s holds aliases %q, want %q", st.who, filepath.Base(st.path), got, st.aliases)
		}
		if st.trusts == nil {
			e, err := ks.GetPrivateKeyEntry(st.aliases[len(st.aliases)-1], []byte(st.password))
			if err != nil {
				t.Fatalf("%s's keystore: %v", st.who, err)
			}
			if !bytes.Equal(e.CertificateChain[0].Content, leaf.Raw) {
				t.Errorf("%s's keystore: the key entry's leaf is not the Certificate's", st.who)
			}
			continue
		}
		var trusted [][]byte
		for _, a := range got {
			e, err := ks.GetTrustedCertificateEntry(a)
			if err != nil {
				t.Fatalf("%s's truststore %s: %v", st.who, a, err)
			}
			trusted = append(trusted, e.Certificate.Content)
		}
		for _, c := range st.trusts {
			if !slices.ContainsFunc(trusted, func(b []byte) bool { return bytes.Equal(b, c.Raw) }) {
				t.Errorf("%s's truststore does not hold %s", st.who, c.Subject)
			}
		}
	}

	// A CA rotation as the README runs it: the new root joins the Bundle
	// first. The agent's truststore (the stores command, same csi volume)
	// then holds both roots; cert-manager's can only ever hold ca.crt.
	newRoot, err := pkitest.CA("cassandra root CA (next)")
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, bundle, append(pkitest.CertPEM(root), pkitest.CertPEM(newRoot.Cert)...))
	ts := filepath.Join(t.TempDir(), "truststore.jks")
	agentStores(t, "--source", p.csiDir, "--trust-bundle", bundle, "--truststore", ts, "--password-file", filepath.Join(pwDir, "keystore-password"))
	out := keytool(t, "-list", "-keystore", ts, "-storepass", ksPass, "-storetype", "JKS")
	if !strings.Contains(out, "ca-1,") || !strings.Contains(out, "contains 2 entries") {
		t.Errorf("the agent's truststore with a second root in the bundle: want 2 CAs (ca, ca-1):\n%s", out)
	}

	// PKCS#12 from the same csi volume, through the agent's stores command.
	p12 := filepath.Join(t.TempDir(), "keystore.p12")
	agentStores(t, "--source", p.csiDir, "--trust-bundle", filepath.Join(p.dirs["ca-bundle"], "ca.pem"),
		"--keystore", p12, "--store-type", "pkcs12", "--password-file", filepath.Join(pwDir, "keystore-password"))
	for _, st := range []struct{ who, path, want string }{
		{"agent", p12, "AES-256-CBC"},                                 // Modern2023
		{"cert-manager", filepath.Join(cmDir, "keystore.p12"), "RC2"}, // LegacyRC2, its default
	} {
		out := keytool(t, "-list", "-keystore", st.path, "-storepass", ksPass, "-storetype", "PKCS12")
		if !strings.Contains(out, "PrivateKeyEntry") {
			t.Errorf("%s's PKCS#12: keytool lists no key entry:\n%s", st.who, out)
		}
		info, _ := exec.Command("openssl", "pkcs12", "-info", "-noout", "-in", st.path, "-passin", "pass:"+ksPass).CombinedOutput()
		if !strings.Contains(string(info), st.want) {
			t.Errorf("%s's PKCS#12: openssl pkcs12 -info does not name %s:\n%s", st.who, st.want, info)
		}
		t.Logf("%s's PKCS#12: %s", st.who, strings.Join(strings.Fields(firstLines(string(info), 3)), " "))
	}
}

func agentStores(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(agentBin, append([]string{"stores"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("agent stores %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func keytool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("keytool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("keytool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(data), "\n")
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
