package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The agent's own Prometheus exposition (text format 0.0.4): gauges,
// counters and histograms with labels, and a few process metrics read at
// scrape time. Not client_golang: its package initialisers register a Go and
// a process collector on a global registry in every process that links it,
// which cost the one-shot commands (`stores`, `init`) ≈ 3.5 ms of start-up
// and the sidecar ≈ 3 MiB of resident memory, for collectors the agent never
// used. The tests parse this output with client_golang's own parser and lint.

// Registry holds metric families, fixed when it is built; scraping writes
// them sorted by name, each family's series sorted by label values.
type Registry struct {
	families []*family
}

// Register adds families; a name registered twice panics (a programming
// error, caught by every test that builds the set).
func (r *Registry) register(fs ...*family) {
	for _, f := range fs {
		for _, g := range r.families {
			if g.name == f.name {
				panic("metrics: " + f.name + " registered twice")
			}
		}
		r.families = append(r.families, f)
	}
	slices.SortFunc(r.families, func(a, b *family) int { return strings.Compare(a.name, b.name) })
}

// Kinds maps every registered metric name to its type (gauge, counter or
// histogram), including those with no series yet.
func (r *Registry) Kinds() map[string]string {
	out := make(map[string]string, len(r.families))
	for _, f := range r.families {
		out[f.name] = string(f.kind)
	}
	return out
}

type kind string

const (
	gauge     kind = "gauge"
	counter   kind = "counter"
	histogram kind = "histogram"
)

// family is one metric name: its help, type, label names and series.
type family struct {
	name, help string
	kind       kind
	labels     []string
	buckets    []float64 // histograms: upper bounds, ascending, without +Inf
	mu         sync.Mutex
	series     map[string]*series // key: label values joined by \xff
}

type series struct {
	values []string
	bits   atomic.Uint64 // gauges and counters: math.Float64bits
	hist   *histogramData
}

type histogramData struct {
	bounds []float64 // the family's buckets
	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	count  uint64
}

func newFamily(k kind, name, help string, labels []string, buckets []float64) *family {
	return &family{name: name, help: help, kind: k, labels: labels, buckets: buckets, series: map[string]*series{}}
}

// with returns the series of these label values, creating it.
func (f *family) with(values []string) *series {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values (%v), got %d", f.name, len(f.labels), f.labels, len(values)))
	}
	key := strings.Join(values, "\xff")
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.series[key]
	if !ok {
		s = &series{values: slices.Clone(values)}
		if f.kind == histogram {
			s.hist = &histogramData{bounds: f.buckets, counts: make([]uint64, len(f.buckets)+1)}
		}
		f.series[key] = s
	}
	return s
}

// deletePartialMatch removes every series whose labels include all of
// match, returning how many.
func (f *family) deletePartialMatch(match map[string]string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for key, s := range f.series {
		ok := true
		for name, want := range match {
			i := slices.Index(f.labels, name)
			if i < 0 || s.values[i] != want {
				ok = false
				break
			}
		}
		if ok {
			delete(f.series, key)
			n++
		}
	}
	return n
}

func (f *family) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.series)
}

func (f *family) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.series)
}

// vec is what every labelled metric type shares.
type vec struct{ f *family }

// DeletePartialMatch removes every series whose labels include all the
// given name/value pairs, returning how many it removed.
func (v vec) DeletePartialMatch(labels map[string]string) int { return v.f.deletePartialMatch(labels) }

// Reset removes every series.
func (v vec) Reset() { v.f.reset() }

// Len is the number of series.
func (v vec) Len() int { return v.f.len() }

// GaugeVec is a gauge per combination of label values.
type GaugeVec struct{ vec }

// CounterVec is a counter per combination of label values.
type CounterVec struct{ vec }

// HistogramVec is a histogram per combination of label values.
type HistogramVec struct{ vec }

// Gauge is a value that goes up and down.
type Gauge struct{ s *series }

// Counter is a value that only goes up.
type Counter struct{ s *series }

// Histogram counts observations into buckets.
type Histogram struct{ s *series }

// Observer is anything that takes observations (a Histogram).
type Observer interface{ Observe(float64) }

// WithLabelValues returns the gauge for these label values (in the order of
// the label names), creating it at 0.
func (v *GaugeVec) WithLabelValues(values ...string) Gauge { return Gauge{v.f.with(values)} }

// WithLabelValues returns the counter for these label values, creating it at 0.
func (v *CounterVec) WithLabelValues(values ...string) Counter { return Counter{v.f.with(values)} }

// WithLabelValues returns the histogram for these label values, creating it empty.
func (v *HistogramVec) WithLabelValues(values ...string) Histogram {
	return Histogram{v.f.with(values)}
}

// Set sets the gauge.
func (g Gauge) Set(x float64) { g.s.bits.Store(math.Float64bits(x)) }

// SetToCurrentTime sets the gauge to the current Unix time in seconds.
func (g Gauge) SetToCurrentTime() { g.Set(float64(time.Now().UnixNano()) / 1e9) }

// Value is the gauge's current value.
func (g Gauge) Value() float64 { return math.Float64frombits(g.s.bits.Load()) }

// Inc adds 1 to the counter.
func (c Counter) Inc() { c.Add(1) }

// Add adds x ≥ 0 to the counter; a negative x panics (a counter never goes down).
func (c Counter) Add(x float64) {
	if x < 0 {
		panic("metrics: a counter cannot decrease")
	}
	for {
		old := c.s.bits.Load()
		if c.s.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+x)) {
			return
		}
	}
}

// Value is the counter's current value.
func (c Counter) Value() float64 { return math.Float64frombits(c.s.bits.Load()) }

// Observe adds one observation.
func (h Histogram) Observe(x float64) {
	d := h.s.hist
	d.mu.Lock()
	defer d.mu.Unlock()
	i := len(d.counts) - 1
	for j, ub := range h.bounds() {
		if x <= ub {
			i = j
			break
		}
	}
	d.counts[i]++
	d.count++
	d.sum += x
}

func (h Histogram) bounds() []float64 { return h.s.hist.bounds }

// Count is the number of observations so far.
func (h Histogram) Count() uint64 {
	h.s.hist.mu.Lock()
	defer h.s.hist.mu.Unlock()
	return h.s.hist.count
}

// ExponentialBuckets returns n upper bounds: start, start·factor, start·factor², …
func ExponentialBuckets(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

// ContentType is the text exposition format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Handler serves the registry in the text format.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		if req.Method == http.MethodHead {
			return
		}
		r.WriteText(w)
	})
}

// WriteText writes every family with at least one series in the text
// exposition format, then the process metrics.
func (r *Registry) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	for _, f := range r.families {
		f.write(b)
	}
	writeProcess(b)
	return b.Flush()
}

func (f *family) write(b *bufio.Writer) {
	f.mu.Lock()
	all := make([]*series, 0, len(f.series))
	for _, s := range f.series {
		all = append(all, s)
	}
	f.mu.Unlock()
	if len(all) == 0 {
		return
	}
	slices.SortFunc(all, func(a, b *series) int { return slices.Compare(a.values, b.values) })
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.kind)
	for _, s := range all {
		if f.kind != histogram {
			sample(b, f.name, f.labels, s.values, "", "", math.Float64frombits(s.bits.Load()))
			continue
		}
		d := s.hist
		d.mu.Lock()
		counts, sum, count := slices.Clone(d.counts), d.sum, d.count
		d.mu.Unlock()
		var cum uint64
		for i, ub := range f.buckets {
			cum += counts[i]
			sample(b, f.name+"_bucket", f.labels, s.values, "le", formatFloat(ub), float64(cum))
		}
		sample(b, f.name+"_bucket", f.labels, s.values, "le", "+Inf", float64(count))
		sample(b, f.name+"_sum", f.labels, s.values, "", "", sum)
		sample(b, f.name+"_count", f.labels, s.values, "", "", float64(count))
	}
}

// sample writes one line: name{labels} value, with an extra label when
// extraName is set (a histogram bucket's le).
func sample(b *bufio.Writer, name string, labels, values []string, extraName, extraValue string, v float64) {
	b.WriteString(name)
	if len(labels) > 0 || extraName != "" {
		b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l)
			b.WriteString(`="`)
			b.WriteString(escapeLabel(values[i]))
			b.WriteByte('"')
		}
		if extraName != "" {
			if len(labels) > 0 {
				b.WriteByte(',')
			}
			b.WriteString(extraName)
			b.WriteString(`="`)
			b.WriteString(extraValue)
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	b.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// writeProcess writes the process metrics Prometheus users expect from any
// exporter, read at scrape time (Linux /proc; a reading that fails is left out).
func writeProcess(b *bufio.Writer) {
	gaugeLine := func(name, typ, help string, v float64) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, typ, name, formatFloat(v))
	}
	gaugeLine("go_goroutines", "gauge", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		gaugeLine("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", cpu.Seconds())
	}
	if statm, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(statm)); len(f) > 1 {
			if pages, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				gaugeLine("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", float64(pages*uint64(os.Getpagesize())))
			}
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		gaugeLine("process_open_fds", "gauge", "Number of open file descriptors.", float64(len(fds)))
	}
}
