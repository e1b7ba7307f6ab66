// Package agent wires the pieces into the two long-form jobs: init (render,
// build stores, wait for CQL, bootstrap) and sidecar (watch, rebuild, reload,
// verify). Each step lives in its own package; this one only orders them.
package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/secret"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

// StoreSpec resolves a configured store into its source and output spec,
// reading its passwords.
func StoreSpec(s config.Store, getenv func(string) string) (pki.Source, store.Spec, error) {
	src := pki.Source{Dir: s.Source, TrustBundles: s.TrustBundles}
	spec := store.Spec{Mode: os.FileMode(s.Mode)}
	var err error
	if s.Keystore != nil {
		spec.Keystore, spec.Alias = s.Keystore.Path, s.Keystore.Alias
		if spec.KeystoreType, err = store.ParseType(s.Keystore.Type); err != nil {
			return src, spec, err
		}
		if spec.Profile, err = store.ParseProfile(s.Keystore.Profile); err != nil {
			return src, spec, err
		}
	}
	if s.Truststore != nil {
		spec.Truststore = s.Truststore.Path
		if spec.TruststoreType, err = store.ParseType(s.Truststore.Type); err != nil {
			return src, spec, err
		}
		if s.Keystore == nil {
			if spec.Profile, err = store.ParseProfile(s.Truststore.Profile); err != nil {
				return src, spec, err
			}
		}
	}
	if s.PEM != nil {
		spec.PEMDir = s.PEM.Dir
	}
	if s.Keystore != nil || s.Truststore != nil {
		if spec.Password, err = ReadPassword(s.PasswordFile, s.PasswordEnv, getenv); err != nil {
			return src, spec, fmt.Errorf("store %s: %w", s.Name, err)
		}
	}
	if s.TruststorePasswordFile != "" {
		if spec.TruststorePassword, err = secret.ReadFile(s.TruststorePasswordFile); err != nil {
			return src, spec, fmt.Errorf("store %s: truststore password: %w", s.Name, err)
		}
	}
	return src, spec, spec.Validate()
}

// ReadPassword reads a password from file, or else from the environment
// variable named envVar. It never takes a password from the command line.
func ReadPassword(file, envVar string, getenv func(string) string) ([]byte, error) {
	if file != "" {
		return secret.ReadFile(file)
	}
	if envVar != "" {
		if v := getenv(envVar); v != "" {
			return []byte(v), nil
		}
		return nil, fmt.Errorf("no password: the environment variable %s is empty or unset", envVar)
	}
	return nil, errors.New("no password: set a password file or an environment variable")
}

// BuildStore loads and validates one store's source, then publishes what
// changed. Failures are logged with their cause (never a secret) and leave
// the outputs as they were.
func BuildStore(log *slog.Logger, name string, src pki.Source, spec store.Spec, now time.Time) (*pki.Material, store.Result, error) {
	m, err := pki.Load(src, now)
	if err != nil {
		log.Error("source invalid: outputs left as they were", "store", name, "source", src.Dir, "error", err.Error())
		return nil, store.Result{}, err
	}
	res, err := store.Publish(m, spec, now)
	if err != nil {
		log.Error("publishing stores failed", "store", name, "error", err.Error(), "written", res.Written)
		return m, res, err
	}
	msg := "stores unchanged"
	if res.Changed() {
		msg = "stores published"
	}
	log.Info(msg, "store", name, "written", res.Written, "unchanged", res.Unchanged,
		"leaf_subject", m.Leaf.Subject.String(), "leaf_serial", pki.SerialHex(m.Leaf),
		"leaf_sha256", pki.Fingerprint(m.Leaf), "leaf_not_after", m.Leaf.NotAfter.UTC(),
		"trusted_cas", len(m.CAs))
	return m, res, nil
}
