// Command stores times, as whole processes in one run, the manual pipeline
// people script today (openssl pkcs12 -export, keytool -importkeystore,
// keytool -importcert) against `cassandra-tls-agent stores`, and prints a
// Markdown table: median wall time and peak RSS per keystore+truststore pair.
//
// Usage: go run ./test/bench/stores -agent bin/cassandra-tls-agent [-runs 5]
package main

import (
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

const password = "bench-password"

func main() {
	agent := flag.String("agent", "bin/cassandra-tls-agent", "agent binary")
	runs := flag.Int("runs", 5, "runs of each pipeline (the agent runs 4× as many)")
	flag.Parse()
	if err := run(*agent, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type sample struct {
	wall   time.Duration
	maxRSS int64 // KiB, the largest of the pipeline's processes
}

func run(agent string, runs int) error {
	agent, _ = filepath.Abs(agent)
	dir, err := os.MkdirTemp("", "stores-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	root, _ := pkitest.CA("bench root")
	inter, _ := pkitest.New(root, pkitest.Options{CN: "bench intermediate", IsCA: true, NotAfter: time.Now().Add(24 * 300 * time.Hour)})
	leaf, _ := pkitest.Leaf(inter, "node1", pkitest.RSA2048)
	if err := pkitest.WriteDir(src, leaf, []*x509.Certificate{inter.Cert}, root.Cert); err != nil {
		return err
	}
	os.WriteFile(filepath.Join(src, "chain.crt"), pkitest.CertPEM(inter.Cert), 0o600)
	var many []*x509.Certificate
	for i := 0; i < 999; i++ {
		ca, _ := pkitest.New(nil, pkitest.Options{CN: fmt.Sprintf("bundle CA %d", i), IsCA: true})
		many = append(many, ca.Cert)
	}
	bundle := filepath.Join(dir, "bundle.pem")
	os.WriteFile(bundle, pkitest.CertPEM(many...), 0o600)

	manual := func(out string) [][]string {
		p12 := filepath.Join(out, "tmp.p12")
		return [][]string{
			{"openssl", "pkcs12", "-export", "-in", filepath.Join(src, "tls.crt"), "-inkey", filepath.Join(src, "tls.key"),
				"-certfile", filepath.Join(src, "chain.crt"), "-name", "cassandra", "-out", p12, "-passout", "pass:" + password},
			{"keytool", "-importkeystore", "-noprompt", "-srckeystore", p12, "-srcstoretype", "PKCS12", "-srcstorepass", password,
				"-destkeystore", filepath.Join(out, "keystore.jks"), "-deststoretype", "JKS", "-deststorepass", password},
			{"keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", filepath.Join(src, "ca.crt"),
				"-keystore", filepath.Join(out, "truststore.jks"), "-storetype", "JKS", "-storepass", password},
		}
	}
	agentCmd := func(extra ...string) func(out string) [][]string {
		return func(out string) [][]string {
			return [][]string{append([]string{agent, "stores", "--source", src,
				"--keystore", filepath.Join(out, "keystore.jks"), "--truststore", filepath.Join(out, "truststore.jks")}, extra...)}
		}
	}
	rows := []struct {
		name  string
		runs  int
		steps func(string) [][]string
	}{
		{"openssl pkcs12 -export + keytool -importkeystore + keytool -importcert (JKS pair)", runs, manual},
		{"cassandra-tls-agent stores (JKS pair)", runs * 4, agentCmd()},
		{"cassandra-tls-agent stores (PKCS#12 pair, Modern2023)", runs * 4, agentCmd("--store-type", "pkcs12")},
		{"cassandra-tls-agent stores (JKS pair + 1,000-CA truststore)", runs * 4, agentCmd("--trust-bundle", bundle)},
	}
	results := make([]sample, len(rows))
	for i, r := range rows {
		var samples []sample
		for n := 0; n < r.runs; n++ {
			out := filepath.Join(dir, fmt.Sprintf("out-%d-%d", i, n))
			os.MkdirAll(out, 0o755)
			s, err := timeSteps(r.steps(out))
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			samples = append(samples, s)
		}
		results[i] = median(samples)
	}
	fmt.Printf("| pipeline | runs | median wall | peak RSS | vs. openssl+keytool |\n|---|---|---|---|---|\n")
	base := results[0]
	for i, r := range rows {
		s := results[i]
		fmt.Printf("| %s | %d | %.1f ms | %.1f MiB | %.0f× faster, %.0f%% of the memory |\n", r.name, r.runs,
			float64(s.wall.Microseconds())/1000, float64(s.maxRSS)/1024,
			float64(base.wall)/float64(s.wall), 100*float64(s.maxRSS)/float64(base.maxRSS))
	}
	return nil
}

func timeSteps(steps [][]string) (sample, error) {
	var s sample
	start := time.Now()
	for _, argv := range steps {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "CASSANDRA_TLS_AGENT_STORE_PASSWORD="+password, "CASSANDRA_TLS_AGENT_LOG_LEVEL=warn")
		if out, err := cmd.CombinedOutput(); err != nil {
			return s, fmt.Errorf("%v: %v\n%s", argv[:2], err, out)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > s.maxRSS {
			s.maxRSS = ru.Maxrss
		}
	}
	s.wall = time.Since(start)
	return s, nil
}

func median(s []sample) sample {
	sort.Slice(s, func(i, j int) bool { return s[i].wall < s[j].wall })
	m := s[len(s)/2]
	rss := make([]int64, len(s))
	for i := range s {
		rss[i] = s[i].maxRSS
	}
	sort.Slice(rss, func(i, j int) bool { return rss[i] < rss[j] })
	m.maxRSS = rss[len(rss)/2]
	return m
}
