package agent

import (
	"errors"
	"fmt"
	"os"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/secret"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

// StoreSpec resolves a validated store configuration into where its
// material comes from and what to write, reading its passwords. A password
// that cannot be read is a source error with reason "password".
func StoreSpec(s config.Store, getenv func(string) string) (pki.Source, store.Spec, error) {
	src := s.PKISource()
	spec := store.Spec{Mode: os.FileMode(s.Mode)}
	if s.Keystore != nil {
		spec.Keystore, spec.Alias = s.Keystore.Path, s.Keystore.Alias
		spec.KeystoreType, spec.Profile = store.Type(s.Keystore.Type), store.Profile(s.Keystore.Profile)
	}
	if s.Truststore != nil {
		spec.Truststore, spec.TruststoreType = s.Truststore.Path, store.Type(s.Truststore.Type)
		if s.Keystore == nil {
			spec.Profile = store.Profile(s.Truststore.Profile)
		}
	}
	if s.PEM != nil {
		spec.PEMDir = s.PEM.Dir
	}
	var err error
	if s.Keystore != nil || s.Truststore != nil {
		if spec.Password, err = ReadPassword(s.PasswordFile, s.PasswordEnv, getenv); err != nil {
			return src, spec, passwordError(fmt.Errorf("store %s: %w", s.Name, err))
		}
	}
	if s.TruststorePasswordFile != "" {
		if spec.TruststorePassword, err = secret.ReadFile(s.TruststorePasswordFile); err != nil {
			return src, spec, passwordError(fmt.Errorf("store %s: truststore password: %w", s.Name, err))
		}
	}
	return src, spec, nil
}

func passwordError(err error) error {
	return &pki.SourceError{Reason: pki.ReasonPassword, Err: err}
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
