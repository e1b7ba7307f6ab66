package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

// TestSourceFormsRefused: every way a store's source can be wrong is a
// configuration error at load time, naming the store and the key.
func TestSourceFormsRefused(t *testing.T) {
	const out = "pem: {dir: /out}"
	tests := []struct{ name, store, want string }{
		{"no source at all", "{name: a, " + out + "}",
			"stores[0] (a): set source (a directory: tls.crt, tls.key, ca.crt) or credentialBundle (one PEM file: key and chain)"},
		{"both forms", "{name: a, source: /s, credentialBundle: /i/b.pem, trustBundles: [/t/ca.pem], " + out + "}",
			"stores[0] (a): set source or credentialBundle, not both (a store has one certificate source)"},
		{"credential bundle without CAs", "{name: a, credentialBundle: /i/b.pem, " + out + "}",
			"stores[0] (a): credentialBundle holds the key and its chain but no CA: name the CAs to trust in trustBundles " +
				"(a clusterTrustBundle projection, a trust-manager Bundle or the issuer's ca.crt)"},
		{"credential bundle with an empty trust list", "{name: a, credentialBundle: /i/b.pem, trustBundles: [], " + out + "}",
			"stores[0] (a): credentialBundle holds the key and its chain but no CA"},
		{"an empty trust bundle path", "{name: a, credentialBundle: /i/b.pem, trustBundles: [/t/ca.pem, \"\"], " + out + "}",
			"stores[0] (a).trustBundles[1] is empty"},
		{"files with a credential bundle", "{name: a, credentialBundle: /i/b.pem, trustBundles: [/t/ca.pem], files: {cert: c.pem}, " + out + "}",
			"stores[0] (a).files: names the files inside source; set source, or leave files out (a credentialBundle is one file)"},
		{"files without any source", "{name: a, files: {cert: c.pem}, " + out + "}",
			"stores[0] (a).files: names the files inside source"},
		{"a path as a file name", "{name: a, source: /s, files: {cert: sub/c.pem}, " + out + "}",
			"stores[0] (a).files.cert: want a file name inside source (no '/', not '.' or '..')"},
		{"an absolute path as a file name", "{name: a, source: /s, files: {key: /etc/k.pem}, " + out + "}",
			"stores[0] (a).files.key: want a file name inside source (no '/', not '.' or '..')"},
		{"a parent as a file name", "{name: a, source: /s, files: {ca: ..}, " + out + "}",
			"stores[0] (a).files.ca: want a file name inside source (no '/', not '.' or '..')"},
		{"the directory itself as a file name", "{name: a, source: /s, files: {cert: .}, " + out + "}",
			"stores[0] (a).files.cert: want a file name inside source"},
		{"cert and key in one file", "{name: a, source: /s, files: {cert: tls.pem, key: tls.pem}, " + out + "}",
			"stores[0] (a).files: cert, key and ca must name three different files"},
		{"a renamed key clashing with the default ca", "{name: a, source: /s, files: {key: ca.crt}, " + out + "}",
			"stores[0] (a).files: cert, key and ca must name three different files"},
		{"a typo under files", "{name: a, source: /s, files: {crt: c.pem}, " + out + "}",
			"field crt not found"},
		{"an output over the credential bundle", "{name: a, credentialBundle: /i/b.pem, trustBundles: [/t/ca.pem], passwordFile: /p, keystore: {path: /i/b.pem}}",
			"stores[0] (a).keystore.path: /i/b.pem is one of the store's own inputs (credentialBundle)"},
		{"an output over a renamed source file", "{name: a, source: /s, files: {cert: cert.pem}, passwordFile: /p, truststore: {path: /s/cert.pem}}",
			"stores[0] (a).truststore.path: /s/cert.pem is one of the store's own inputs (source)"},
		{"pem outputs into the source directory", "{name: a, source: /s/, files: {cert: c.pem, key: k.pem, ca: a.pem}, pem: {dir: /s}}",
			"stores[0] (a).pem.dir: /s is one of the store's own inputs (the source directory)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("stores:\n  - "+tc.store+"\n"), "c.yaml", nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant it to say %q", err, tc.want)
			}
		})
	}
}

// TestSourceForms: the accepted forms, with ${VAR} expanded in every path
// and name, defaults applied, and one translation to pki.Source.
func TestSourceForms(t *testing.T) {
	env := []string{"POD_NAME=node1", "CERT=certificate.pem"}
	tests := []struct {
		name  string
		store string
		files *SourceFiles
		src   pki.Source
	}{
		{"cert-manager Secret directory", "{name: a, source: \"/certs/${POD_NAME}\", pem: {dir: /out}}",
			&SourceFiles{Cert: "tls.crt", Key: "tls.key", CA: "ca.crt"},
			pki.Source{Dir: "/certs/node1", Files: pki.FileNames{Cert: "tls.crt", Key: "tls.key", CA: "ca.crt"}}},
		{"csi-driver directory with its file names changed", "{name: a, source: /csi, files: {cert: \"${CERT}\", key: key.pem}, trustBundles: [/t/ca.pem], pem: {dir: /out}}",
			&SourceFiles{Cert: "certificate.pem", Key: "key.pem", CA: "ca.crt"},
			pki.Source{Dir: "/csi", Files: pki.FileNames{Cert: "certificate.pem", Key: "key.pem", CA: "ca.crt"}, TrustBundles: []string{"/t/ca.pem"}}},
		{"podCertificate credential bundle", "{name: a, credentialBundle: \"/var/run/identity/${POD_NAME}.pem\", trustBundles: [/var/run/trust/ca.pem], pem: {dir: /out}}",
			nil,
			pki.Source{CredentialBundle: "/var/run/identity/node1.pem", TrustBundles: []string{"/var/run/trust/ca.pem"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte("stores:\n  - "+tc.store+"\n"), "c.yaml", env)
			if err != nil {
				t.Fatal(err)
			}
			s := c.Stores[0]
			if !reflect.DeepEqual(s.Files, tc.files) {
				t.Errorf("files = %+v, want %+v", s.Files, tc.files)
			}
			if got := s.PKISource(); !reflect.DeepEqual(got, tc.src) {
				t.Errorf("pki source = %+v, want %+v", got, tc.src)
			}
		})
	}
}
