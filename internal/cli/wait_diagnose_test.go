package cli

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/selfsigned"
)

// TestWaitDiagnosesTLSFailures: a TLS failure ends with inspect's diagnosis
// (no CQL is needed for that: the handshake already fails).
func TestWaitDiagnosesTLSFailures(t *testing.T) {
	dir := t.TempDir()
	ca, _ := pkitest.CA("managed CA")
	other, _ := pkitest.CA("other CA")
	leaf, err := pkitest.New(ca, pkitest.Options{CN: "node", DNSNames: []string{"*.cassandra.test"}})
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "ca.crt"), pkitest.CertPEM(ca.Cert))
	writeTestFile(t, filepath.Join(dir, "other.crt"), pkitest.CertPEM(other.Cert))
	seq, _ := selfsigned.ParseSubject("/CN=old")
	old, err := selfsigned.Generate(selfsigned.Options{Subject: seq, KeyType: selfsigned.P256, Days: 1, Now: time.Now().AddDate(0, 0, -3)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := selfsigned.Write(filepath.Join(dir, "old"), old, false); err != nil {
		t.Fatal(err)
	}
	addr := pkitest.ServeTLS(t, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw, ca.Cert.Raw}, PrivateKey: leaf.Key}}}, nil)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"by IP", []string{"--ca", dir + "/ca.crt"}, []string{`"msg":"diagnosis"`, "the certificate names *.cassandra.test; you connected to 127.0.0.1"}},
		{"wrong CA", []string{"--ca", dir + "/other.crt", "--server-name", "node1.cassandra.test"}, []string{`"msg":"diagnosis"`, "does not end at your --ca (it ends at CN=managed CA"}},
		{"wrong --server-name", []string{"--ca", dir + "/ca.crt", "--server-name", "db.example.net"}, []string{"--server-name db.example.net matches none of them"}},
		{"expired client certificate", []string{"--ca", dir + "/other.crt", "--cert", dir + "/old/tls.crt", "--key", dir + "/old/tls.key"},
			[]string{"the client certificate is not valid now", "expired at"}},
	}
	for _, tc := range tests {
		code, out, errs := runWith(nil, append([]string{"wait", "--hosts", addr, "--timeout", "500ms", "--probe-timeout", "2s"}, tc.args...)...)
		if code != ExitFailed {
			t.Errorf("%s: exit %d\n%s%s", tc.name, code, out, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: log lacks %q:\n%s", tc.name, w, errs)
			}
		}
	}
	// Not a TLS failure: no diagnosis.
	_, _, errs := runWith(nil, "wait", "--hosts", "127.0.0.1:1", "--timeout", "300ms", "--ca", dir+"/ca.crt")
	if strings.Contains(errs, `"msg":"diagnosis"`) {
		t.Errorf("a refused connection got a TLS diagnosis:\n%s", errs)
	}
}
