package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/atomicfile"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cql"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cqlshrc"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/secret"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

// WriteCqlshrc writes cqlshrc and, if credentials are configured, the
// separate 0600 credentials file.
func WriteCqlshrc(c *config.Config, env Env) error {
	q := c.Cqlshrc
	o := cqlshrc.Options{Host: q.Host, Port: int(q.Port), TLSVersion: q.TLSVersion, CredentialsFile: q.CredentialsOut,
		CertificateAuth: bool(q.CertificateAuth)}
	if s := c.StoreByName(q.Store); s != nil {
		o.CAFile = filepath.Join(s.PEM.Dir, store.PEMCAFile)
		o.Validate = bool(*q.Validate)
		if *q.ClientAuth {
			o.CertFile = filepath.Join(s.PEM.Dir, store.PEMCertFile)
			o.KeyFile = filepath.Join(s.PEM.Dir, store.PEMKeyFile)
		}
	}
	var user string
	var pw []byte
	if q.PasswordFile != "" {
		var err error
		if user, err = username(q.Username, q.UsernameFile); err != nil {
			return fmt.Errorf("cqlshrc: %w", err)
		}
		if pw, err = secret.ReadFile(q.PasswordFile); err != nil {
			return fmt.Errorf("cqlshrc: %w", err)
		}
	} else {
		o.CredentialsFile = ""
	}
	return WriteCqlshrcFiles(o, q.Out, user, pw, env.Log)
}

// WriteCqlshrcFiles renders cqlshrc to out and, when a password is given,
// the credentials file o.CredentialsFile; both 0600, both validated before
// either is written.
func WriteCqlshrcFiles(o cqlshrc.Options, out, user string, pw []byte, log *slog.Logger) error {
	rc, err := cqlshrc.Render(o)
	if err != nil {
		return err
	}
	var creds []byte
	if pw != nil {
		if creds, err = cqlshrc.Credentials(user, pw); err != nil {
			return err
		}
	}
	if _, err := atomicfile.WriteIfChanged(out, rc, 0o600); err != nil {
		return err
	}
	if creds != nil {
		if _, err := atomicfile.WriteIfChanged(o.CredentialsFile, creds, 0o600); err != nil {
			return err
		}
	}
	log.Info("cqlshrc written", "out", out, "credentials", o.CredentialsFile)
	return nil
}

// WaitClient builds the CQL client of the wait section: TLS from the named
// store's material (read from its source when no build has happened, as in
// a wait-only config), credentials from files.
func WaitClient(c *config.Config, materials map[string]*pki.Material, env Env) (*cql.Client, error) {
	w := c.Wait
	client := &cql.Client{Log: env.Log}
	if s := c.StoreByName(w.Store); s != nil {
		m := materials[w.Store]
		if m == nil {
			var err error
			if m, err = pki.Load(s.PKISource(), env.Now()); err != nil {
				return nil, fmt.Errorf("wait: %w", err)
			}
		}
		client.TLS = cql.MaterialTLS(m, w.ServerName)
	}
	if w.PasswordFile != "" {
		var err error
		if client.Username, err = username(w.Username, w.UsernameFile); err != nil {
			return nil, fmt.Errorf("wait: %w", err)
		}
		if client.Password, err = secret.ReadFile(w.PasswordFile); err != nil {
			return nil, fmt.Errorf("wait: %w", err)
		}
	}
	return client, nil
}

func username(literal, file string) (string, error) {
	if file != "" {
		u, err := secret.ReadFile(file)
		return string(u), err
	}
	if literal == "" {
		return "", errors.New("a username (or usernameFile) is required with a passwordFile")
	}
	return literal, nil
}
