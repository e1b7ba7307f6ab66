package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

func TestInspectTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := pkitest.CA("managed CA")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := pkitest.CA("other CA")
	leaf, err := pkitest.New(ca, pkitest.Options{CN: "node1", DNSNames: []string{"*.cassandra.test"}})
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "ca.crt"), pkitest.CertPEM(ca.Cert))
	writeTestFile(t, filepath.Join(dir, "other.crt"), pkitest.CertPEM(other.Cert))
	// The client certificate comes from the command under test.
	if code, out, errs := runWith(nil, "certs", "self-signed", "--out", filepath.Join(dir, "client"), "--cn", "orders", "--key-type", "p256"); code != 0 {
		t.Fatalf("certs self-signed: %d\n%s%s", code, out, errs)
	}
	client, err := tls.LoadX509KeyPair(filepath.Join(dir, "client", "tls.crt"), filepath.Join(dir, "client", "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	trusted := x509.NewCertPool()
	trusted.AddCert(client.Leaf)
	addr := pkitest.ServeTLS(t, &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw, ca.Cert.Raw}, PrivateKey: leaf.Key}},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: trusted,
	}, nil)
	target := "tls://" + addr
	cert, key := filepath.Join(dir, "client", "tls.crt"), filepath.Join(dir, "client", "tls.key")
	saved := filepath.Join(dir, "saved", "chain.pem")

	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want []string
	}{
		{"help", nil, []string{"inspect", "tls://", "--help"}, ExitOK, []string{"--save-chain", "[CASSANDRA_TLS_AGENT_SERVER_NAME]", "openssl s_client"}},
		{"inspect help mentions tls", nil, []string{"inspect", "--help"}, ExitOK, []string{"tls://HOST:PORT"}},
		{"all good, target first", nil, []string{"inspect", target, "--ca", dir + "/ca.crt", "--server-name", "node1.cassandra.test", "--cert", cert, "--key", key, "--save-chain", saved},
			ExitOK, []string{"[0] CN=node1", "DNS:*.cassandra.test", "[1] CN=managed CA", "chain:       OK", "name:        OK", "for the name node1.cassandra.test (from --server-name)",
				"- CN=orders", "accepted by the server", "saved the served chain (2 certificate(s))", "status: OK"}},
		{"flags from env, target last", map[string]string{"CASSANDRA_TLS_AGENT_CA": dir + "/ca.crt", "CASSANDRA_TLS_AGENT_SERVER_NAME": "node1.cassandra.test",
			"CASSANDRA_TLS_AGENT_CERT": cert, "CASSANDRA_TLS_AGENT_KEY": key}, []string{"inspect", target}, ExitOK, []string{"status: OK"}},
		{"by IP", nil, []string{"inspect", "--ca", dir + "/ca.crt", "--cert", cert, "--key", key, target}, ExitFailed,
			[]string{"name:        FAILED", "the certificate names *.cassandra.test; you connected to 127.0.0.1 — use a matching name"}},
		{"wrong ca", nil, []string{"inspect", target, "--ca", dir + "/other.crt", "--server-name", "node1.cassandra.test", "--cert", cert, "--key", key}, ExitFailed,
			[]string{"the server's chain does not end at your --ca (it ends at CN=managed CA"}},
		{"saved chain as --ca", nil, []string{"inspect", target, "--ca", saved, "--server-name", "node1.cassandra.test", "--cert", cert, "--key", key}, ExitOK, []string{"status: OK"}},
		{"no client certificate", nil, []string{"inspect", target, "--ca", dir + "/ca.crt", "--server-name", "node1.cassandra.test"}, ExitFailed,
			[]string{"client certificate: required", "the server requires a client certificate signed by one of: CN=orders"}},
		{"cert without key", nil, []string{"inspect", target, "--cert", cert}, ExitUsage, []string{"--cert and --key go together"}},
		{"bad ca file", nil, []string{"inspect", target, "--ca", cert + ".missing"}, ExitUsage, []string{"--ca:", "file does not exist"}},
		{"bad output", nil, []string{"inspect", target, "--output", "yaml"}, ExitUsage, []string{`--output "yaml"`}},
		{"extra argument", nil, []string{"inspect", target, "other"}, ExitUsage, []string{`unexpected argument "other"`}},
		{"nothing there", nil, []string{"inspect", "tls://127.0.0.1:1"}, ExitFailed, []string{"connection refused: nothing listens there"}},
	}
	for _, tc := range tests {
		code, out, errs := runWith(tc.env, tc.args...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", tc.name, code, tc.code, out, errs)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out+errs, w) {
				t.Errorf("%s: output lacks %q:\n%s%s", tc.name, w, out, errs)
			}
		}
	}
	data, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := pki.ParseCertificates(data, saved)
	if err != nil || len(chain) != 2 || !chain[0].Equal(leaf.Cert) || !chain[1].Equal(ca.Cert) {
		t.Errorf("saved chain: %v, %d certificates", err, len(chain))
	}

	code, out, errs := runWith(nil, "inspect", target, "--output", "json", "--ca", dir+"/ca.crt", "--server-name", "node1.cassandra.test")
	var r struct {
		Chain []struct {
			Subject string   `json:"subject"`
			SANs    []string `json:"sans"`
		} `json:"chain"`
		Verified      bool     `json:"verified"`
		ClientAuth    string   `json:"client_auth"`
		AcceptableCAs []string `json:"acceptable_client_cas"`
		Problems      []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("json output: %v\n%s%s", err, out, errs)
	}
	if code != ExitFailed || !r.Verified || r.ClientAuth != "required" || len(r.AcceptableCAs) != 1 || r.AcceptableCAs[0] != "CN=orders" ||
		len(r.Chain) != 2 || r.Chain[0].SANs[0] != "DNS:*.cassandra.test" || len(r.Problems) != 1 {
		t.Errorf("json: exit %d %+v", code, r)
	}
}

func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
