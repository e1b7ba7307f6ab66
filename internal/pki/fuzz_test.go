package pki_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// checkRefusal: a refusal is typed (its reason is one of the source
// reasons, for the metric), names the file, and echoes no PEM body.
func checkRefusal(t *testing.T, err error, name string, data []byte, reasons ...pki.Reason) {
	t.Helper()
	r := pki.ReasonOf(err)
	ok := false
	for _, want := range reasons {
		ok = ok || r == want
	}
	if !ok {
		t.Fatalf("reason %q, want one of %v: %v", r, reasons, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, name+": ") {
		t.Fatalf("the error does not start with the file name: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); len(line) >= 24 && !strings.HasPrefix(line, "-----") && strings.Contains(msg, line) {
			t.Fatalf("the error echoes the input line %q: %v", line, err)
		}
	}
}

func seedPEM(f *testing.F) {
	ca, err := pkitest.CA("fuzz CA")
	if err != nil {
		f.Fatal(err)
	}
	for _, kt := range []pkitest.KeyType{pkitest.RSA2048, pkitest.P256, pkitest.Ed25519} {
		leaf, err := pkitest.Leaf(ca, "fuzz leaf", kt)
		if err != nil {
			f.Fatal(err)
		}
		chain := pkitest.CertPEM(leaf.Cert, ca.Cert)
		key := pkitest.KeyPEM(leaf.Key)
		f.Add(chain)
		f.Add(key)
		f.Add(append(append([]byte{}, chain...), key...))
		f.Add(chain[:len(chain)/2])
		f.Add(append(append([]byte{}, key...), "trailing"...))
	}
}

// FuzzParseCertificates: any input is either parsed into certificates
// whose DER is exactly the input's PEM blocks, or refused as malformed.
func FuzzParseCertificates(f *testing.F) {
	seedPEM(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := pki.ParseCertificates(data, "tls.crt")
		if err != nil {
			if certs != nil {
				t.Fatal("certificates and an error")
			}
			checkRefusal(t, err, "tls.crt", data, pki.ReasonMalformed)
			return
		}
		if len(certs) == 0 {
			t.Fatal("no certificates and no error")
		}
		rest := data
		for i, c := range certs {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil || b.Type != "CERTIFICATE" || !bytes.Equal(b.Bytes, c.Raw) {
				t.Fatalf("certificate %d is not the input's block %d", i+1, i+1)
			}
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			t.Fatal("input after the last block was accepted")
		}
	})
}

// FuzzParsePrivateKey: any input is either exactly one supported private
// key (RSA ≥ 2048 bits, ECDSA P-256/384/521, Ed25519), or refused as
// malformed or unsupported.
func FuzzParsePrivateKey(f *testing.F) {
	seedPEM(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := pki.ParsePrivateKey(data, "tls.key")
		if err != nil {
			if key != nil {
				t.Fatal("a key and an error")
			}
			checkRefusal(t, err, "tls.key", data, pki.ReasonMalformed, pki.ReasonUnsupportedKey)
			return
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			if k.N.BitLen() < 2048 || k.Validate() != nil {
				t.Fatalf("RSA key of %d bits accepted", k.N.BitLen())
			}
		case *ecdsa.PrivateKey:
			if n := k.Curve.Params().Name; n != "P-256" && n != "P-384" && n != "P-521" {
				t.Fatalf("curve %s accepted", n)
			}
		case ed25519.PrivateKey:
		default:
			t.Fatalf("key type %T accepted", key)
		}
	})
}

// FuzzParseCredentialBundle: any input is either refused as malformed or
// unsupported (naming the file, echoing nothing), or it is exactly one
// supported private key and one or more certificates whose DER is, in
// order, the input's CERTIFICATE blocks — and no other kind of block.
func FuzzParseCredentialBundle(f *testing.F) {
	seedPEM(f)
	ca, err := pkitest.CA("fuzz CA")
	if err != nil {
		f.Fatal(err)
	}
	leaf, err := pkitest.Leaf(ca, "fuzz leaf", pkitest.P256)
	if err != nil {
		f.Fatal(err)
	}
	key, chain := pkitest.KeyPEM(leaf.Key), pkitest.CertPEM(leaf.Cert, ca.Cert)
	f.Add(append(append([]byte("Bag Attributes\n"), key...), chain...))
	f.Add(append(append(append([]byte{}, key...), chain...), key...))
	f.Add(append(append([]byte{}, chain...), "-----BEGIN CERTIFICATE REQUEST-----\nAQ==\n-----END CERTIFICATE REQUEST-----\n"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, certs, err := pki.ParseCredentialBundle(data, "bundle.pem")
		if err != nil {
			if k != nil || certs != nil {
				t.Fatal("material and an error")
			}
			checkRefusal(t, err, "bundle.pem", data, pki.ReasonMalformed, pki.ReasonUnsupportedKey)
			return
		}
		if k == nil || len(certs) == 0 {
			t.Fatal("no key or no certificate, and no error")
		}
		keys, n := 0, 0
		rest := data
		for {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			switch b.Type {
			case "CERTIFICATE":
				if n >= len(certs) || !bytes.Equal(b.Bytes, certs[n].Raw) {
					t.Fatalf("certificate %d is not the input's CERTIFICATE block %d", n+1, n+1)
				}
				n++
			case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
				keys++
			case "EC PARAMETERS":
			default:
				t.Fatalf("a %q block was accepted", b.Type)
			}
		}
		if keys != 1 || n != len(certs) {
			t.Fatalf("accepted %d key blocks and %d of %d certificates", keys, n, len(certs))
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			t.Fatal("input after the last block was accepted")
		}
	})
}
