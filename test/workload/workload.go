// Package workload runs a steady, rate-limited CQL workload against a Cassandra cluster
// through each coordinator separately and records every failed query, so tests can prove
// that a certificate rotation, a reconnect storm or a restart costs no (or only expected)
// failures.
//
// Each coordinator gets its own gocql session pinned to it (a HostFilter plus an initial host
// list of one). Queries alternate writes and reads at each consistency level, with no retries
// and no speculative execution: every failure the cluster produces is seen. A read checks that
// it returns the value its preceding successful write stored at the same level.
package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Options configures Start.
type Options struct {
	// Coordinators are the nodes' CQL addresses (IP addresses, e.g. "127.0.0.11"). Required.
	Coordinators []string
	// Port is the native transport port (9042 when zero).
	Port int
	// Keyspace and Table name a table created by Schema. Required.
	Keyspace, Table string
	// Username and Password log in (PasswordAuthenticator).
	Username, Password string
	// TLS is the client's material, re-read at each handshake. Required (the cluster is TLS-only).
	TLS TLSFiles
	// Consistencies are the levels queried, in turn (QUORUM and ALL when empty).
	Consistencies []gocql.Consistency
	// Rate is the total number of queries per second over all coordinators (20 when zero).
	Rate float64
	// Duration bounds the run (0: until Stop or ctx ends).
	Duration time.Duration
	// QueryTimeout is the client-side limit of one query (10 s when zero: above the server's
	// 2 s write and 5 s read timeouts, so the server's verdict is what gets recorded).
	QueryTimeout time.Duration
	// ConnectTimeout bounds dial + TLS + authentication (5 s when zero).
	ConnectTimeout time.Duration
	// ReconnectInterval is how often a session retries a coordinator it marked down (1 s when zero).
	ReconnectInterval time.Duration
	// Logf receives driver warnings (nil: silent).
	Logf func(format string, args ...any)
}

// Schema returns the CREATE TABLE statement for the table the workload uses.
func Schema(keyspace, table string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (k text PRIMARY KEY, v text)", keyspace, table)
}

// Failure is one failed query.
type Failure struct {
	At          time.Time     // when the query was sent
	Took        time.Duration // until the error came back
	Coordinator string
	Consistency string // "QUORUM", "ALL", ...
	Op          string // "write" or "read"
	Err         string
}

func (f Failure) String() string {
	return fmt.Sprintf("%s %s %s %s after %v: %s", f.At.Format("15:04:05.000"), f.Coordinator, f.Consistency, f.Op,
		f.Took.Round(time.Millisecond), f.Err)
}

// Key selects one coordinator and consistency level.
type Key struct{ Coordinator, Consistency string }

// Counts are queries sent and failed, and how long they took (successes and failures).
type Counts struct {
	Total, Failed int
	Sum, Max      time.Duration
}

// Mean is the mean latency.
func (c Counts) Mean() time.Duration {
	if c.Total == 0 {
		return 0
	}
	return c.Sum / time.Duration(c.Total)
}

// Result is what a run recorded.
type Result struct {
	Start, End time.Time
	Total      int                    // queries sent (a query cut short by Stop is not counted)
	Totals     map[string]int         // per consistency level
	Failed     map[string]int         // failures per consistency level
	Counts     map[Key]Counts         // per coordinator and consistency level
	LastOK     map[Key]time.Time      // when the last successful query of each key was sent
	Failures   []Failure              // in the order they were seen
	TLSLoads   struct{ CA, Cert int } // distinct CA-file and certificate contents loaded
}

// FailuresBetween returns the failures of queries sent in [t0, t1].
func (r Result) FailuresBetween(t0, t1 time.Time) []Failure {
	var out []Failure
	for _, f := range r.Failures {
		if !f.At.Before(t0) && !f.At.After(t1) {
			out = append(out, f)
		}
	}
	return out
}

// FailuresOf returns the failures through coordinator (any when "") at consistency (any when "").
func (r Result) FailuresOf(coordinator, consistency string) []Failure {
	var out []Failure
	for _, f := range r.Failures {
		if (coordinator == "" || f.Coordinator == coordinator) && (consistency == "" || f.Consistency == consistency) {
			out = append(out, f)
		}
	}
	return out
}

// Workload is a running workload.
type Workload struct {
	opts     Options
	tls      *DynamicTLS
	sessions []*gocql.Session
	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once

	mu  sync.Mutex
	res Result
}

// Start opens one session per coordinator (failing when any cannot be opened) and runs the
// workload until opts.Duration passes, ctx ends, or Stop is called.
func Start(ctx context.Context, opts Options) (*Workload, error) {
	if len(opts.Coordinators) == 0 || opts.Keyspace == "" || opts.Table == "" {
		return nil, errors.New("workload: Coordinators, Keyspace and Table are required")
	}
	if opts.Port == 0 {
		opts.Port = 9042
	}
	if len(opts.Consistencies) == 0 {
		opts.Consistencies = []gocql.Consistency{gocql.Quorum, gocql.All}
	}
	if opts.Rate <= 0 {
		opts.Rate = 20
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 10 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.ReconnectInterval <= 0 {
		opts.ReconnectInterval = time.Second
	}
	dyn, err := NewDynamicTLS(opts.TLS)
	if err != nil {
		return nil, err
	}
	w := &Workload{opts: opts, tls: dyn, done: make(chan struct{})}
	for _, c := range opts.Coordinators {
		s, err := Connect(ctx, ConnectOptions{Host: c, Port: opts.Port, Username: opts.Username, Password: opts.Password,
			TLS: dyn, ConnectTimeout: opts.ConnectTimeout, QueryTimeout: opts.QueryTimeout,
			ReconnectInterval: opts.ReconnectInterval, Logf: opts.Logf})
		if err != nil {
			w.closeSessions()
			return nil, fmt.Errorf("workload: session to coordinator %s: %w", c, err)
		}
		w.sessions = append(w.sessions, s)
	}
	runCtx, cancel := context.WithCancel(ctx)
	if opts.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, opts.Duration)
	}
	w.cancel = cancel
	w.res = Result{Start: time.Now(), Totals: map[string]int{}, Failed: map[string]int{}, Counts: map[Key]Counts{},
		LastOK: map[Key]time.Time{}}
	interval := time.Duration(float64(time.Second) * float64(len(opts.Coordinators)) / opts.Rate)
	var wg sync.WaitGroup
	for i, c := range opts.Coordinators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the coordinators over the interval rather than firing together.
			w.run(runCtx, c, w.sessions[i], interval, time.Duration(i)*interval/time.Duration(len(opts.Coordinators)))
		}()
	}
	go func() {
		wg.Wait()
		w.closeSessions()
		w.mu.Lock()
		w.res.End = time.Now()
		w.mu.Unlock()
		close(w.done)
	}()
	return w, nil
}

// closeSessions closes every session, waiting at most 15 s in all: a
// driver's Close that hangs (see Connect) is logged and left behind rather
// than hanging the test until its timeout.
func (w *Workload) closeSessions() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, s := range w.sessions {
			s.Close()
		}
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		if w.opts.Logf != nil {
			w.opts.Logf("workload: gocql Session.Close did not return within 15s; left behind")
		}
	}
}

// run is one coordinator's loop: at each tick the next query of the cycle
// write(CL1), read(CL1), write(CL2), read(CL2), ...
func (w *Workload) run(ctx context.Context, coordinator string, s *gocql.Session, interval, offset time.Duration) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(offset):
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	type written struct{ k, v string }
	last := map[gocql.Consistency]written{}
	seq := 0
	step := 0
	for {
		cl := w.opts.Consistencies[(step/2)%len(w.opts.Consistencies)]
		write := step%2 == 0
		step++
		var (
			op   = "write"
			stmt = fmt.Sprintf("INSERT INTO %s.%s (k, v) VALUES (?, ?)", w.opts.Keyspace, w.opts.Table)
			k    = fmt.Sprintf("%s/%s/%d", coordinator, cl, seq)
			v    = strconv.FormatUint(rand.Uint64(), 36)
		)
		if !write {
			wr, ok := last[cl]
			if !ok {
				continue // nothing written at this level yet: go on to the next write
			}
			op, k, v = "read", wr.k, wr.v
			stmt = fmt.Sprintf("SELECT v FROM %s.%s WHERE k = ?", w.opts.Keyspace, w.opts.Table)
		}
		seq++
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		qctx, cancel := context.WithTimeout(ctx, w.opts.QueryTimeout)
		at := time.Now()
		var err error
		if write {
			err = w.exec(qctx, s, coordinator, cl, stmt, k, v)
		} else {
			err = w.read(qctx, s, coordinator, cl, stmt, k, v)
		}
		took := time.Since(at)
		cancel()
		if err != nil && ctx.Err() != nil {
			return // cut short by Stop or the end of the run: not the cluster's doing
		}
		if err == nil && write {
			last[cl] = written{k, v}
		}
		w.record(Failure{At: at, Took: took, Coordinator: coordinator, Consistency: cl.String(), Op: op}, err)
	}
}

func (w *Workload) exec(ctx context.Context, s *gocql.Session, coordinator string, cl gocql.Consistency, stmt, k, v string) error {
	iter := s.Query(stmt, k, v).Consistency(cl).IterContext(ctx)
	host := iter.Host()
	if err := iter.Close(); err != nil {
		return err
	}
	return checkHost(host, coordinator)
}

func (w *Workload) read(ctx context.Context, s *gocql.Session, coordinator string, cl gocql.Consistency, stmt, k, want string) error {
	iter := s.Query(stmt, k).Consistency(cl).IterContext(ctx)
	host := iter.Host()
	var got string
	found := iter.Scan(&got)
	if err := iter.Close(); err != nil {
		return err
	}
	if err := checkHost(host, coordinator); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("stale read: key %s not found after a successful write at the same level", k)
	}
	if got != want {
		return fmt.Errorf("stale read: key %s = %q, want %q", k, got, want)
	}
	return nil
}

// checkHost makes sure the query ran where it was meant to: a test that blames or clears a
// coordinator must not be fooled by the driver choosing another.
func checkHost(h *gocql.HostInfo, coordinator string) error {
	if h == nil {
		return nil
	}
	if got := h.ConnectAddress().String(); got != coordinator {
		return fmt.Errorf("the query ran on %s, not on its coordinator %s", got, coordinator)
	}
	return nil
}

func (w *Workload) record(f Failure, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := Key{f.Coordinator, f.Consistency}
	c := w.res.Counts[key]
	c.Total++
	c.Sum += f.Took
	c.Max = max(c.Max, f.Took)
	w.res.Total++
	w.res.Totals[f.Consistency]++
	if err != nil {
		c.Failed++
		w.res.Failed[f.Consistency]++
		f.Err = err.Error()
		w.res.Failures = append(w.res.Failures, f)
		if w.opts.Logf != nil {
			w.opts.Logf("workload: failed: %s", f)
		}
	} else {
		w.res.LastOK[key] = f.At
	}
	w.res.Counts[key] = c
}

// Snapshot returns what has been recorded so far (the run goes on).
func (w *Workload) Snapshot() Result {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.res
	r.Totals, r.Failed = cloneMap(w.res.Totals), cloneMap(w.res.Failed)
	r.Counts, r.LastOK = cloneMap(w.res.Counts), cloneMap(w.res.LastOK)
	r.Failures = slices.Clone(w.res.Failures)
	r.TLSLoads.CA, r.TLSLoads.Cert = w.tls.Loads()
	return r
}

// FailuresBetween returns the failures so far of queries sent in [t0, t1].
func (w *Workload) FailuresBetween(t0, t1 time.Time) []Failure {
	return w.Snapshot().FailuresBetween(t0, t1)
}

// Done is closed when the run has ended (Duration passed, ctx ended, or Stop).
func (w *Workload) Done() <-chan struct{} { return w.done }

// Wait waits for the run to end by itself (Duration or ctx) and returns the result.
func (w *Workload) Wait() Result {
	<-w.done
	return w.Snapshot()
}

// Stop ends the run, waits for the in-flight queries to be cut short, closes the sessions and
// returns the result. It may be called more than once.
func (w *Workload) Stop() Result {
	w.stopOnce.Do(w.cancel)
	<-w.done
	return w.Snapshot()
}

// TLS is the workload's client TLS material (e.g. to check Loads after a rotation).
func (w *Workload) TLS() *DynamicTLS { return w.tls }

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Summary is a one-line-per-key account of r, for logs.
func (r Result) Summary() string {
	keys := make([]Key, 0, len(r.Counts))
	for k := range r.Counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Coordinator != keys[j].Coordinator {
			return keys[i].Coordinator < keys[j].Coordinator
		}
		return keys[i].Consistency < keys[j].Consistency
	})
	s := fmt.Sprintf("%d queries in %v, %d failed", r.Total, r.End.Sub(r.Start).Round(time.Millisecond), len(r.Failures))
	for _, k := range keys {
		c := r.Counts[k]
		s += fmt.Sprintf("\n  %-12s %-7s %4d sent %4d failed, latency mean %v max %v", k.Coordinator, k.Consistency,
			c.Total, c.Failed, c.Mean().Round(100*time.Microsecond), c.Max.Round(100*time.Microsecond))
	}
	return s
}

// ConnectOptions configures Connect.
type ConnectOptions struct {
	Host               string // the one node to use (an IP address)
	Port               int    // 9042 when zero
	Username, Password string
	TLS                *DynamicTLS // required
	Keyspace           string
	// Consistency is the session's default level; the zero value (ANY) means QUORUM.
	Consistency                                     gocql.Consistency
	ConnectTimeout, QueryTimeout, ReconnectInterval time.Duration
	Logf                                            func(format string, args ...any)
}

// Connect opens a gocql session that only ever uses Host as coordinator: the initial host list
// and a HostFilter both hold just that address. No retries (the driver's default with a nil
// RetryPolicy); the session re-dials Host every ReconnectInterval while it is down.
func Connect(ctx context.Context, o ConnectOptions) (*gocql.Session, error) {
	if o.TLS == nil {
		return nil, errors.New("workload: Connect needs TLS")
	}
	if net.ParseIP(o.Host) == nil {
		return nil, fmt.Errorf("workload: coordinator %q is not an IP address", o.Host)
	}
	if o.Port == 0 {
		o.Port = 9042
	}
	cl := gocql.NewCluster(o.Host)
	cl.Port = o.Port
	cl.HostFilter = gocql.WhiteListHostFilter(o.Host)
	cl.HostDialer = o.TLS.HostDialer(orDefault(o.ConnectTimeout, 5*time.Second))
	cl.ProtoVersion = 4 // Cassandra 3.11–5.0; skips version discovery
	cl.NumConns = 1
	cl.RetryPolicy = nil
	cl.Consistency = gocql.Quorum
	if o.Consistency != gocql.Any {
		cl.Consistency = o.Consistency
	}
	cl.Keyspace = o.Keyspace
	cl.ConnectTimeout = orDefault(o.ConnectTimeout, 5*time.Second)
	cl.Timeout = orDefault(o.QueryTimeout, 10*time.Second)
	cl.ReconnectInterval = orDefault(o.ReconnectInterval, time.Second)
	cl.ReconnectionPolicy = &gocql.ConstantReconnectionPolicy{MaxRetries: 3, Interval: 500 * time.Millisecond}
	// No schema metadata: the workload never reads it, and gocql v2.1.2's
	// control connection, reconnecting after a node restart, can wait
	// forever in its schema refresh — and Session.Close then waits for it
	// (a 60-minute CI hang in TestRestartNode2's workload Stop).
	cl.Metadata.CacheMode = gocql.Disabled
	if o.Username != "" {
		cl.Authenticator = gocql.PasswordAuthenticator{Username: o.Username, Password: o.Password}
	}
	if o.Logf != nil {
		cl.Logger = logger{o.Logf}
	}
	type result struct {
		s   *gocql.Session
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := cl.CreateSession()
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("workload: connecting to %s: %w", net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), r.err)
		}
		return r.s, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.s != nil {
				r.s.Close()
			}
		}()
		return nil, fmt.Errorf("workload: connecting to %s: %w", o.Host, ctx.Err())
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// logger passes the driver's warnings and errors to Logf.
type logger struct{ logf func(string, ...any) }

func (l logger) Error(msg string, fields ...gocql.LogField) {
	l.logf("gocql error: %s %v", msg, fields)
}
func (l logger) Warning(msg string, fields ...gocql.LogField) {
	l.logf("gocql warning: %s %v", msg, fields)
}
func (l logger) Info(string, ...gocql.LogField)  {}
func (l logger) Debug(string, ...gocql.LogField) {}
