package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/cql"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/logging"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/reload"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
	"go.yaml.in/yaml/v3"
)

// The scalar types below parse while the file is decoded, so a typo is an
// error at startup that names its line — never a surprise at the first sync.
// Values may come from ${VAR}, which always expands to a string: each type
// parses its text itself. Error messages never repeat the value, which may
// have come from a secret.

// Duration decodes "500ms", "1m", "20m"; negative durations are refused.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: not a duration (e.g. 500ms, 1m, 20m)", n.Line)
	}
	if v < 0 {
		return fmt.Errorf("line %d: a duration must not be negative", n.Line)
	}
	*d = Duration(v)
	return nil
}

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Int decodes a whole number written plainly or produced by a ${VAR}.
type Int int

func (i *Int) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: not a whole number", n.Line)
	}
	*i = Int(v)
	return nil
}

// Bool decodes true/false written plainly or produced by a ${VAR}.
type Bool bool

func (b *Bool) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseBool(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: not true or false", n.Line)
	}
	*b = Bool(v)
	return nil
}

// Mode decodes an octal permission such as "0600", 0640 or "0o600".
type Mode os.FileMode

func (m *Mode) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseMode(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*m = Mode(v)
	return nil
}

// ParseMode parses an octal permission; the whole text must be octal digits.
func ParseMode(s string) (os.FileMode, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0o"), 8, 32)
	if err != nil || v > 0o777 || s == "" {
		return 0, fmt.Errorf("mode: want an octal permission such as \"0600\"")
	}
	return os.FileMode(v), nil
}

// StoreType is jks or pkcs12 (p12 and pfx are accepted too).
type StoreType store.Type

func (t *StoreType) UnmarshalYAML(n *yaml.Node) error {
	v, err := store.ParseType(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: unknown store type (want jks or pkcs12)", n.Line)
	}
	*t = StoreType(v)
	return nil
}

// Profile is a PKCS#12 profile: modern2023 or legacydes.
type Profile store.Profile

func (p *Profile) UnmarshalYAML(n *yaml.Node) error {
	v, err := store.ParseProfile(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: unknown PKCS#12 profile (want modern2023 or legacydes)", n.Line)
	}
	*p = Profile(v)
	return nil
}

// Require is the wait policy: any, all or quorum.
type Require cql.Policy

func (r *Require) UnmarshalYAML(n *yaml.Node) error {
	v, err := cql.ParsePolicy(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: require: want any, all or quorum", n.Line)
	}
	*r = Require(v)
	return nil
}

// SignalName is a signal such as SIGHUP, TERM or 15.
type SignalName struct{ syscall.Signal }

func (s *SignalName) UnmarshalYAML(n *yaml.Node) error {
	v, err := reload.ParseSignal(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	s.Signal = v
	return nil
}

// LogFormat is json or text; LogLevel is debug, info, warn or error.
type (
	LogFormat string
	LogLevel  string
)

func (f *LogFormat) UnmarshalYAML(n *yaml.Node) error {
	if _, err := logging.New(nil, n.Value, ""); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*f = LogFormat(strings.ToLower(n.Value))
	return nil
}

func (l *LogLevel) UnmarshalYAML(n *yaml.Node) error {
	if _, err := logging.New(nil, "", n.Value); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*l = LogLevel(strings.ToLower(n.Value))
	return nil
}
