package cli

import (
	"context"
	"errors"
	"log/slog"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/agent"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render"
)

func runRender(ctx context.Context, args []string, env Env) int {
	f := newFlags("render", "--template FILE --out FILE [--secrets-dir DIR]", `
Render a template, replacing ${VAR} and ${VAR:-default} placeholders with
values from the environment and from --secrets-dir: one file per
value, as a mounted Kubernetes Secret; the file name, upper-cased with every
character other than A-Z, 0-9 and _ turned into _, is the variable name
(keystore-password → ${KEYSTORE_PASSWORD}); secrets win over the environment.
Nothing else is a placeholder: any other $ ($$, $NAME, a$b) is left as it is,
and $${ writes a literal ${.

Strict: a placeholder without a non-empty value is an error naming every
missing variable. Each format escapes what placeholders produce so that no
value can change the file's structure, and the result is read back to check:
yaml (.yaml/.yml) substitutes inside the parsed document and quotes every
value (a string unless the template tags it: !!int ${PORT}); properties
(.properties) escapes as java.util.Properties reads; ini (.ini, .cfg,
cqlshrc) doubles % for configparser and refuses line breaks and white space
at a value's ends; text escapes nothing and refuses line breaks, NUL and a
backslash ending a line. Shell scripts are refused (no format escapes shell;
--format text forces it). --out may equal
--template (in-place, e.g. cass-operator's generated cassandra.yaml). The
output is written atomically and only when its content changes.`, env)
	var (
		tmpl, out, secretsDir, format string
		mode                          = modeFlag(0o600)
	)
	f.StringVar(&tmpl, "template", "", "template file")
	f.StringVar(&out, "out", "", "output file (may equal --template)")
	f.StringVar(&secretsDir, "secrets-dir", "", "directory of secret files, one value per file")
	f.StringVar(&format, "format", "", "yaml, properties, ini or text (default by the output's name: .yaml/.yml yaml, .properties properties, .ini/.cfg/cqlshrc ini, others text; shell scripts are refused)")
	f.Var(&mode, "mode", "permission bits of the output, octal")
	if code, ok := f.parse(args, env); !ok {
		return code
	}
	log, err := f.logger(env)
	if err != nil {
		return usageError(env, "render", "%v", err)
	}
	if tmpl == "" || out == "" {
		return usageError(env, "render", "--template and --out are required")
	}
	if _, err := render.ParseFormat(format); err != nil {
		return usageError(env, "render", "--%v", err)
	}
	t := config.Template{Template: tmpl, Out: out, SecretsDir: secretsDir, Format: format, Mode: config.Mode(mode)}
	if err := agent.RenderTemplate(t, agentEnv(env, log)); err != nil {
		var me *render.MissingError
		if errors.As(err, &me) {
			log.Error("template has placeholders without values", "template", tmpl, "missing", me.Names)
		} else {
			log.Error("rendering failed: output left as it was", "template", tmpl, "error", err.Error())
		}
		return ExitFailed
	}
	return ExitOK
}

func agentEnv(env Env, log *slog.Logger) agent.Env {
	return agent.Env{Environ: env.Environ(), Getenv: env.Getenv, Now: env.Now, Log: log}
}
