package cli

import (
	"context"

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
	c, code := loadConfig(env, "init", path)
	if c == nil {
		return code
	}
	log, err := logging.New(env.Stderr, pick(f.logFormat, c.Log.Format, "log-format", f), pick(f.logLevel, c.Log.Level, "log-level", f))
	if err != nil {
		return usageError(env, "init", "%v", err)
	}
	if err := agent.Init(ctx, c, agentEnv(env, log)); err != nil {
		log.Error("init failed", "error", err.Error())
		return ExitFailed
	}
	log.Info("init complete")
	return ExitOK
}

func loadConfig(env Env, cmd, path string) (*config.Config, int) {
	if path == "" {
		path = env.Getenv("CASSANDRA_TLS_AGENT_CONFIG")
	}
	if path == "" {
		return nil, usageError(env, cmd, "--config is required")
	}
	c, err := config.Load(path, env.Environ())
	if err != nil {
		return nil, usageError(env, cmd, "%v", err)
	}
	return c, 0
}

// pick prefers a flag set on the command line or in the environment, then
// the config file's value, then the flag's default.
func pick(flagValue, configValue, name string, f *flags) string {
	fl := f.Lookup(name)
	if configValue != "" && flagValue == fl.DefValue {
		return configValue
	}
	return flagValue
}
