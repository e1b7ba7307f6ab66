package metrics_test

import (
	"crypto/x509"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics/metricstest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	dto "github.com/prometheus/client_model/go"
)

func TestSetCertificatesReplacesRotatedSeries(t *testing.T) {
	m := metrics.New("v1", "go1.26")
	ca, _ := pkitest.CA("ca")
	old, _ := pkitest.Leaf(ca, "node1", pkitest.P256)
	m.SetCertificates("node", old.Cert, nil, []*x509.Certificate{ca.Cert})
	if n := m.NotAfter.Len(); n != 2 {
		t.Fatalf("series = %d, want leaf + ca", n)
	}
	renewed, _ := pkitest.Leaf(ca, "node1", pkitest.P256)
	m.SetCertificates("node", renewed.Cert, nil, []*x509.Certificate{ca.Cert})
	m.SetCertificates("client", old.Cert, nil, []*x509.Certificate{ca.Cert})
	if n := m.NotAfter.Len(); n != 4 {
		t.Fatalf("series = %d, want 2 per store (the rotated-away leaf dropped)", n)
	}
	got := m.NotAfter.WithLabelValues("node", "leaf", "node1", renewed.Cert.SerialNumber.Text(16)).Value()
	if got != float64(renewed.Cert.NotAfter.Unix()) {
		t.Errorf("not_after = %v", got)
	}
	if problems, err := metricstest.Lint(m.Registry); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

// A full set, every metric with a series, parsed back by client_golang's
// own text parser: names, types, label values (escaped) and values survive.
func TestExpositionParsesBack(t *testing.T) {
	m := metrics.New("v1.2.3", "go1.26.8")
	hostile := "a\"b\\c\nd ü"
	m.StoreBuilds.WithLabelValues("node", "success").Inc()
	m.StoreBuilds.WithLabelValues("node", "success").Add(2)
	m.StoreBuilds.WithLabelValues(hostile, "error").Inc()
	m.ServedMatch.WithLabelValues("127.0.0.1:9042").Set(1)
	m.StoreLastSuccess.WithLabelValues("node").SetToCurrentTime()
	for _, v := range []float64{0.001, 0.005, 0.3, 1, 1e9} {
		m.ReloadDuration.WithLabelValues("jolokia").Observe(v)
	}
	metrics.Since(m.Rotation.WithLabelValues("node"), time.Now().Add(-time.Second))
	mfs, err := metricstest.Parse(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels map[string]string) *dto.Metric {
		t.Helper()
		mf := mfs[name]
		if mf == nil {
			t.Fatalf("no family %s", name)
		}
	next:
		for _, mt := range mf.Metric {
			for _, lp := range mt.Label {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			return mt
		}
		t.Fatalf("%s: no series %v", name, labels)
		return nil
	}
	tests := []struct {
		name   string
		family string
		labels map[string]string
		typ    dto.MetricType
		get    func(*dto.Metric) float64
		want   float64
	}{
		{"counter added", "cassandra_tls_agent_store_builds_total", map[string]string{"store": "node", "result": "success"}, dto.MetricType_COUNTER,
			func(m *dto.Metric) float64 { return m.GetCounter().GetValue() }, 3},
		{"escaped label value", "cassandra_tls_agent_store_builds_total", map[string]string{"store": hostile}, dto.MetricType_COUNTER,
			func(m *dto.Metric) float64 { return m.GetCounter().GetValue() }, 1},
		{"gauge", "cassandra_tls_agent_served_certificate_match", map[string]string{"endpoint": "127.0.0.1:9042"}, dto.MetricType_GAUGE,
			func(m *dto.Metric) float64 { return m.GetGauge().GetValue() }, 1},
		{"build info", "cassandra_tls_agent_build_info", map[string]string{"version": "v1.2.3", "goversion": "go1.26.8"}, dto.MetricType_GAUGE,
			func(m *dto.Metric) float64 { return m.GetGauge().GetValue() }, 1},
		{"histogram count", "cassandra_tls_agent_reload_duration_seconds", map[string]string{"action": "jolokia"}, dto.MetricType_HISTOGRAM,
			func(m *dto.Metric) float64 { return float64(m.GetHistogram().GetSampleCount()) }, 5},
		{"histogram sum", "cassandra_tls_agent_reload_duration_seconds", nil, dto.MetricType_HISTOGRAM,
			func(m *dto.Metric) float64 { return m.GetHistogram().GetSampleSum() }, 0.001 + 0.005 + 0.3 + 1 + 1e9},
		// Buckets are cumulative and upper bounds inclusive: ≤ 0.005 holds 0.001 and 0.005.
		{"first bucket", "cassandra_tls_agent_reload_duration_seconds", nil, dto.MetricType_HISTOGRAM,
			func(m *dto.Metric) float64 { return float64(m.GetHistogram().GetBucket()[0].GetCumulativeCount()) }, 2},
		{"last finite bucket", "cassandra_tls_agent_reload_duration_seconds", nil, dto.MetricType_HISTOGRAM,
			func(m *dto.Metric) float64 {
				b := m.GetHistogram().GetBucket()
				return float64(b[len(b)-2].GetCumulativeCount()) // the last is +Inf
			}, 4},
		{"since", "cassandra_tls_agent_rotation_seconds", map[string]string{"store": "node"}, dto.MetricType_HISTOGRAM,
			func(m *dto.Metric) float64 { return math.Round(m.GetHistogram().GetSampleSum()) }, 1},
		{"process metrics", "process_open_fds", nil, dto.MetricType_GAUGE,
			func(m *dto.Metric) float64 { return math.Min(m.GetGauge().GetValue(), 1) }, 1},
		{"goroutines", "go_goroutines", nil, dto.MetricType_GAUGE,
			func(m *dto.Metric) float64 { return math.Min(m.GetGauge().GetValue(), 1) }, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mt := value(tc.family, tc.labels)
			if typ := mfs[tc.family].GetType(); typ != tc.typ {
				t.Errorf("type %v, want %v", typ, tc.typ)
			}
			if got := tc.get(mt); got != tc.want {
				t.Errorf("%v, want %v", got, tc.want)
			}
		})
	}
	if b := mfs["cassandra_tls_agent_reload_duration_seconds"].Metric[0].GetHistogram().GetBucket(); len(b) != 11 || b[0].GetUpperBound() != 0.005 || !math.IsInf(b[10].GetUpperBound(), 1) {
		t.Errorf("buckets %v, want 10 from 0.005 and +Inf", b)
	}
	if _, ok := mfs["cassandra_tls_agent_cql_up"]; ok {
		t.Errorf("a family without series was written")
	}
	if problems, err := metricstest.Lint(m.Registry); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

func TestDeleteAndReset(t *testing.T) {
	m := metrics.New("v", "go")
	for _, peer := range []string{"p1", "p2"} {
		for _, store := range []string{"node", "client"} {
			m.PeerTrustsCA.WithLabelValues(store, peer, "CA A").Set(1)
		}
	}
	tests := []struct {
		name  string
		match map[string]string
		gone  int
		left  int
	}{
		{"no match", map[string]string{"store": "other"}, 0, 4},
		{"unknown label matches nothing", map[string]string{"nope": "node"}, 0, 4},
		{"one store", map[string]string{"store": "node"}, 2, 2},
		{"two labels", map[string]string{"store": "client", "peer": "p1"}, 1, 1},
	}
	for _, tc := range tests {
		if n := m.PeerTrustsCA.DeletePartialMatch(tc.match); n != tc.gone || m.PeerTrustsCA.Len() != tc.left {
			t.Errorf("%s: deleted %d, left %d; want %d, %d", tc.name, n, m.PeerTrustsCA.Len(), tc.gone, tc.left)
		}
	}
	m.SetWatchMode("poll")
	m.SetWatchMode("inotify")
	if n := m.WatchMode.Len(); n != 1 || m.WatchMode.WithLabelValues("inotify").Value() != 1 {
		t.Errorf("watch mode: %d series", n)
	}
}

func TestMisuse(t *testing.T) {
	m := metrics.New("v", "go")
	tests := []struct {
		name string
		f    func()
	}{
		{"too few label values", func() { m.StoreBuilds.WithLabelValues("node") }},
		{"too many label values", func() { m.CQLUp.WithLabelValues("a", "b") }},
		{"counter decreased", func() { m.Reloads.WithLabelValues("exec", "success").Add(-1) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.f()
		})
	}
}

func TestHandler(t *testing.T) {
	m := metrics.New("v", "go")
	srv := httptest.NewServer(m.Registry.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != metrics.ContentType {
		t.Errorf("Content-Type %q", ct)
	}
	if !strings.Contains(b.String(), "\ncassandra_tls_agent_build_info{version=\"v\",goversion=\"go\"} 1\n") {
		t.Errorf("body:\n%s", b.String())
	}
}

// Concurrent updates lose nothing (run with -race).
func TestConcurrentUpdates(t *testing.T) {
	m := metrics.New("v", "go")
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 1000 {
				m.Reloads.WithLabelValues("exec", "success").Inc()
				m.CQLProbeDuration.WithLabelValues("h").Observe(0.02)
			}
		}()
	}
	go func() {
		for range 20 {
			metricstest.Parse(m.Registry)
		}
	}()
	for range 8 {
		<-done
	}
	if v := m.Reloads.WithLabelValues("exec", "success").Value(); v != 8000 {
		t.Errorf("counter %v, want 8000", v)
	}
	if n := m.CQLProbeDuration.WithLabelValues("h").Count(); n != 8000 {
		t.Errorf("observations %d, want 8000", n)
	}
}
