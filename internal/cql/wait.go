package cql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
)

// Policy says how many hosts must answer.
type Policy string

const (
	Any    Policy = "any"
	All    Policy = "all"
	Quorum Policy = "quorum" // a majority of the listed hosts
)

// ParsePolicy accepts "" as Any.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(strings.ToLower(s)); p {
	case "":
		return Any, nil
	case Any, All, Quorum:
		return p, nil
	}
	return "", fmt.Errorf("readiness policy %q: want any, all or quorum", s)
}

func (p Policy) needed(n int) int {
	switch p {
	case All:
		return n
	case Quorum:
		return n/2 + 1
	}
	return 1
}

// Prober is what Wait needs of a Client; tests substitute faults.
type Prober interface {
	Probe(ctx context.Context, host string) (string, error)
}

// WaitOptions shape a wait.
type WaitOptions struct {
	Hosts   []string
	Require Policy
	// Timeout is the deadline for the whole wait; 0 means only ctx bounds it.
	Timeout time.Duration
	// InitialBackoff and MaxBackoff bound the pause between rounds. The cap
	// is low on purpose: readiness should be noticed within a second.
	InitialBackoff, MaxBackoff time.Duration
	// ProbeTimeout bounds one probe of one host.
	ProbeTimeout time.Duration
	Log          *slog.Logger
	// Now and Sleep are injectable for tests.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Ready is the outcome of a successful wait.
type Ready struct {
	Hosts    map[string]string // host → release_version, for the hosts that answered
	Attempts int
	Elapsed  time.Duration
}

// Wait probes the hosts in rounds until the policy is met, the deadline
// passes or ctx ends. Every failed probe is logged with the attempt, the
// elapsed time and its cause in plain words; the final error names the last
// cause of every host that did not answer.
func Wait(ctx context.Context, p Prober, o WaitOptions) (*Ready, error) {
	if len(o.Hosts) == 0 {
		return nil, errors.New("no hosts to wait for")
	}
	o = o.withDefaults()
	start := o.Now()
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	need := o.Require.needed(len(o.Hosts))
	ready := map[string]string{}
	lastErr := map[string]error{}
	lastCause, lastLog := map[string]string{}, map[string]time.Time{}
	backoff := o.InitialBackoff
	for attempt := 1; ; attempt++ {
		var pending []string
		for _, h := range o.Hosts {
			if _, ok := ready[h]; !ok {
				pending = append(pending, h)
			}
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, h := range pending {
			wg.Add(1)
			go func(h string) {
				defer wg.Done()
				pctx, cancel := context.WithTimeout(ctx, o.ProbeTimeout)
				v, err := p.Probe(pctx, h)
				cancel()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					// An attempt cut short by the wait's own deadline says
					// only "timeout": keep the cause the host gave before.
					if ctx.Err() == nil || lastErr[h] == nil {
						lastErr[h] = err
					}
					// Every attempt is logged when its cause changes, else at
					// most every 5 s per host: a refused port is retried ten
					// times a second.
					level, cause := slog.LevelDebug, Classify(err)
					if cause != lastCause[h] || o.Now().Sub(lastLog[h]) >= 5*time.Second {
						level, lastCause[h], lastLog[h] = slog.LevelInfo, cause, o.Now()
					}
					o.Log.Log(ctx, level, "CQL not ready", "host", h, "attempt", attempt,
						"elapsed", o.Now().Sub(start).Round(time.Millisecond).String(), "cause", cause, "error", err.Error())
					return
				}
				ready[h] = v
				delete(lastErr, h)
				o.Log.Info("CQL answered", "host", h, "attempt", attempt, "elapsed", o.Now().Sub(start).Round(time.Millisecond).String(), "release_version", v)
			}(h)
		}
		wg.Wait()
		if len(ready) >= need {
			return &Ready{Hosts: ready, Attempts: attempt, Elapsed: o.Now().Sub(start)}, nil
		}
		// Jitter keeps a fleet of init containers from probing in step.
		pause := time.Duration(rand.Int64N(int64(backoff))) + backoff/2
		if err := o.Sleep(ctx, pause); err != nil {
			return nil, &NotReadyError{Need: need, Policy: o.Require, Ready: len(ready), Total: len(o.Hosts),
				Elapsed: o.Now().Sub(start), Attempts: attempt, Causes: lastErr}
		}
		// A refused connection costs the server nothing and means "not
		// listening yet": keep polling at the initial pace so the moment the
		// port opens is caught. Anything else (TLS, auth, timeouts) backs off.
		if allRefused(lastErr) {
			backoff = o.InitialBackoff
		} else {
			backoff = min(backoff*2, o.MaxBackoff)
		}
	}
}

func allRefused(errs map[string]error) bool {
	for _, err := range errs {
		if !strings.HasPrefix(Classify(err), "connection refused") {
			return false
		}
	}
	return len(errs) > 0
}

func (o WaitOptions) withDefaults() WaitOptions {
	if o.Require == "" {
		o.Require = Any
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 500 * time.Millisecond
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return o
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NotReadyError reports a wait that ended before the policy was met.
type NotReadyError struct {
	Need, Ready, Total, Attempts int
	Policy                       Policy
	Elapsed                      time.Duration
	Causes                       map[string]error
}

func (e *NotReadyError) Error() string {
	hosts := make([]string, 0, len(e.Causes))
	for h := range e.Causes {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var parts []string
	for _, h := range hosts {
		parts = append(parts, fmt.Sprintf("%s: %s", h, Classify(e.Causes[h])))
	}
	return fmt.Sprintf("CQL not ready after %s and %d attempts: %d of %d hosts answered, policy %q needs %d; last causes: %s",
		e.Elapsed.Round(time.Millisecond), e.Attempts, e.Ready, e.Total, e.Policy, e.Need, strings.Join(parts, "; "))
}
