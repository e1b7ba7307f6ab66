package cli

import (
	"context"
	"log/slog"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/agent"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/logging"
)

func runInit(ctx context.Context, args []string, env Env) int {
	f := newFlags("init", "--config FILE", `
Prepare a pod, in order: render every template with its secrets; build every
store (validated, atomic, skipped when unchanged); write cqlshrc and its
credentials file; wait until CQL answers over real TLS and credentials; run the
idempotent bootstrap statements and wait for schema agreement. Exits 0 when all
configured steps succeeded, 1 at the first that failed (outputs of a failed
step are left as they were), 2 for a configuration error.
See the README for the configuration file's reference.`, env)
	var path string
	f.StringVar(&path, "config", "", "configuration file (YAML)")
	if code, ok := f.parse(args, env); !ok {
		return code
	}
	c, log, code := f.loadConfig(env, "init", path)
	if c == nil {
		return code
	}
	if err := agent.Init(ctx, c, agentEnv(env, log)); err != nil {
		log.Error("init failed", "error", err.Error())
		return ExitFailed
	}
	log.Info("init complete")
	return ExitOK
}

// loadConfig loads the config file (from --config or the environment) and
// builds the logger: flags set on the command line or in the environment win
// over the file's log section, which wins over the flag defaults.
func (f *flags) loadConfig(env Env, cmd, path string) (*config.Config, *slog.Logger, int) {
	if path == "" {
		path = env.Getenv("CASSANDRA_TLS_AGENT_CONFIG")
	}
	if path == "" {
		return nil, nil, usageError(env, cmd, "--config is required")
	}
	c, err := config.Load(path, env.Environ())
	if err != nil {
		return nil, nil, usageError(env, cmd, "%v", err)
	}
	format, level := f.logFormat, f.logLevel
	if c.Log.Format != "" && !f.given["log-format"] {
		format = string(c.Log.Format)
	}
	if c.Log.Level != "" && !f.given["log-level"] {
		level = string(c.Log.Level)
	}
	log, err := logging.New(env.Stderr, format, level)
	if err != nil {
		return nil, nil, usageError(env, cmd, "%v", err)
	}
	return c, log, 0
}
