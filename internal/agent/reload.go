package agent

import (
	"fmt"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/reload"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/secret"
)

// ReloadSteps turns the configured reload actions into runner steps. The
// only error is an unreadable Jolokia password file.
func ReloadSteps(rs []config.Reload) ([]reload.Step, error) {
	var steps []reload.Step
	for i, r := range rs {
		step := reload.Step{Timeout: r.Timeout.D(), Retries: int(*r.Retries), Stores: r.Stores}
		switch {
		case r.Jolokia != nil:
			j := &reload.Jolokia{URL: r.Jolokia.URL, Username: r.Jolokia.Username}
			if r.Jolokia.PasswordFile != "" {
				pw, err := secret.ReadFile(r.Jolokia.PasswordFile)
				if err != nil {
					return nil, fmt.Errorf("reload[%d].jolokia.passwordFile: %w", i, err)
				}
				j.Password = string(pw)
			}
			step.Action = j
		case r.Exec != nil:
			step.Action = &reload.Exec{Command: r.Exec.Command}
		case r.Signal != nil:
			step.Action = &reload.Signal{Signal: r.Signal.Signal.Signal, PIDFile: r.Signal.PIDFile, Process: r.Signal.Process}
		case r.HTTP != nil:
			step.Action = &reload.Webhook{URL: r.HTTP.URL, Method: r.HTTP.Method, ExpectedStatus: int(r.HTTP.ExpectedStatus)}
		}
		steps = append(steps, step)
	}
	return steps, nil
}
