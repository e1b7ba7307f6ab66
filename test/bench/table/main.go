// Command table measures cassandra-tls-agent side by side with the tools users
// would pick instead, each row in the same run, and prints one Markdown table
// (also written as JSON, the previous JSON kept for comparison):
//
//   - store build as a whole process against openssl + keytool;
//   - a kubelet-style ..data swap of the source → new stores on disk, against
//     prometheus-config-reloader reacting to the same swap with a webhook;
//   - an idle sidecar over a window: RSS, CPU seconds, wake-ups per second,
//     against prometheus-config-reloader measured the same way; binary size;
//   - a client init started before a real node: its ready lag against a
//     TCP-port wait, where that lag goes, and pod start → ready against the
//     seed's `sleep 840`; a swap of the node's source → its new leaf served
//     (Jolokia and nodetool reloads), against Cassandra's own 600 s reload
//     timer (test/TestBenchRotation);
//   - a 3-node CA rotation → every node serves the new CA, against rolling
//     restarts measured in the same run (test/cluster/TestBenchCARotation).
//
// The machine is shared and noisy: pairs are interleaved (A B A B …) and the
// table reports medians, p99 and ratios taken in the same run.
//
// Usage: go run ./test/bench/table -agent bin/cassandra-tls-agent \
//
//	-reloader .cache/bench/prometheus-config-reloader -json bench/latest.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Row is one line of the table: our figure against the alternative's,
// measured in the same run.
type Row struct {
	Section     string  `json:"section"`
	Measure     string  `json:"measure"`
	Agent       float64 `json:"agent"`
	Alternative string  `json:"alternative"`
	Other       float64 `json:"other"`
	Unit        string  `json:"unit"`
	// Ratio is other/agent (how many times better the agent is when lower
	// is better), taken pair by pair where the rows were paired.
	Ratio float64 `json:"ratio,omitempty"`
	Note  string  `json:"note,omitempty"`
}

// Report is the JSON written by -json.
type Report struct {
	Date    string `json:"date"`
	Machine string `json:"machine"`
	// Load is the 1-minute load average over the run (sampled every 10 s):
	// the machine is shared, and absolute figures move with it.
	Load string `json:"load_average"`
	Rows []Row  `json:"rows"`
}

func main() {
	agent := flag.String("agent", "bin/cassandra-tls-agent", "agent binary")
	reloader := flag.String("reloader", ".cache/bench/prometheus-config-reloader", "prometheus-config-reloader binary (test/bench/build-reloader.sh)")
	runs := flag.Int("runs", 9, "whole-process store builds per pipeline (paired)")
	loopCAs := flag.Int("keytool-cas", 20, "CAs imported one keytool run each for the 1,000-CA row (scaled to 1,000)")
	swaps := flag.Int("swaps", 200, "source swaps")
	idle := flag.Duration("idle", 60*time.Second, "idle window")
	jsonOut := flag.String("json", "bench/latest.json", "JSON output (the previous one is kept as previous.json beside it); empty: none")
	only := flag.String("only", "stores,swap,idle,rotation,cluster", "sections to run (rotation starts a real Cassandra node, cluster three: make deps)")
	lock := flag.String("lock", "", "run the real-Cassandra tests under flock(1) on this file (empty: only their own checkout lock)")
	flag.Parse()
	agentPath, _ := filepath.Abs(*agent)
	reloaderPath, _ := filepath.Abs(*reloader)
	rep := Report{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Machine: machine()}
	stopLoad := sampleLoad()
	var err error
	add := func(rows []Row, e error) {
		rep.Rows = append(rep.Rows, rows...)
		if e != nil && err == nil {
			err = e
		}
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		want[strings.TrimSpace(s)] = true
	}
	dir, e := os.MkdirTemp("", "bench-table-")
	if e != nil {
		fatal(e)
	}
	defer os.RemoveAll(dir)
	if want["stores"] {
		add(storesRows(agentPath, dir, *runs, *loopCAs))
	}
	if want["swap"] {
		add(swapRows(agentPath, reloaderPath, dir, *swaps))
	}
	if want["idle"] {
		add(idleRows(agentPath, reloaderPath, dir, *idle))
	}
	if want["rotation"] {
		add(rotationRows(dir, *lock), nil)
	}
	if want["cluster"] {
		add(clusterRows(dir, *lock), nil)
	}
	rep.Load = stopLoad()
	printTable(rep)
	if *jsonOut != "" {
		if e := writeJSON(*jsonOut, rep); e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kib); err == nil {
			mem = fmt.Sprintf(", %.0f GiB", float64(kib)/(1<<20))
		}
	}
	return fmt.Sprintf("%d cores, %s%s, %s/%s, %s", runtime.NumCPU(), cpu, mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// sampleLoad reads the 1-minute load average now and every 10 s until the
// returned function is called, which summarises the samples.
func sampleLoad() func() string {
	var mu sync.Mutex
	var xs []float64
	read := func() {
		b, err := os.ReadFile("/proc/loadavg")
		if err != nil {
			return
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				mu.Lock()
				xs = append(xs, v)
				mu.Unlock()
			}
		}
	}
	read()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() string {
		close(done)
		read()
		mu.Lock()
		defer mu.Unlock()
		if len(xs) == 0 {
			return "unknown"
		}
		return fmt.Sprintf("%.1f–%.1f (median %.1f, %d samples)", quantile(xs, 0), quantile(xs, 1), quantile(xs, 0.5), len(xs))
	}
}

func writeJSON(path string, rep Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		os.Rename(path, filepath.Join(filepath.Dir(path), "previous.json"))
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func printTable(rep Report) {
	fmt.Printf("\n%s — %s — load average %s\n\n", rep.Date, rep.Machine, rep.Load)
	fmt.Println("| measure | cassandra-tls-agent | alternative | alternative's figure | alternative ÷ agent (> 1: agent better) |")
	fmt.Println("|---|---|---|---|---|")
	for _, r := range rep.Rows {
		ratio := "—"
		if r.Ratio != 0 {
			ratio = fmt.Sprintf("%.3g×", r.Ratio)
		}
		m := r.Measure
		if r.Note != "" {
			m += " (" + r.Note + ")"
		}
		agent := fmtVal(r.Agent, r.Unit)
		if strings.HasPrefix(r.Note, "NOT MEASURED") {
			agent = "—"
		}
		fmt.Printf("| %s | %s | %s | %s | %s |\n", m, agent, r.Alternative, fmtVal(r.Other, r.Unit), ratio)
	}
	fmt.Println()
}

func fmtVal(v float64, unit string) string {
	switch unit {
	case "ms":
		if v >= 10000 {
			return fmt.Sprintf("%.0f s", v/1000)
		}
		if v < 10 {
			return fmt.Sprintf("%.2f ms", v)
		}
		return fmt.Sprintf("%.1f ms", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "s":
		return fmt.Sprintf("%.3f s", v)
	case "/s":
		return fmt.Sprintf("%.2f /s", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

// quantile returns the q-quantile (nearest rank) of xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(q*float64(len(s))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
