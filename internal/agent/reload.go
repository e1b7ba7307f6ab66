package agent

import (
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/reload"
)

// ReloadSteps turns the configured reload actions into runner steps. It
// reads nothing: the actions read their credential files at every call.
func ReloadSteps(rs []config.Reload) []reload.Step {
	var steps []reload.Step
	for _, r := range rs {
		step := reload.Step{Timeout: r.Timeout.D(), Retries: int(*r.Retries), Stores: r.Stores}
		switch {
		case r.Jolokia != nil:
			step.Action = &reload.Jolokia{URL: r.Jolokia.URL, Username: r.Jolokia.Username, PasswordFile: r.Jolokia.PasswordFile}
		case r.Exec != nil:
			step.Action = &reload.Exec{Command: r.Exec.Command}
		case r.Signal != nil:
			step.Action = &reload.Signal{Signal: r.Signal.Signal.Signal, PIDFile: r.Signal.PIDFile, Process: r.Signal.Process}
		case r.HTTP != nil:
			h := r.HTTP
			step.Action = &reload.Webhook{URL: h.URL, Method: h.Method, ExpectedStatus: int(h.ExpectedStatus),
				Username: h.Username, PasswordFile: h.PasswordFile, BearerTokenFile: h.BearerTokenFile}
		}
		steps = append(steps, step)
	}
	return steps
}
