// Package metricstest checks the agent's metrics exposition with
// client_golang's own text parser and linter, in tests only: nothing of
// client_golang is linked into the agent's binary.
package metricstest

import (
	"bytes"
	"fmt"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/metrics"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Parse scrapes r the way Prometheus would and returns the families by name.
func Parse(r *metrics.Registry) (map[string]*dto.MetricFamily, error) {
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, b.String())
	}
	return mfs, nil
}

// Lint returns client_golang's lint problems with r's exposition.
func Lint(r *metrics.Registry) ([]promlint.Problem, error) {
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		return nil, err
	}
	return promlint.New(&b).Lint()
}
