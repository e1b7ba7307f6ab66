package agent

import (
	"fmt"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/reload"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/secret"
)

// ReloadSteps turns the configured reload actions into runner steps.
func ReloadSteps(rs []config.Reload) ([]reload.Step, error) {
	var steps []reload.Step
	for i, r := range rs {
		step := reload.Step{Timeout: r.Timeout.Or(30 * time.Second), Retries: 3, Stores: r.Stores}
		if r.Retries != nil {
			step.Retries = int(*r.Retries)
		}
		switch {
		case r.Jolokia != nil:
			j := &reload.Jolokia{URL: r.Jolokia.URL, Username: r.Jolokia.Username}
			if r.Jolokia.PasswordFile != "" {
				pw, err := secret.ReadFile(r.Jolokia.PasswordFile)
				if err != nil {
					return nil, fmt.Errorf("reload[%d]: %w", i, err)
				}
				j.Password = string(pw)
			}
			step.Action = j
		case r.Exec != nil:
			step.Action = &reload.Exec{Command: r.Exec.Command}
			step.Timeout = r.Exec.Timeout.Or(step.Timeout)
		case r.Signal != nil:
			name := r.Signal.Signal
			if name == "" {
				name = "SIGHUP"
			}
			sig, err := reload.ParseSignal(name)
			if err != nil {
				return nil, fmt.Errorf("reload[%d]: %w", i, err)
			}
			step.Action = &reload.Signal{Signal: sig, PIDFile: r.Signal.PIDFile, Process: r.Signal.Process}
		case r.HTTP != nil:
			step.Action = &reload.Webhook{URL: r.HTTP.URL, Method: r.HTTP.Method, ExpectedStatus: int(r.HTTP.ExpectedStatus)}
		}
		steps = append(steps, step)
	}
	return steps, nil
}
