// Package cli is the agent's command line: it parses flags (each also from
// an environment variable), builds the pieces from internal/ and maps
// outcomes to exit codes. It holds no logic of its own beyond that wiring.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/logging"
)

// Exit codes, as documented in the README.
const (
	ExitOK     = 0
	ExitFailed = 1 // the job failed: invalid input, not ready in time, reload failed
	ExitUsage  = 2 // usage or configuration error
)

// EnvPrefix prefixes the environment variable of every flag.
const EnvPrefix = "CASSANDRA_TLS_AGENT_"

// Env is what a command may touch of the outside world; tests replace it.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Environ        func() []string
	Now            func() time.Time
}

// OSEnv is the real process environment.
func OSEnv() Env {
	return Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Environ: os.Environ, Now: time.Now}
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, env Env) int
}

func commands() []command {
	return []command{
		{"init", "render templates, build stores, wait for CQL, run bootstrap CQL (config file)", runInit},
		{"sidecar", "build stores, watch sources, rebuild, reload Cassandra and verify (config file)", runSidecar},
		{"render", "render a template with secrets from the environment and a secrets directory", runRender},
		{"stores", "build a keystore and truststore from a cert-manager style directory", runStores},
		{"cqlshrc", "write a cqlshrc (and a separate credentials file) for cqlsh over TLS", runCqlshrc},
		{"wait", "wait until CQL answers a query over TLS with the given credentials", runWait},
		{"peers", "show what each peer of a store serves and trusts; exit 1 when they disagree (config file)", runPeers},
		{"inspect", "show what a PEM file, cert-manager directory, JKS or PKCS#12 store holds", runInspect},
		{"certs", "certs self-signed: a key and a self-signed client certificate (managed Cassandra)", runCerts},
		{"version", "print version, commit and Go version", runVersion},
	}
}

// Run executes the command named by args[0] and returns the exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], env)
		}
	}
	fmt.Fprintf(env.Stderr, "cassandra-tls-agent: unknown command %q\n\n", args[0])
	usage(env.Stderr)
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `cassandra-tls-agent prepares and keeps current the TLS material of an Apache
Cassandra pod: keystores from cert-manager PEM files, cassandra.yaml and cqlshrc
with secrets injected, real CQL health checks, and hot reload on rotation.

Usage: cassandra-tls-agent COMMAND [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every flag can also be set from the environment: CASSANDRA_TLS_AGENT_<FLAG>,
upper case, dashes as underscores (--password-file → CASSANDRA_TLS_AGENT_PASSWORD_FILE).
Run 'cassandra-tls-agent COMMAND --help' for a command's flags.
Exit status: 0 success, 1 the job failed, 2 usage or configuration error.
`)
}

// flags wraps a FlagSet with the options every command shares.
type flags struct {
	*flag.FlagSet
	logFormat, logLevel string
	// given holds the flags set on the command line or from the
	// environment: those win over the config file.
	given map[string]bool
}

func newFlags(name, synopsis, description string, env Env) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	f := &flags{FlagSet: fs}
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: cassandra-tls-agent %s %s\n\n%s\n\nFlags (environment variable in brackets):\n", name, synopsis, strings.TrimSpace(description))
		var names []string
		fs.VisitAll(func(fl *flag.Flag) { names = append(names, fl.Name) })
		sort.Strings(names)
		for _, n := range names {
			fl := fs.Lookup(n)
			def := ""
			if fl.DefValue != "" && fl.DefValue != "[]" && fl.DefValue != "false" && fl.DefValue != "0s" {
				def = fmt.Sprintf(" (default %s)", fl.DefValue)
			}
			fmt.Fprintf(w, "  --%s  [%s]\n      %s%s\n", n, envName(n), fl.Usage, def)
		}
	}
	return f
}

func envName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse parses args, then fills every flag not given on the command line
// from its environment variable. It returns an exit code and false when the
// command must stop (help shown or a usage error).
func (f *flags) parse(args []string, env Env) (int, bool) {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, false
		}
		return ExitUsage, false
	}
	f.given = map[string]bool{}
	f.Visit(func(fl *flag.Flag) { f.given[fl.Name] = true })
	var bad []string
	f.VisitAll(func(fl *flag.Flag) {
		if f.given[fl.Name] {
			return
		}
		if v := env.Getenv(envName(fl.Name)); v != "" {
			f.given[fl.Name] = true
			if err := fl.Value.Set(v); err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", envName(fl.Name), err))
			}
		}
	})
	if len(bad) > 0 {
		fmt.Fprintf(env.Stderr, "invalid environment: %s\n", strings.Join(bad, "; "))
		return ExitUsage, false
	}
	return 0, true
}

func (f *flags) logger(env Env) (*slog.Logger, error) {
	return logging.New(env.Stderr, f.logFormat, f.logLevel)
}

// usageError reports a usage problem and returns ExitUsage.
func usageError(env Env, cmd string, format string, a ...any) int {
	fmt.Fprintf(env.Stderr, "cassandra-tls-agent %s: %s\n", cmd, fmt.Sprintf(format, a...))
	return ExitUsage
}

// listFlag is a repeatable flag; each value may also be comma-separated,
// which is how a list arrives from an environment variable.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// modeFlag is a file mode in octal.
type modeFlag os.FileMode

func (m *modeFlag) String() string { return fmt.Sprintf("%#o", os.FileMode(*m)) }
func (m *modeFlag) Set(v string) error {
	var n uint32
	if _, err := fmt.Sscanf(v, "%o", &n); err != nil || n > 0o777 {
		return fmt.Errorf("mode %q: want an octal permission such as 0600", v)
	}
	*m = modeFlag(n)
	return nil
}
