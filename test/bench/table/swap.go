package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// swapRows swaps a cert-manager-style source the kubelet's way n times and
// times, from the start of each swap, the agent's new keystore on disk and
// prometheus-config-reloader's webhook call for the same swap (both
// processes watch the same directory at once).
func swapRows(agent, reloader, dir string, n int) ([]Row, error) {
	dir = filepath.Join(dir, "swap")
	src := filepath.Join(dir, "src", "tls")
	out := filepath.Join(dir, "out")
	os.MkdirAll(out, 0o755)
	ca, _ := pkitest.CA("swap CA")
	var leaves []map[string][]byte
	for _, cn := range []string{"leaf-a", "leaf-b"} {
		l, _ := pkitest.Leaf(ca, cn, pkitest.P256)
		leaves = append(leaves, map[string][]byte{
			"tls.crt": pkitest.CertPEM(l.Cert), "tls.key": pkitest.KeyPEM(l.Key), "ca.crt": pkitest.CertPEM([]*x509.Certificate{ca.Cert}...)})
	}
	if err := kubeletfs.Write(src, leaves[0]); err != nil {
		return nil, err
	}
	hook, closeHook, err := newWebhook()
	if err != nil {
		return nil, err
	}
	defer closeHook()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if err := w.Add(out); err != nil {
		return nil, err
	}
	keystore := filepath.Join(out, "keystore.jks")

	// The minimum debounce the config allows: 0 means the 500 ms default.
	a, err := startAgent(agent, dir, src, out, "1ms", "1m")
	if err != nil {
		return nil, err
	}
	defer a.stop()
	r, err := startReloader(reloader, src, hook.url, "0s")
	if err != nil {
		return nil, err
	}
	defer r.stop()
	// Settle: the agent's first build, the reloader's first call.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(keystore); err == nil {
			break
		}
		if time.Now().After(deadline) || !a.alive() {
			return nil, fmt.Errorf("agent built no keystore:\n%s", a.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	drain := func() {
		for {
			select {
			case <-hook.ch:
			case <-w.Events:
			default:
				return
			}
		}
	}
	drain()
	var ours, theirs []float64
	missed := [2]int{}
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := kubeletfs.Write(src, leaves[(i+1)%2]); err != nil {
			return nil, err
		}
		gotA, gotR := false, false
		timeout := time.After(5 * time.Second)
		for !gotA || !gotR {
			select {
			case ev := <-w.Events:
				if !gotA && ev.Name == keystore && ev.Has(fsnotify.Create) {
					gotA = true
					ours = append(ours, ms(time.Since(t0)))
				}
			case t := <-hook.ch:
				if !gotR {
					gotR = true
					theirs = append(theirs, ms(t.Sub(t0)))
				}
			case <-timeout:
				if !gotA {
					missed[0]++
				}
				if !gotR {
					missed[1]++
				}
				gotA, gotR = true, true
			}
		}
		time.Sleep(50 * time.Millisecond)
		drain()
	}
	if !a.alive() {
		return nil, fmt.Errorf("agent exited:\n%s", a.log.String())
	}
	note := fmt.Sprintf("%d kubelet ..data swaps, agent debounce 1 ms (the minimum: 0 means the 500 ms default); reloader --delay-interval=0s; it rebuilds and validates nothing", n)
	if missed[0]+missed[1] > 0 {
		note += fmt.Sprintf("; missed within 5 s: agent %d, reloader %d", missed[0], missed[1])
	}
	const alt = "prometheus-config-reloader v0.85.0 --watched-dir → webhook"
	return []Row{
		{Section: "swap", Measure: "source swap → new stores on disk, p50", Agent: quantile(ours, 0.5), Alternative: alt,
			Other: quantile(theirs, 0.5), Unit: "ms", Ratio: quantile(theirs, 0.5) / quantile(ours, 0.5), Note: note},
		{Section: "swap", Measure: "source swap → new stores on disk, p99", Agent: quantile(ours, 0.99), Alternative: alt,
			Other: quantile(theirs, 0.99), Unit: "ms", Ratio: quantile(theirs, 0.99) / quantile(ours, 0.99)},
	}, nil
}
