// Command certgen issues test certificates in cert-manager's Secret layout,
// for the demo and the end-to-end scripts — standing in for cert-manager.
// The CA is created in -ca-dir on first use and reused after, so successive
// runs issue new leaves from the same CA, as a cert-manager renewal does.
//
// Usage: go run ./test/certgen -ca-dir DIR -out DIR [-cn node1] [-key p256]
package main

import (
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

func main() {
	caDir := flag.String("ca-dir", "", "directory holding (or receiving) ca.crt and ca.key")
	out := flag.String("out", "", "directory to write tls.crt, tls.key and ca.crt into")
	cn := flag.String("cn", "node1", "leaf common name (also a DNS SAN, with localhost and 127.0.0.1)")
	key := flag.String("key", "p256", "leaf key type: rsa2048, p256, p384, ed25519")
	validity := flag.Duration("validity", 90*24*time.Hour, "leaf validity")
	atomic := flag.Bool("atomic", false, "publish -out the way the kubelet updates a Secret volume (..data symlink swap)")
	flag.Parse()
	if *caDir == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*caDir, *out, *cn, pkitest.KeyType(*key), *validity, *atomic); err != nil {
		fmt.Fprintln(os.Stderr, "certgen:", err)
		os.Exit(1)
	}
}

func run(caDir, out, cn string, kt pkitest.KeyType, validity time.Duration, atomic bool) error {
	ca, err := loadOrCreateCA(caDir)
	if err != nil {
		return err
	}
	leaf, err := pkitest.New(ca, pkitest.Options{CN: cn, KeyType: kt, DNSNames: []string{"localhost", cn},
		IPs: pkitest.LoopbackIPs(), NotAfter: time.Now().Add(validity)})
	if err != nil {
		return err
	}
	if atomic {
		err = kubeletfs.Write(out, map[string][]byte{
			"tls.crt": pkitest.CertPEM(leaf.Cert), "tls.key": pkitest.KeyPEM(leaf.Key), "ca.crt": pkitest.CertPEM(ca.Cert)})
	} else {
		err = pkitest.WriteDir(out, leaf, nil, ca.Cert)
	}
	if err != nil {
		return err
	}
	fmt.Println(pki.Fingerprint(leaf.Cert))
	return nil
}

func loadOrCreateCA(dir string) (*pkitest.Cert, error) {
	crtPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if crtData, err := os.ReadFile(crtPath); err == nil {
		keyData, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, err
		}
		certs, err := pki.ParseCertificates(crtData, crtPath)
		if err != nil {
			return nil, err
		}
		key, err := pki.ParsePrivateKey(keyData, keyPath)
		if err != nil {
			return nil, err
		}
		return &pkitest.Cert{Cert: certs[0], Key: key}, nil
	}
	ca, err := pkitest.CA("cassandra-tls-agent demo CA")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644); err != nil {
		return nil, err
	}
	return ca, os.WriteFile(keyPath, pkitest.KeyPEM(ca.Key), 0o600)
}
