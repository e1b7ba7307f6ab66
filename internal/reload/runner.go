package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics"
)

// Step is an action with its policy.
type Step struct {
	Action  Action
	Timeout time.Duration // per try (default 30s)
	Retries int           // after the first try
	// Stores limits the step to changes of these stores; empty means all.
	Stores []string
}

// Runner runs steps in order.
type Runner struct {
	Steps   []Step
	Metrics *metrics.Metrics // may be nil
	Log     *slog.Logger
	// Backoff before the first retry (default 500ms), doubled per retry.
	Backoff time.Duration
}

// Run runs every step that applies to store, in order. A failed step does
// not stop the next one (a jolokia failure may be covered by exec); the
// returned error joins every step that failed after its retries.
func (r *Runner) Run(ctx context.Context, store string) error {
	var errs []error
	for _, s := range r.Steps {
		if len(s.Stores) > 0 && !slices.Contains(s.Stores, store) {
			continue
		}
		if err := r.runStep(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Action.Name(), err))
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) runStep(ctx context.Context, s Step) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	backoff := r.Backoff
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	start := time.Now()
	var err error
	for try := 0; try <= s.Retries; try++ {
		if try > 0 {
			pause := backoff/2 + time.Duration(rand.Int64N(int64(backoff)))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
			backoff *= 2
		}
		tctx, cancel := context.WithTimeout(ctx, timeout)
		err = runSafely(tctx, s.Action)
		cancel()
		if err == nil {
			break
		}
		r.Log.Warn("reload action failed", "action", s.Action.Name(), "try", try+1, "of", s.Retries+1, "error", err.Error())
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	if r.Metrics != nil {
		r.Metrics.Reloads.WithLabelValues(s.Action.Name(), result).Inc()
		metrics.Since(r.Metrics.ReloadDuration.WithLabelValues(s.Action.Name()), start)
	}
	if err == nil {
		r.Log.Info("reload action succeeded", "action", s.Action.Name(), "duration", time.Since(start).Round(time.Millisecond).String())
	}
	return err
}

// runSafely turns a panicking action into an error: a reload must never
// bring the sidecar down.
func runSafely(ctx context.Context, a Action) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("action panicked: %v", p)
		}
	}()
	return a.Run(ctx)
}
