package config

import (
	"syscall"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

// Defaults, in one place. The command-line flags of the one-shot commands
// use the same values.
const (
	DefaultDebounce       = 500 * time.Millisecond
	DefaultResync         = time.Minute
	DefaultWaitTimeout    = 20 * time.Minute
	DefaultProbeTimeout   = 10 * time.Second
	DefaultVerifyDeadline = time.Minute
	DefaultReloadTimeout  = 30 * time.Second
	DefaultReloadRetries  = 3
	DefaultListen         = ":9180"
	DefaultMode           = 0o600
	DefaultMaxHold        = 72 * time.Hour
	DefaultProbeInterval  = 2 * time.Second
	DefaultStoragePort    = 7000
)

// applyDefaults fills every unset value. It runs after decoding and before
// validation, so validation sees what the agent will use.
func (c *Config) applyDefaults() {
	for i := range c.Stores {
		s := &c.Stores[i]
		if s.Mode == 0 {
			s.Mode = DefaultMode
		}
		if s.Source != "" {
			if s.Files == nil {
				s.Files = &SourceFiles{}
			}
			f := s.Files
			for _, d := range []struct {
				name *string
				def  string
			}{{&f.Cert, pki.CertFile}, {&f.Key, pki.KeyFile}, {&f.CA, pki.CAFile}} {
				if *d.name == "" {
					*d.name = d.def
				}
			}
		}
		if r := s.Rotation; r != nil {
			if r.MaxHold == 0 {
				r.MaxHold = Duration(DefaultMaxHold)
			}
			if r.ProbeInterval == 0 {
				r.ProbeInterval = Duration(DefaultProbeInterval)
			}
			if r.Peers.StoragePort == 0 {
				r.Peers.StoragePort = DefaultStoragePort
			}
			if r.Peers.Jolokia == "" && len(r.Peers.Static) == 0 && r.Peers.DNS == "" {
				for _, a := range c.Reload {
					if a.Jolokia != nil {
						r.Peers.Jolokia = a.Jolokia.URL
						if r.Peers.JolokiaUsername == "" && r.Peers.JolokiaPasswordFile == "" {
							r.Peers.JolokiaUsername, r.Peers.JolokiaPasswordFile = a.Jolokia.Username, a.Jolokia.PasswordFile
						}
						break
					}
				}
			}
		}
	}
	for i := range c.Templates {
		if c.Templates[i].Mode == 0 {
			c.Templates[i].Mode = DefaultMode
		}
	}
	if q := c.Cqlshrc; q != nil {
		yes := Bool(true)
		if q.Validate == nil {
			q.Validate = &yes
		}
		if q.ClientAuth == nil {
			q.ClientAuth = &yes
		}
	}
	if w := c.Wait; w != nil {
		if w.Require == "" {
			w.Require = "any"
		}
		if w.Timeout == 0 {
			w.Timeout = Duration(DefaultWaitTimeout)
		}
		if w.ProbeTimeout == 0 {
			w.ProbeTimeout = Duration(DefaultProbeTimeout)
		}
	}
	if c.Watch.Debounce == 0 {
		c.Watch.Debounce = Duration(DefaultDebounce)
	}
	if c.Watch.Resync == 0 {
		c.Watch.Resync = Duration(DefaultResync)
	}
	for i := range c.Reload {
		r := &c.Reload[i]
		if r.Exec != nil && r.Exec.Timeout != 0 {
			r.Timeout = r.Exec.Timeout
		}
		if r.Timeout == 0 {
			r.Timeout = Duration(DefaultReloadTimeout)
		}
		if r.Signal != nil && r.Signal.Signal == nil {
			r.Signal.Signal = &SignalName{syscall.SIGHUP}
		}
		if r.Retries == nil {
			n := Int(DefaultReloadRetries)
			r.Retries = &n
		}
	}
	if v := c.Verify; v != nil {
		if v.Deadline == 0 {
			v.Deadline = Duration(DefaultVerifyDeadline)
		}
		for i := range v.Endpoints {
			e := &v.Endpoints[i]
			if e.Store == "" {
				e.Store = v.Store
			}
			if e.Store == "" && len(c.Stores) == 1 {
				e.Store = c.Stores[0].Name
			}
		}
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultListen
	}
}
