// Package metrics defines the agent's Prometheus metrics. Their names and
// labels are a public interface — dashboards and alerts depend on them — and
// no label ever carries a secret.
package metrics

import (
	"crypto/x509"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const ns = "cassandra_tls_agent"

// Metrics holds every collector, registered on its own registry (no
// package-level state: tests build as many as they like).
type Metrics struct {
	Registry *prometheus.Registry

	NotAfter         *prometheus.GaugeVec
	NotBefore        *prometheus.GaugeVec
	StoreBuilds      *prometheus.CounterVec
	StoreLastSuccess *prometheus.GaugeVec
	SourceErrors     *prometheus.CounterVec
	Reloads          *prometheus.CounterVec
	ReloadDuration   *prometheus.HistogramVec
	Rotation         *prometheus.HistogramVec
	ServedMatch      *prometheus.GaugeVec
	TruststoreCerts  *prometheus.GaugeVec
	CQLUp            *prometheus.GaugeVec
	CQLProbeDuration *prometheus.HistogramVec
	RestartRequired  *prometheus.GaugeVec
	WatchMode        *prometheus.GaugeVec
	BuildInfo        *prometheus.GaugeVec

	RotationHeld   *prometheus.GaugeVec
	RotationForced *prometheus.CounterVec
	PeerTrustsCA   *prometheus.GaugeVec
	PeerServesCA   *prometheus.GaugeVec
}

// New registers every metric on a fresh registry.
func New(version, goVersion string) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	certLabels := []string{"store", "role", "subject_cn", "serial"}
	m.NotAfter = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "certificate_not_after_timestamp_seconds",
		Help: "Expiry (notAfter) of each certificate in a store's current material, as a Unix timestamp."}, certLabels)
	m.NotBefore = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "certificate_not_before_timestamp_seconds",
		Help: "Start of validity (notBefore) of each certificate in a store's current material, as a Unix timestamp."}, certLabels)
	m.StoreBuilds = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "store_builds_total",
		Help: "Store builds by result: success (written), unchanged (inputs identical), error (invalid source or write failure)."}, []string{"store", "result"})
	m.StoreLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "store_last_success_timestamp_seconds",
		Help: "When a store's outputs last matched a valid source (built or confirmed unchanged)."}, []string{"store"})
	m.SourceErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "source_errors_total",
		Help: "Source material refused by validation, by reason; the previous stores stay in place."}, []string{"store", "reason"})
	m.Reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "reloads_total",
		Help: "Reload action runs by action and result (success/error)."}, []string{"action", "result"})
	m.ReloadDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "reload_duration_seconds",
		Help: "Duration of a reload action including retries.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}, []string{"action"})
	m.Rotation = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "rotation_seconds",
		Help: "From a source change being seen to the new certificate verified as served.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}, []string{"store"})
	m.ServedMatch = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "served_certificate_match",
		Help: "1 when the endpoint serves the store's current leaf certificate, 0 otherwise."}, []string{"endpoint"})
	m.TruststoreCerts = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "truststore_certificates",
		Help: "Number of CA certificates in a store's truststore."}, []string{"store"})
	m.CQLUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "cql_up",
		Help: "1 when the last CQL probe of the endpoint answered a query over TLS with credentials."}, []string{"endpoint"})
	m.CQLProbeDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "cql_probe_duration_seconds",
		Help: "Duration of CQL probes.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 10)}, []string{"endpoint"})
	m.RestartRequired = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "restart_required",
		Help: "1 when a store's password changed: Cassandra keeps the passwords it read at start, so only a restart can load the new stores."}, []string{"store"})
	m.WatchMode = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "watch_mode",
		Help: "1 for the active change-detection mode (inotify or poll)."}, []string{"mode"})
	m.BuildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "build_info",
		Help: "Always 1; labels carry the agent's version and Go version."}, []string{"version", "goversion"})
	m.RotationHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "rotation_held",
		Help: "1 while a rotation gate holds a change of the store back (present: a leaf from a CA not every peer accepts; retain: a CA some peer still serves)."}, []string{"store", "gate"})
	m.RotationForced = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rotation_forced_total",
		Help: "Held leaves presented anyway by the safety valve because the served leaf was about to expire (maxHold)."}, []string{"store"})
	m.PeerTrustsCA = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "peer_trusts_ca",
		Help: "1 when the peer advertised the CA's subject in its TLS CertificateRequest at the last probe."}, []string{"store", "peer", "ca"})
	m.PeerServesCA = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "peer_serves_ca",
		Help: "1 when the chain the peer served at the last probe was issued by the CA."}, []string{"store", "peer", "ca"})
	m.Registry.MustRegister(m.RotationHeld, m.RotationForced, m.PeerTrustsCA, m.PeerServesCA)
	m.Registry.MustRegister(m.NotAfter, m.NotBefore, m.StoreBuilds, m.StoreLastSuccess, m.SourceErrors,
		m.Reloads, m.ReloadDuration, m.Rotation, m.ServedMatch, m.TruststoreCerts, m.CQLUp, m.CQLProbeDuration,
		m.RestartRequired, m.WatchMode, m.BuildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.BuildInfo.WithLabelValues(version, goVersion).Set(1)
	return m
}

// SetCertificates replaces a store's certificate gauges with those of its
// current material, so a rotated-away certificate stops being reported.
func (m *Metrics) SetCertificates(store string, leaf *x509.Certificate, chain, cas []*x509.Certificate) {
	m.NotAfter.DeletePartialMatch(prometheus.Labels{"store": store})
	m.NotBefore.DeletePartialMatch(prometheus.Labels{"store": store})
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
func Since(h prometheus.Observer, t time.Time) { h.Observe(time.Since(t).Seconds()) }
