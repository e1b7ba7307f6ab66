package cli

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

func TestCqlshrcCheck(t *testing.T) {
	dir := t.TempDir()
	ca, _ := pkitest.CA("node CA")
	other, _ := pkitest.CA("other CA")
	// "localhost" is the one name that resolves everywhere without a hosts entry.
	leaf, err := pkitest.New(ca, pkitest.Options{CN: "node", DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "ca.crt"), pkitest.CertPEM(ca.Cert))
	writeTestFile(t, filepath.Join(dir, "other.crt"), pkitest.CertPEM(other.Cert))
	if code, out, errs := runWith(nil, "certs", "self-signed", "--out", filepath.Join(dir, "client"), "--cn", "app", "--key-type", "p256"); code != 0 {
		t.Fatalf("%s%s", out, errs)
	}
	if code, out, errs := runWith(nil, "certs", "self-signed", "--out", filepath.Join(dir, "stranger"), "--cn", "stranger", "--key-type", "p256"); code != 0 {
		t.Fatalf("%s%s", out, errs)
	}
	client, err := tls.LoadX509KeyPair(filepath.Join(dir, "client", "tls.crt"), filepath.Join(dir, "client", "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	trusted := x509.NewCertPool()
	trusted.AddCert(client.Leaf)
	addr := pkitest.ServeTLS(t, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key}},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: trusted}, nil)
	port := addr[strings.LastIndex(addr, ":")+1:]
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatal(addr)
	}
	tests := []struct {
		name, host, ca, client string
		extra                  []string
		code                   int
		want                   string
	}{
		{"matching name", "localhost", "ca.crt", "client", nil, ExitOK, "cqlshrc check passed"},
		{"by IP", "127.0.0.1", "ca.crt", "client", nil, ExitFailed, "the certificate names localhost; you connected to 127.0.0.1"},
		{"wrong certfile", "localhost", "other.crt", "client", nil, ExitFailed, "the server's chain does not end at your --ca (it ends at CN=node CA"},
		{"client certificate not uploaded", "localhost", "ca.crt", "stranger", nil, ExitFailed, "it is self-signed and not in the server's truststore"},
		{"no client certificate", "localhost", "ca.crt", "", nil, ExitFailed, "the server requires a client certificate signed by one of: CN=app"},
		{"check without validation", "localhost", "ca.crt", "client", []string{"--validate=false"}, ExitUsage, "makes no sense with --validate=false"},
	}
	for _, tc := range tests {
		out := filepath.Join(dir, "rc-"+strings.ReplaceAll(tc.name, " ", "-"))
		args := []string{"cqlshrc", "--check", "--out", out, "--host", tc.host, "--port", port, "--ca", filepath.Join(dir, tc.ca)}
		if tc.client != "" {
			args = append(args, "--cert", filepath.Join(dir, tc.client, "tls.crt"), "--key", filepath.Join(dir, tc.client, "tls.key"))
		}
		code, stdout, stderr := runWith(nil, append(args, tc.extra...)...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
			t.Errorf("%s: exit %d (want %d), output lacks %q:\n%s%s", tc.name, code, tc.code, tc.want, stdout, stderr)
		}
		_, err := os.Stat(out)
		if written := err == nil; written != (tc.code == ExitOK) {
			t.Errorf("%s: cqlshrc written = %t with exit %d", tc.name, written, code)
		}
	}
}
