package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cql"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

// Init runs the init job in order: render templates → build stores →
// cqlshrc → wait for CQL → bootstrap statements. c must come from
// config.Load. It stops at the first failure; every step before it has
// either completed or left its outputs untouched.
func Init(ctx context.Context, c *config.Config, env Env) error {
	for _, t := range c.Templates {
		if err := RenderTemplate(t, env); err != nil {
			return err
		}
	}
	materials := map[string]*pki.Material{}
	for _, s := range c.Stores {
		m, err := BuildStore(s, env)
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
	ready, err := cql.Wait(ctx, client, cql.WaitOptions{
		Hosts: c.Wait.Hosts, Require: cql.Policy(c.Wait.Require), Timeout: c.Wait.Timeout.D(),
		ProbeTimeout: c.Wait.ProbeTimeout.D(), Log: env.Log,
	})
	if err != nil {
		return err
	}
	env.Log.Info("CQL ready", "hosts", len(ready.Hosts), "attempts", ready.Attempts, "elapsed", ready.Elapsed.Round(time.Millisecond).String())
	if c.Bootstrap.Empty() {
		return nil
	}
	var hosts []string
	for h := range ready.Hosts {
		hosts = append(hosts, h)
	}
	ids := make([]cql.IdentityMapping, 0, len(c.Bootstrap.Identities))
	for _, id := range c.Bootstrap.Identities {
		ids = append(ids, cql.IdentityMapping{Identity: id.Identity, Role: id.Role, CreateRole: bool(id.CreateRole)})
	}
	return client.Bootstrap(ctx, hosts, cql.BootstrapPlan{Statements: c.Bootstrap.Statements, Identities: ids}, env.Log)
}

// BuildStore validates one store's source and publishes what changed.
// Failures are logged with their cause (never a secret) and leave the
// outputs as they were.
func BuildStore(s config.Store, env Env) (*pki.Material, error) {
	src, spec, err := StoreSpec(s, env.Getenv)
	if err != nil {
		return nil, err
	}
	return Build(s.Name, src, spec, env)
}

// Build validates src and publishes spec's outputs (see BuildStore).
func Build(name string, src pki.Source, spec store.Spec, env Env) (*pki.Material, error) {
	if err := spec.Validate(); err != nil {
		env.Log.Error("store refused: nothing written", "store", name, "error", err.Error())
		return nil, err
	}
	m, err := pki.Load(src, env.Now())
	if err != nil {
		env.Log.Error("source refused: outputs left as they were", "store", name, "source", src.String(),
			"reason", string(pki.ReasonOf(err)), "error", err.Error())
		return nil, err
	}
	res, err := store.Publish(m, spec, env.Now())
	if err != nil {
		env.Log.Error("writing an output failed", "store", name, "error", err.Error(), "written", res.Written)
		return nil, err
	}
	logPublished(env, name, m, res, slog.LevelInfo)
	return m, nil
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
