package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// idleRows runs the agent's sidecar (default debounce and resync) and
// prometheus-config-reloader side by side, untouched for window, and reads
// from /proc their RSS, CPU time and context switches (all threads).
func idleRows(agent, reloader, dir string, window time.Duration) ([]Row, error) {
	dir = filepath.Join(dir, "idle")
	src := filepath.Join(dir, "src", "tls")
	out := filepath.Join(dir, "out")
	os.MkdirAll(out, 0o755)
	ca, _ := pkitest.CA("idle CA")
	l, _ := pkitest.Leaf(ca, "node", pkitest.P256)
	if err := kubeletfs.Write(src, map[string][]byte{
		"tls.crt": pkitest.CertPEM(l.Cert), "tls.key": pkitest.KeyPEM(l.Key), "ca.crt": pkitest.CertPEM(ca.Cert)}); err != nil {
		return nil, err
	}
	hook, closeHook, err := newWebhook()
	if err != nil {
		return nil, err
	}
	defer closeHook()
	a, err := startAgent(agent, dir, src, out, "500ms", "1m")
	if err != nil {
		return nil, err
	}
	defer a.stop()
	r, err := startReloader(reloader, src, hook.url, "1s")
	if err != nil {
		return nil, err
	}
	defer r.stop()
	time.Sleep(5 * time.Second) // start-up done
	var before, after [2]procStat
	for i, p := range []*proc{a, r} {
		if before[i], err = readProc(p.cmd.Process.Pid); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", p.name, err, p.log.String())
		}
	}
	time.Sleep(window)
	for i, p := range []*proc{a, r} {
		if after[i], err = readProc(p.cmd.Process.Pid); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", p.name, err, p.log.String())
		}
	}
	secs := window.Seconds()
	cpu := func(i int) float64 { return float64(after[i].cpuNanos-before[i].cpuNanos) / 1e6 }
	wake := func(i int) float64 { return float64(after[i].switches-before[i].switches) / secs }
	rss := func(i int) float64 { return float64(after[i].rssKiB) / 1024 }
	size := func(p string) float64 {
		st, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return float64(st.Size()) / (1 << 20)
	}
	const alt = "prometheus-config-reloader v0.85.0"
	note := fmt.Sprintf("%.0f s untouched, both at their defaults (agent debounce 500 ms, resync 1 m; reloader delay 1 s, watch interval 3 m); threads %d vs %d", secs, after[0].threads, after[1].threads)
	ratio := func(o, a float64) float64 {
		if a == 0 {
			return 0
		}
		return o / a
	}
	return []Row{
		{Section: "idle", Measure: "sidecar idle, RSS", Agent: rss(0), Alternative: alt, Other: rss(1), Unit: "MiB", Ratio: ratio(rss(1), rss(0)), Note: note},
		{Section: "idle", Measure: fmt.Sprintf("sidecar idle, CPU time over %.0f s", secs), Agent: cpu(0), Alternative: alt, Other: cpu(1), Unit: "ms", Ratio: ratio(cpu(1), cpu(0)), Note: "/proc/PID/task/*/schedstat, every thread; threads that exited in the window are not counted"},
		{Section: "idle", Measure: "sidecar idle, wake-ups per second", Agent: wake(0), Alternative: alt, Other: wake(1), Unit: "/s", Ratio: ratio(wake(1), wake(0)), Note: "voluntary+nonvoluntary context switches of all threads"},
		{Section: "idle", Measure: "binary size", Agent: size(agent), Alternative: alt, Other: size(reloader), Unit: "MiB", Ratio: ratio(size(reloader), size(agent))},
	}, nil
}
