package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/atomicfile"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cql"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cqlshrc"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/secret"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

// Env is the process environment the agent reads values from.
type Env struct {
	Environ []string
	Getenv  func(string) string
	Now     func() time.Time
	Log     *slog.Logger
}

// Init runs the init job in order: render templates → build stores →
// cqlshrc → wait for CQL → bootstrap statements. It stops at the first
// failure; every step before it has either completed or left its outputs
// untouched.
func Init(ctx context.Context, c *config.Config, env Env) error {
	for _, t := range c.Templates {
		if err := RenderTemplate(t, env); err != nil {
			return err
		}
	}
	materials := map[string]*pki.Material{}
	for _, s := range c.Stores {
		src, spec, err := StoreSpec(s, env.Getenv)
		if err != nil {
			return err
		}
		m, _, err := BuildStore(env.Log, s.Name, src, spec, env.Now())
		if err != nil {
			return fmt.Errorf("store %s: %w", s.Name, err)
		}
		materials[s.Name] = m
	}
	if c.Cqlshrc != nil {
		if err := WriteCqlshrc(c, env); err != nil {
			return err
		}
	}
	if c.Wait == nil {
		return nil
	}
	client, err := WaitClient(c, materials, env)
	if err != nil {
		return err
	}
	policy, _ := cql.ParsePolicy(c.Wait.Require)
	ready, err := cql.Wait(ctx, client, cql.WaitOptions{
		Hosts: c.Wait.Hosts, Require: policy, Timeout: c.Wait.Timeout.Or(20 * time.Minute),
		ProbeTimeout: c.Wait.ProbeTimeout.Or(10 * time.Second), Log: env.Log,
	})
	if err != nil {
		return err
	}
	env.Log.Info("CQL ready", "hosts", len(ready.Hosts), "attempts", ready.Attempts, "elapsed", ready.Elapsed.Round(time.Millisecond).String())
	if len(c.Bootstrap) == 0 {
		return nil
	}
	var hosts []string
	for h := range ready.Hosts {
		hosts = append(hosts, h)
	}
	return client.Bootstrap(ctx, hosts, c.Bootstrap, env.Log)
}

// RenderTemplate renders one template with the environment plus its
// secrets directory.
func RenderTemplate(t config.Template, env Env) error {
	vars := render.FromEnviron(env.Environ)
	if t.SecretsDir != "" {
		if err := vars.LoadSecretsDir(t.SecretsDir); err != nil {
			return err
		}
	}
	wrote, err := render.File(t.Template, t.Out, vars, render.Format(strings.ToLower(t.Format)), os.FileMode(t.Mode))
	if err != nil {
		return err
	}
	env.Log.Info("template rendered", "template", t.Template, "out", t.Out, "written", wrote)
	return nil
}

// WriteCqlshrc writes cqlshrc and, if credentials are configured, the
// separate 0600 credentials file.
func WriteCqlshrc(c *config.Config, env Env) error {
	q := c.Cqlshrc
	o := cqlshrc.Options{Host: q.Host, Port: int(q.Port), TLSVersion: q.TLSVersion, CredentialsFile: q.CredentialsOut}
	if q.Store != "" {
		s, _ := c.StoreByName(q.Store)
		o.CAFile = filepath.Join(s.PEM.Dir, store.PEMCAFile)
		o.Validate = q.Validate == nil || bool(*q.Validate)
		if q.ClientAuth == nil || *q.ClientAuth {
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
	if err := WriteFileIfChanged(out, rc, 0o600); err != nil {
		return err
	}
	if creds != nil {
		if err := WriteFileIfChanged(o.CredentialsFile, creds, 0o600); err != nil {
			return err
		}
	}
	log.Info("cqlshrc written", "out", out, "credentials", o.CredentialsFile)
	return nil
}

// WaitClient builds the CQL client of the wait section: TLS from the named
// store's material, credentials from files.
func WaitClient(c *config.Config, materials map[string]*pki.Material, env Env) (*cql.Client, error) {
	w := c.Wait
	client := &cql.Client{Log: env.Log}
	if w.Store != "" {
		m := materials[w.Store]
		if m == nil { // wait-only config: the store is read, not built
			s, _ := c.StoreByName(w.Store)
			var err error
			if m, err = pki.Load(pki.Source{Dir: s.Source, TrustBundles: s.TrustBundles}, env.Now()); err != nil {
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

// WriteFileIfChanged writes data atomically unless path already holds it.
func WriteFileIfChanged(path string, data []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	return atomicfile.Write(path, data, mode)
}
