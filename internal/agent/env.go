package agent

import (
	"log/slog"
	"time"
)

// Env is the process environment the agent reads values from.
type Env struct {
	Environ []string
	Getenv  func(string) string
	Now     func() time.Time
	Log     *slog.Logger
}
