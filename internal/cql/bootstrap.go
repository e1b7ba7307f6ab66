package cql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// BootstrapPlan is what init runs once CQL answers: the statements in
// order, then the identity mappings.
type BootstrapPlan struct {
	Statements []string
	Identities []IdentityMapping
}

// IdentityMapping maps a client certificate's identity to a role
// (Cassandra 5.0's certificate authenticators read system_auth.identity_to_role).
type IdentityMapping struct {
	Identity, Role string
	// CreateRole creates the role first: IF NOT EXISTS, LOGIN = true, never SUPERUSER.
	CreateRole bool
}

// Bootstrap runs the plan on a session to hosts. Each statement waits for
// schema agreement, so that a keyspace created here exists on every node
// before the client that needs it starts. Statements must be idempotent (IF
// NOT EXISTS): init runs again on every pod restart; identity mappings are
// idempotent by construction (see MapIdentity).
func (c *Client) Bootstrap(ctx context.Context, hosts []string, plan BootstrapPlan, log *slog.Logger) error {
	if len(plan.Statements) == 0 && len(plan.Identities) == 0 {
		return nil
	}
	s, err := c.Session(ctx, hosts...)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	defer closeWithin(s, 10*time.Second)
	for i, stmt := range plan.Statements {
		start := time.Now()
		if err := s.Query(stmt).ExecContext(ctx); err != nil {
			return fmt.Errorf("bootstrap statement %d (%s): %w", i+1, Summary(stmt), err)
		}
		if err := s.AwaitSchemaAgreement(ctx); err != nil {
			return fmt.Errorf("bootstrap statement %d (%s): schema agreement: %w", i+1, Summary(stmt), err)
		}
		log.Info("bootstrap statement applied", "index", i+1, "statement", Summary(stmt), "duration", time.Since(start).Round(time.Millisecond).String())
	}
	for _, m := range plan.Identities {
		res, err := MapIdentity(ctx, s, m)
		if err != nil {
			return fmt.Errorf("bootstrap identity %s → role %s: %w", m.Identity, m.Role, err)
		}
		log.Info("bootstrap identity", "identity", m.Identity, "role", m.Role, "result", res)
	}
	return nil
}

// ErrSuperuserRole refuses an identity mapping to a role that is, or
// inherits, superuser status.
var ErrSuperuserRole = errors.New("refused: an identity mapped to a superuser role lets any holder of a certificate with that identity act as the cluster's most powerful role without a password (the privilege escalation behind CVE-2026-27314); map it to a role with only the permissions the client needs")

// MapIdentity creates the role if asked, refuses a superuser role, and adds
// the identity only when system_auth.identity_to_role does not have it yet.
// An identity already mapped to another role is an error, never remapped.
// It returns what it did: "added", "unchanged".
func MapIdentity(ctx context.Context, s *gocql.Session, m IdentityMapping) (string, error) {
	if m.CreateRole {
		if err := s.Query("CREATE ROLE IF NOT EXISTS " + literal(m.Role) + " WITH LOGIN = true").ExecContext(ctx); err != nil {
			return "", fmt.Errorf("creating the role: %w", err)
		}
	}
	super, err := superuserVia(ctx, s, m.Role)
	if err != nil {
		return "", err
	}
	if super != "" {
		if super == m.Role {
			return "", fmt.Errorf("role %s is a superuser: %w", m.Role, ErrSuperuserRole)
		}
		return "", fmt.Errorf("role %s is granted superuser role %s: %w", m.Role, super, ErrSuperuserRole)
	}
	var current string
	err = s.Query("SELECT role FROM system_auth.identity_to_role WHERE identity = ?", m.Identity).ScanContext(ctx, &current)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
	case err != nil:
		return "", fmt.Errorf("reading system_auth.identity_to_role (is this Cassandra 5.0 or later?): %w", err)
	case current == m.Role:
		return "unchanged", nil
	default:
		return "", fmt.Errorf("the identity is already mapped to role %s; not remapped (DROP IDENTITY '%s' first if that is intended)", current, m.Identity)
	}
	if err := s.Query("ADD IDENTITY " + literal(m.Identity) + " TO ROLE " + literal(m.Role)).ExecContext(ctx); err != nil {
		return "", fmt.Errorf("ADD IDENTITY: %w", err)
	}
	return "added", nil
}

// superuserVia returns the role that gives role superuser status (itself or
// one it is granted, transitively), or "". A missing role is an error.
func superuserVia(ctx context.Context, s *gocql.Session, role string) (string, error) {
	seen := map[string]bool{}
	queue := []string{role}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		if seen[r] {
			continue
		}
		seen[r] = true
		var super bool
		var memberOf []string
		err := s.Query("SELECT is_superuser, member_of FROM system_auth.roles WHERE role = ?", r).ScanContext(ctx, &super, &memberOf)
		switch {
		case errors.Is(err, gocql.ErrNotFound) && r == role:
			return "", fmt.Errorf("role %s does not exist (set createRole: true, or create it in a bootstrap statement)", role)
		case errors.Is(err, gocql.ErrNotFound):
			continue
		case err != nil:
			return "", fmt.Errorf("reading system_auth.roles: %w", err)
		case super:
			return r, nil
		}
		queue = append(queue, memberOf...)
	}
	return "", nil
}

// literal quotes s as a CQL string literal.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Summary names a statement for logs without its body, which may hold a
// password (CREATE ROLE … WITH PASSWORD = '…').
func Summary(stmt string) string {
	words := strings.Fields(stmt)
	if len(words) > 3 {
		words = words[:3]
	}
	return strings.Join(words, " ") + " …"
}
