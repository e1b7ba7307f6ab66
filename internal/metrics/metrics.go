// Package metrics defines the agent's Prometheus metrics. Their names and
// labels are a public interface — dashboards and alerts depend on them — and
// no label ever carries a secret.
package metrics

import (
	"crypto/x509"
	"time"
)

const ns = "cassandra_tls_agent"

// Metrics holds every metric, registered on its own registry (no
// package-level state: tests build as many as they like).
type Metrics struct {
	Registry *Registry

	NotAfter         *GaugeVec
	NotBefore        *GaugeVec
	StoreBuilds      *CounterVec
	StoreLastSuccess *GaugeVec
	SourceErrors     *CounterVec
	Reloads          *CounterVec
	ReloadDuration   *HistogramVec
	Rotation         *HistogramVec
	ServedMatch      *GaugeVec
	TruststoreCerts  *GaugeVec
	CQLUp            *GaugeVec
	CQLProbeDuration *HistogramVec
	RestartRequired  *GaugeVec
	WatchMode        *GaugeVec
	BuildInfo        *GaugeVec

	RotationHeld   *GaugeVec
	RotationForced *CounterVec
	PeerTrustsCA   *GaugeVec
	PeerServesCA   *GaugeVec
}

// New registers every metric on a fresh registry.
func New(version, goVersion string) *Metrics {
	m := &Metrics{Registry: &Registry{}}
	certLabels := []string{"store", "role", "subject_cn", "serial"}
	m.NotAfter = gaugeVec("certificate_not_after_timestamp_seconds", "Expiry (notAfter) of each certificate in a store's current material, as a Unix timestamp.", certLabels)
	m.NotBefore = gaugeVec("certificate_not_before_timestamp_seconds", "Start of validity (notBefore) of each certificate in a store's current material, as a Unix timestamp.", certLabels)
	m.StoreBuilds = counterVec("store_builds_total", "Store builds by result: success (written), unchanged (inputs identical), error (invalid source or write failure).", []string{"store", "result"})
	m.StoreLastSuccess = gaugeVec("store_last_success_timestamp_seconds", "When a store's outputs last matched a valid source (built or confirmed unchanged).", []string{"store"})
	m.SourceErrors = counterVec("source_errors_total", "Source material refused by validation, by reason; the previous stores stay in place.", []string{"store", "reason"})
	m.Reloads = counterVec("reloads_total", "Reload action runs by action and result (success/error).", []string{"action", "result"})
	m.ReloadDuration = histogramVec("reload_duration_seconds", "Duration of a reload action including retries.", ExponentialBuckets(0.005, 2.5, 10), []string{"action"})
	m.Rotation = histogramVec("rotation_seconds", "From a source change being seen to the new certificate verified as served.", ExponentialBuckets(0.05, 2, 12), []string{"store"})
	m.ServedMatch = gaugeVec("served_certificate_match", "1 when the endpoint serves the store's current leaf certificate, 0 otherwise.", []string{"endpoint"})
	m.TruststoreCerts = gaugeVec("truststore_certificates", "Number of CA certificates in a store's truststore.", []string{"store"})
	m.CQLUp = gaugeVec("cql_up", "1 when the last CQL probe of the endpoint answered a query over TLS with credentials.", []string{"endpoint"})
	m.CQLProbeDuration = histogramVec("cql_probe_duration_seconds", "Duration of CQL probes.", ExponentialBuckets(0.01, 2, 10), []string{"endpoint"})
	m.RestartRequired = gaugeVec("restart_required", "1 when a store's password changed: Cassandra keeps the passwords it read at start, so only a restart can load the new stores.", []string{"store"})
	m.WatchMode = gaugeVec("watch_mode", "1 for the active change-detection mode (inotify or poll).", []string{"mode"})
	m.BuildInfo = gaugeVec("build_info", "Always 1; labels carry the agent's version and Go version.", []string{"version", "goversion"})
	m.RotationHeld = gaugeVec("rotation_held", "1 while a rotation gate holds a change of the store back (present: a leaf from a CA not every peer accepts; retain: a CA some peer still serves).", []string{"store", "gate"})
	m.RotationForced = counterVec("rotation_forced_total", "Held leaves presented anyway by the safety valve because the served leaf was about to expire (maxHold).", []string{"store"})
	m.PeerTrustsCA = gaugeVec("peer_trusts_ca", "1 when the peer advertised the CA's subject in its TLS CertificateRequest at the last probe.", []string{"store", "peer", "ca"})
	m.PeerServesCA = gaugeVec("peer_serves_ca", "1 when the chain the peer served at the last probe was issued by the CA.", []string{"store", "peer", "ca"})
	m.Registry.register(m.RotationHeld.f, m.RotationForced.f, m.PeerTrustsCA.f, m.PeerServesCA.f)
	m.Registry.register(m.NotAfter.f, m.NotBefore.f, m.StoreBuilds.f, m.StoreLastSuccess.f, m.SourceErrors.f,
		m.Reloads.f, m.ReloadDuration.f, m.Rotation.f, m.ServedMatch.f, m.TruststoreCerts.f, m.CQLUp.f, m.CQLProbeDuration.f,
		m.RestartRequired.f, m.WatchMode.f, m.BuildInfo.f)
	m.BuildInfo.WithLabelValues(version, goVersion).Set(1)
	return m
}

// SetCertificates replaces a store's certificate gauges with those of its
// current material, so a rotated-away certificate stops being reported.
func (m *Metrics) SetCertificates(store string, leaf *x509.Certificate, chain, cas []*x509.Certificate) {
	m.NotAfter.DeletePartialMatch(map[string]string{"store": store})
	m.NotBefore.DeletePartialMatch(map[string]string{"store": store})
	set := func(role string, c *x509.Certificate) {
		l := []string{store, role, c.Subject.CommonName, c.SerialNumber.Text(16)}
		m.NotAfter.WithLabelValues(l...).Set(float64(c.NotAfter.Unix()))
		m.NotBefore.WithLabelValues(l...).Set(float64(c.NotBefore.Unix()))
	}
	set("leaf", leaf)
	for _, c := range chain {
		set("intermediate", c)
	}
	for _, c := range cas {
		set("ca", c)
	}
	m.TruststoreCerts.WithLabelValues(store).Set(float64(len(cas)))
}

// SetWatchMode marks mode as the active one.
func (m *Metrics) SetWatchMode(mode string) {
	m.WatchMode.Reset()
	m.WatchMode.WithLabelValues(mode).Set(1)
}

// Since observes the seconds since t.
func Since(h Observer, t time.Time) { h.Observe(time.Since(t).Seconds()) }

func gaugeVec(name, help string, labels []string) *GaugeVec {
	return &GaugeVec{vec{newFamily(gauge, ns+"_"+name, help, labels, nil)}}
}

func counterVec(name, help string, labels []string) *CounterVec {
	return &CounterVec{vec{newFamily(counter, ns+"_"+name, help, labels, nil)}}
}

func histogramVec(name, help string, buckets []float64, labels []string) *HistogramVec {
	return &HistogramVec{vec{newFamily(histogram, ns+"_"+name, help, labels, buckets)}}
}
