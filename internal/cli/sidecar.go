package cli

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/agent"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/version"
)

func runSidecar(ctx context.Context, args []string, env Env) int {
	f := newFlags("sidecar", "--config FILE [--once]", `
Keep the stores current while Cassandra runs. Build every store, then watch its
source directories (kubelet ..data swaps, re-created directories, missed events
via a periodic resync by content hash; polling where inotify is unavailable).
On each change: validate → rebuild → atomic swap (truststore first) → reload
actions in order (jolokia, exec, signal, http) → dial the verify endpoints
until they serve the new leaf. A change that fails validation leaves the stores
as they were, is logged and counted, and turns /readyz unready until a good
change arrives. A changed store password is not hot-reloaded (Cassandra keeps
the passwords it started with): the sidecar publishes, warns and reports
restart_required. Serves /metrics, /healthz and /readyz on http.listen.

--once builds, runs the reload actions and verifies once, then exits 0 when
everything succeeded and 1 otherwise.`, env)
	var (
		path   string
		once   bool
		listen string
	)
	f.StringVar(&path, "config", "", "configuration file (YAML)")
	f.BoolVar(&once, "once", false, "build, reload and verify once, then exit")
	f.StringVar(&listen, "listen", "", "address for /metrics, /healthz, /readyz (overrides http.listen; default "+config.DefaultListen+")")
	if code, ok := f.parse(args, env); !ok {
		return code
	}
	c, log, code := f.loadConfig(env, "sidecar", path)
	if c == nil {
		return code
	}
	m := metrics.New(version.Version, version.GoVersion())
	s, err := agent.NewSidecar(c, agentEnv(env, log), m)
	if err != nil {
		return usageError(env, "sidecar", "%v", err)
	}
	if once {
		if err := s.Once(ctx); err != nil {
			log.Error("sidecar --once failed", "error", err.Error())
			return ExitFailed
		}
		log.Info("sidecar --once complete")
		return ExitOK
	}
	if listen == "" {
		listen = c.HTTP.Listen
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return usageError(env, "sidecar", "listen %s: %v", listen, err)
	}
	srv := &http.Server{Handler: s.Handler(m.Registry.Handler()), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server failed", "error", err.Error())
		}
	}()
	log.Info("serving metrics and health", "address", ln.Addr().String())
	err = s.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	if err != nil {
		log.Error("sidecar stopped", "error", err.Error())
		return ExitFailed
	}
	log.Info("sidecar stopped")
	return ExitOK
}
