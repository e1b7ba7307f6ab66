package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

const password = "bench-password"

type sample struct {
	wall   time.Duration
	maxRSS int64 // KiB, the largest of the pipeline's processes
}

// storesRows times store builds as whole processes, the agent's and the
// openssl + keytool pipeline's interleaved run by run.
func storesRows(agent, dir string, runs, loopCAs int) ([]Row, error) {
	src := filepath.Join(dir, "stores-src")
	root, _ := pkitest.CA("bench root")
	inter, _ := pkitest.New(root, pkitest.Options{CN: "bench intermediate", IsCA: true, NotAfter: time.Now().Add(24 * 300 * time.Hour)})
	leaf, _ := pkitest.Leaf(inter, "node1", pkitest.RSA2048)
	if err := pkitest.WriteDir(src, leaf, []*x509.Certificate{inter.Cert}, root.Cert); err != nil {
		return nil, err
	}
	os.WriteFile(filepath.Join(src, "chain.crt"), pkitest.CertPEM(inter.Cert), 0o600)
	var many []*x509.Certificate
	for i := 0; i < 999; i++ {
		ca, _ := pkitest.New(nil, pkitest.Options{CN: fmt.Sprintf("bundle CA %d", i), IsCA: true})
		many = append(many, ca.Cert)
	}
	bundle := filepath.Join(dir, "bundle.pem")
	os.WriteFile(bundle, pkitest.CertPEM(many...), 0o600)
	var caFiles []string
	for i := 0; i < loopCAs && i < len(many); i++ {
		p := filepath.Join(dir, fmt.Sprintf("ca-%d.pem", i))
		os.WriteFile(p, pkitest.CertPEM(many[i]), 0o600)
		caFiles = append(caFiles, p)
	}

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
	keytoolLoop := func(out string) [][]string {
		var steps [][]string
		for i, f := range caFiles {
			steps = append(steps, []string{"keytool", "-importcert", "-noprompt", "-alias", fmt.Sprintf("ca%d", i), "-file", f,
				"-keystore", filepath.Join(out, "truststore.jks"), "-storetype", "JKS", "-storepass", password})
		}
		return steps
	}
	agentCmd := func(extra ...string) func(out string) [][]string {
		return func(out string) [][]string {
			return [][]string{append([]string{agent, "stores", "--source", src,
				"--keystore", filepath.Join(out, "keystore.jks"), "--truststore", filepath.Join(out, "truststore.jks")}, extra...)}
		}
	}
	// The floor of any Go command on this machine: a static hello world.
	hello, err := buildHello(dir)
	if err != nil {
		return nil, err
	}
	floor := func(string) [][]string { return [][]string{{hello}} }
	pipes := []func(string) [][]string{manual, agentCmd(), agentCmd("--store-type", "pkcs12"), agentCmd("--trust-bundle", bundle), keytoolLoop, floor}
	samples := make([][]sample, len(pipes))
	loopRuns := 3
	for n := 0; n < runs+1; n++ { // the first round warms the page cache, uncounted
		for i, p := range pipes {
			if i == 4 && (n == 0 || n > loopRuns) {
				continue
			}
			out := filepath.Join(dir, fmt.Sprintf("stores-out-%d-%d", i, n))
			os.MkdirAll(out, 0o755)
			s, err := timeSteps(p(out))
			if err != nil {
				return nil, err
			}
			os.RemoveAll(out)
			if n > 0 {
				samples[i] = append(samples[i], s)
			}
		}
	}
	wall := func(i int) []float64 {
		var xs []float64
		for _, s := range samples[i] {
			xs = append(xs, ms(s.wall))
		}
		return xs
	}
	rss := func(i int) float64 {
		var xs []float64
		for _, s := range samples[i] {
			xs = append(xs, float64(s.maxRSS)/1024)
		}
		return quantile(xs, 0.5)
	}
	// pairRatio is the median over runs of manual/agent, run by run.
	pairRatio := func(i int) float64 {
		var rs []float64
		for n := range samples[i] {
			rs = append(rs, float64(samples[0][n].wall)/float64(samples[i][n].wall))
		}
		return quantile(rs, 0.5)
	}
	const alt = "openssl pkcs12 -export + keytool -importkeystore + keytool -importcert"
	rows := []Row{
		{Section: "stores", Measure: "store build, JKS keystore+truststore pair, whole process, median", Agent: quantile(wall(1), 0.5),
			Alternative: alt, Other: quantile(wall(0), 0.5), Unit: "ms", Ratio: pairRatio(1),
			Note: fmt.Sprintf("%d paired runs; a static Go hello world, the floor of any Go process here, took %.2f ms in the same runs", runs, quantile(wall(5), 0.5))},
		{Section: "stores", Measure: "store build, PKCS#12 pair (Modern2023), whole process, median", Agent: quantile(wall(2), 0.5),
			Alternative: alt + " (JKS)", Other: quantile(wall(0), 0.5), Unit: "ms", Ratio: pairRatio(2)},
		{Section: "stores", Measure: "store build, JKS pair, peak RSS, median", Agent: rss(1),
			Alternative: alt, Other: rss(0), Unit: "MiB", Ratio: rss(0) / rss(1)},
	}
	perCA := quantile(wall(4), 0.5) / float64(len(caFiles))
	rows = append(rows, Row{Section: "stores", Measure: "store build, JKS pair + 1,000-CA truststore, whole process, median",
		Agent: quantile(wall(3), 0.5), Alternative: "keytool -importcert once per CA",
		Other: perCA * 1000, Unit: "ms", Ratio: perCA * 1000 / quantile(wall(3), 0.5),
		Note: fmt.Sprintf("keytool: %d CAs timed %d times, scaled to 1,000, a lower bound", len(caFiles), len(samples[4]))})
	return rows, nil
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

// buildHello compiles a static Go program that does nothing.
func buildHello(dir string) (string, error) {
	src, bin := filepath.Join(dir, "hello.go"), filepath.Join(dir, "hello")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o600); err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the hello world: %v\n%s", err, out)
	}
	return bin, nil
}
