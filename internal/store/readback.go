package store

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/atomicfile"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/files"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

// ReadBack returns what the outputs of s hold now — key, leaf and chain
// from the keystore (or the PEM files), CAs from the truststore (or
// ca.crt) — so a restarted sidecar knows what is published without having
// saved anything. It returns nil and no error when an output does not exist
// yet (nothing published), and an error when one exists but cannot be read
// with the password.
func ReadBack(s Spec) (*pki.Material, error) {
	s = s.withDefaults()
	m := &pki.Material{}
	switch {
	case s.Keystore != "":
		c, err := readStore(s.Keystore, s.Password)
		if c == nil || err != nil {
			return nil, err
		}
		if len(c.Keys) != 1 || len(c.Keys[0].Chain) == 0 {
			return nil, fmt.Errorf("%s: want one key entry with its chain, found %d key entries", s.Keystore, len(c.Keys))
		}
		key, ok := c.Keys[0].Key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: the key entry holds no usable private key", s.Keystore)
		}
		m.Key, m.Leaf, m.Chain = key, c.Keys[0].Chain[0], c.Keys[0].Chain[1:]
	case s.PEMDir != "":
		dir := pemGeneration(s.PEMDir)
		certs, err := readPEM(filepath.Join(dir, PEMCertFile), pki.ParseCertificates)
		if certs == nil || err != nil {
			return nil, err
		}
		key, err := readPEM(filepath.Join(dir, PEMKeyFile), pki.ParsePrivateKey)
		if key == nil || err != nil {
			return nil, err
		}
		m.Key, m.Leaf, m.Chain = key, certs[0], certs[1:]
	default:
		return nil, nil // a truststore alone presents nothing
	}
	switch {
	case s.Truststore != "":
		c, err := readStore(s.Truststore, s.TruststorePassword)
		if c == nil || err != nil {
			return nil, err
		}
		for _, e := range c.Trusted {
			m.CAs = append(m.CAs, e.Cert)
		}
	case s.PEMDir != "":
		cas, err := readPEM(filepath.Join(pemGeneration(s.PEMDir), PEMCAFile), pki.ParseCertificates)
		if cas == nil || err != nil {
			return nil, err
		}
		m.CAs = cas
	}
	return m, nil
}

// pemGeneration is the directory to read the PEM pair from: the
// generation ..data points to now, resolved once so that the files read
// belong together, or dir itself in the layout before ..data.
func pemGeneration(dir string) string {
	if target, err := os.Readlink(filepath.Join(dir, atomicfile.DataDir)); err == nil {
		return filepath.Join(dir, target)
	}
	return dir
}

// readStore decodes a store file; nil without error when it does not exist.
func readStore(path string, password []byte) (*Contents, error) {
	data, err := files.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := Decode(data, password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// readPEM parses a PEM output; the zero value without error when it does
// not exist.
func readPEM[T any](path string, parse func([]byte, string) (T, error)) (T, error) {
	var zero T
	data, err := files.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return zero, nil
	}
	if err != nil {
		return zero, err
	}
	return parse(data, path)
}
