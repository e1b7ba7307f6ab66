package cql

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Bootstrap runs statements in order on a session to hosts, waiting for
// schema agreement after each, so that a keyspace created here exists on
// every node before the client that needs it starts. Statements must be
// idempotent (IF NOT EXISTS): init runs again on every pod restart.
func (c *Client) Bootstrap(ctx context.Context, hosts []string, statements []string, log *slog.Logger) error {
	if len(statements) == 0 {
		return nil
	}
	s, err := c.Session(ctx, hosts...)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	defer s.Close()
	for i, stmt := range statements {
		start := time.Now()
		if err := s.Query(stmt).ExecContext(ctx); err != nil {
			return fmt.Errorf("bootstrap statement %d (%s): %w", i+1, Summary(stmt), err)
		}
		if err := s.AwaitSchemaAgreement(ctx); err != nil {
			return fmt.Errorf("bootstrap statement %d (%s): schema agreement: %w", i+1, Summary(stmt), err)
		}
		log.Info("bootstrap statement applied", "index", i+1, "statement", Summary(stmt), "duration", time.Since(start).Round(time.Millisecond).String())
	}
	return nil
}

// Summary names a statement for logs without its body, which may hold a
// password (CREATE ROLE … WITH PASSWORD = '…').
func Summary(stmt string) string {
	words := strings.Fields(stmt)
	if len(words) > 3 {
		words = words[:3]
	}
	return strings.Join(words, " ") + " …"
}
