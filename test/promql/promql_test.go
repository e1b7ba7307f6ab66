// Package promql checks deploy/'s monitoring against Prometheus itself:
// every expression of the PrometheusRule and of the Grafana dashboard parses
// with the Prometheus parser (the rules also pass Prometheus' rule-file
// validation), and every metric they name is one that a live scrape of a
// running sidecar exports. A module of its own: Prometheus' dependencies
// would move those of test/k8s's control-plane binaries.
//
// TestMetricsExported needs the scrape: test/k8s's TestCSIDriverScenario
// runs it with PROMQL_SCRAPE set to what its sidecar served, after a
// rotation on a real Cassandra node.
package promql

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

const monitoring = "../../deploy/base/cassandra"

// expression is one PromQL expression of deploy/ and where it is.
type expression struct{ where, expr string }

// expressions reads the PrometheusRule's rules (checked as a Prometheus
// rule file on the way) and the dashboard's targets.
func expressions(t *testing.T) []expression {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(monitoring, "monitoring.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []expression
	dec := yaml.NewDecoder(bytes.NewReader(data))
	rules := 0
	for {
		var doc struct {
			Kind     string
			Metadata struct{ Name string }
			Spec     yaml.Node
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("monitoring.yaml: %v", err)
		}
		if doc.Kind != "PrometheusRule" {
			continue
		}
		rules++
		spec, err := yaml.Marshal(&doc.Spec)
		if err != nil {
			t.Fatal(err)
		}
		// A PrometheusRule's spec is a Prometheus rule file.
		groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
		if len(errs) > 0 {
			t.Fatalf("PrometheusRule %s as a Prometheus rule file: %v", doc.Metadata.Name, errors.Join(errs...))
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				out = append(out, expression{"PrometheusRule " + doc.Metadata.Name + " alert " + r.Alert + r.Record, r.Expr})
			}
		}
	}
	if rules == 0 {
		t.Fatal("monitoring.yaml holds no PrometheusRule")
	}

	data, err = os.ReadFile(filepath.Join(monitoring, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out = append(out, expression{"dashboard panel " + p.Title, tg.Expr})
		}
	}
	return out
}

// metricNames parses e and returns the metric names its selectors name.
func metricNames(e string) ([]string, error) {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(e)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names, nil
}

func TestExpressionsParse(t *testing.T) {
	exprs := expressions(t)
	if len(exprs) < 10 {
		t.Fatalf("%d expressions in the rules and the dashboard", len(exprs))
	}
	for _, e := range exprs {
		names, err := metricNames(e.expr)
		if err != nil {
			t.Errorf("%s: %q: %v", e.where, e.expr, err)
			continue
		}
		if len(names) == 0 || slices.Contains(names, "") {
			t.Errorf("%s: %q selects series without a metric name", e.where, e.expr)
		}
	}
	// The parser refuses what it must: the check can fail.
	for _, bad := range []string{"rate(cassandra_tls_agent_reloads_total[15 m])", "sum by (store (x)", "x{a=}"} {
		if _, err := metricNames(bad); err == nil {
			t.Errorf("%q parses", bad)
		}
	}
}

// scraped reads a /metrics exposition (the agent's text format) and
// returns the names of the series it holds: each family's name, and for a
// histogram or summary its _bucket, _sum and _count series.
func scraped(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the scrape is not Prometheus' text format: %v", err)
	}
	out := map[string]bool{}
	for name, f := range families {
		if len(f.GetMetric()) == 0 {
			continue
		}
		out[name] = true
		switch f.GetType().String() {
		case "HISTOGRAM", "SUMMARY":
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[name+s] = true
			}
		}
	}
	return out
}

// notYetExported are metrics of the agent that a healthy sidecar does not
// export until their event happens (the counters alerts take increase() of
// start at 0 for every store and reason; these gauges have no label set
// before a gated rotation); each names why the scenario cannot provoke it.
var notYetExported = map[string]string{
	// The CA-rotation gate asks the peers (internal/agent/gate.go) only
	// when the trust bundle or the issuing CA changes; the scenario renews
	// a leaf under the same CA.
	"cassandra_tls_agent_peer_trusts_ca": "set only while a CA rotation is gated",
	"cassandra_tls_agent_peer_serves_ca": "set only while a CA rotation is gated",
}

func TestMetricsExported(t *testing.T) {
	path := os.Getenv("PROMQL_SCRAPE")
	if path == "" {
		t.Skip("PROMQL_SCRAPE is not set: test/k8s's TestCSIDriverScenario runs this with its sidecar's live /metrics")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	have := scraped(t, data)
	var missing []string
	for _, e := range expressions(t) {
		names, err := metricNames(e.expr)
		if err != nil {
			t.Fatalf("%s: %v", e.where, err)
		}
		for _, n := range names {
			if have[n] {
				continue
			}
			if why, ok := notYetExported[n]; ok {
				t.Logf("%s: %s is not in the scrape: %s", e.where, n, why)
				continue
			}
			missing = append(missing, e.where+": "+n)
		}
	}
	if len(missing) > 0 {
		t.Errorf("metrics the live sidecar does not export:\n%s", strings.Join(missing, "\n"))
	}
	for n := range notYetExported {
		if have[n] {
			t.Errorf("%s is exported now: drop it from notYetExported", n)
		}
	}
}
