package test

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/files"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/test/agentproc"
)

// TestSoak runs the real sidecar through many rotations that mix good
// material with broken inputs — cert-manager's half-written pair, garbage,
// a deleted and re-created directory, a FIFO where tls.crt should be —
// while readers open every output (JKS, PKCS#12, PEM through ..data, the
// combined keystore.pem) and check that the key matches the leaf. Asserts:
// not one torn or mismatched read; the sidecar's goroutines, file
// descriptors and threads flat; the last good rotation published and ready.
// SOAK_ROTATIONS sets the count (make soak: 10,000; make test: 600).
func TestSoak(t *testing.T) {
	rotations := 600
	if v, err := strconv.Atoi(os.Getenv("SOAK_ROTATIONS")); err == nil && v > 0 {
		rotations = v
	}
	root := t.TempDir()
	src, out := filepath.Join(root, "src"), filepath.Join(root, "out")
	const pw = "soak-password"
	writeFile(t, filepath.Join(root, "pw"), []byte(pw))
	ca, err := pkitest.CA("soak CA")
	if err != nil {
		t.Fatal(err)
	}
	// A pool of leaves: issuing one per rotation would measure RSA/ECDSA
	// key generation, not the agent.
	var leaves []*pkitest.Cert
	for range 8 {
		l, err := pkitest.Leaf(ca, "node1", pkitest.P256)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, l)
	}
	good := func(l *pkitest.Cert) map[string][]byte {
		return map[string][]byte{"tls.crt": pkitest.CertPEM(l.Cert), "tls.key": pkitest.KeyPEM(l.Key), "ca.crt": pkitest.CertPEM(ca.Cert)}
	}
	if err := kubeletfs.Write(src, good(leaves[0])); err != nil {
		t.Fatal(err)
	}
	addr := agentproc.FreeAddr(t)
	sc := agentproc.Start(t, agentBin, "soak", addr, fmt.Sprintf(`
stores:
  - {name: jks, source: %[1]s, passwordFile: %[2]s/pw, keystore: {path: %[3]s/keystore.jks}, truststore: {path: %[3]s/truststore.jks}}
  - {name: p12, source: %[1]s, passwordFile: %[2]s/pw, keystore: {path: %[3]s/keystore.p12, type: pkcs12}, truststore: {path: %[3]s/truststore.p12, type: pkcs12}}
  - {name: pem, source: %[1]s, pem: {dir: %[3]s/pem}}
watch: {debounce: 1ms, resync: 1s}
http: {listen: %[4]q}
log: {level: warn}
`, src, root, out, addr))
	sc.WaitReady(t, true, 30*time.Second)
	pid := sc.Pid()
	before := procCounts(t, pid, sc)

	var reads, torn, mismatched atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	check := func(what string, key crypto.PrivateKey, chain []*x509.Certificate, err error) {
		reads.Add(1)
		switch {
		case err != nil:
			torn.Add(1)
			t.Errorf("%s: %v", what, err)
		case len(chain) == 0:
			torn.Add(1)
			t.Errorf("%s: no certificate", what)
		default:
			signer, ok := key.(crypto.Signer)
			if !ok || !pki.KeyMatches(signer, chain[0]) {
				mismatched.Add(1)
				t.Errorf("%s: the key does not match the leaf", what)
			}
		}
	}
	readStore := func(name string) {
		data, err := files.Read(filepath.Join(out, name))
		if err != nil {
			check(name, nil, nil, err)
			return
		}
		c, err := store.Decode(data, []byte(pw))
		if err != nil || len(c.Keys) != 1 {
			check(name, nil, nil, fmt.Errorf("decode: %v (%d key entries)", err, len(c.Keys)))
			return
		}
		check(name, c.Keys[0].Key, c.Keys[0].Chain, nil)
	}
	readPEM := func() {
		// Readers resolve ..data once and read the pair from there (README,
		// "Reading the PEM outputs").
		dir, err := filepath.EvalSymlinks(filepath.Join(out, "pem", "..data"))
		if err != nil {
			check("pem/..data", nil, nil, err)
			return
		}
		keyPEM, err1 := os.ReadFile(filepath.Join(dir, "tls.key"))
		crtPEM, err2 := os.ReadFile(filepath.Join(dir, "tls.crt"))
		if err1 != nil || err2 != nil {
			// The generation we resolved was replaced and removed: that is a
			// retry, not a mismatch; the next read resolves again.
			return
		}
		key, err := pki.ParsePrivateKey(keyPEM, "tls.key")
		if err != nil {
			check("pem/..data/tls.key", nil, nil, err)
			return
		}
		certs, err := pki.ParseCertificates(crtPEM, "tls.crt")
		check("pem/..data", key, certs, err)
		both, err := files.Read(filepath.Join(out, "pem", "keystore.pem"))
		if err != nil {
			check("pem/keystore.pem", nil, nil, err)
			return
		}
		k, kerr := pki.ParsePrivateKey(pemBlocks(both, false), "keystore.pem")
		c, cerr := pki.ParseCertificates(pemBlocks(both, true), "keystore.pem")
		if kerr != nil {
			cerr = kerr
		}
		check("pem/keystore.pem", k, c, cerr)
	}
	for _, r := range []func(){func() { readStore("keystore.jks") }, func() { readStore("keystore.p12") }, readPEM} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r()
			}
		}()
	}

	// The rotations: mostly good, one in four broken in one of four ways.
	start := time.Now()
	var last *pkitest.Cert
	for i := 1; i <= rotations; i++ {
		l := leaves[i%len(leaves)]
		var err error
		switch i % 16 {
		case 3: // cert-manager's partial state: the new tls.crt with the old tls.key
			f := good(l)
			f["tls.key"] = pkitest.KeyPEM(leaves[(i+1)%len(leaves)].Key)
			err = kubeletfs.Write(src, f)
		case 7: // garbage
			f := good(l)
			f["tls.crt"] = []byte("-----BEGIN CERTIFICATE-----\nnot base64\n")
			err = kubeletfs.Write(src, f)
		case 11: // the directory deleted (and re-created by the next rotation)
			err = os.RemoveAll(src)
		case 15: // a FIFO where tls.crt should be: refused at once, never waited on
			if err = os.RemoveAll(src); err == nil {
				if err = os.MkdirAll(src, 0o755); err == nil {
					err = syscall.Mkfifo(filepath.Join(src, "tls.crt"), 0o600)
				}
			}
		default:
			if _, statErr := os.Stat(filepath.Join(src, "..data")); statErr != nil {
				os.RemoveAll(src) // after a delete or the FIFO dir: a fresh Secret volume
			}
			err = kubeletfs.Write(src, good(l))
			last = l
		}
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		time.Sleep(3 * time.Millisecond) // bounded pace: a rotation every few ms, not a spin
	}
	if last == nil || (rotations%16 == 3 || rotations%16 == 7 || rotations%16 == 11 || rotations%16 == 15) {
		os.RemoveAll(src)
		last = leaves[0]
		if err := kubeletfs.Write(src, good(last)); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	// The last good material reaches every output, and the sidecar is ready.
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := files.Read(filepath.Join(out, "keystore.jks"))
		if err == nil {
			if c, err := store.Decode(data, []byte(pw)); err == nil && len(c.Keys) == 1 && c.Keys[0].Chain[0].Equal(last.Cert) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last good rotation never reached keystore.jks")
		}
		time.Sleep(50 * time.Millisecond)
	}
	sc.WaitReady(t, true, 30*time.Second)
	close(stop)
	wg.Wait()
	// Let two resyncs pass, then compare the sidecar's footprint.
	time.Sleep(2500 * time.Millisecond)
	after := procCounts(t, pid, sc)
	t.Logf("MEASURED soak: %d rotations in %v (1 in 4 broken), %d reads of JKS, PKCS#12 and PEM outputs: %d torn, %d mismatched; sidecar before → after: %s → %s",
		rotations, elapsed.Round(time.Millisecond), reads.Load(), torn.Load(), mismatched.Load(), before, after)
	writeMeasurement(t, "soak", fmt.Sprintf("rotations=%d reads=%d torn=%d mismatched=%d before=%s after=%s", rotations, reads.Load(), torn.Load(), mismatched.Load(), before, after))
	if reads.Load() < int64(rotations) {
		t.Errorf("only %d reads over %d rotations: the readers did not keep up enough to prove anything", reads.Load(), rotations)
	}
	if after.goroutines > before.goroutines+10 {
		t.Errorf("goroutines grew %d → %d", before.goroutines, after.goroutines)
	}
	if after.fds > before.fds+5 {
		t.Errorf("file descriptors grew %d → %d", before.fds, after.fds)
	}
	if after.threads > before.threads+4 {
		t.Errorf("threads grew %d → %d", before.threads, after.threads)
	}
	// The store password never leaves the password file: not in the log,
	// the metrics or the process's argv.
	_, metrics := sc.Get("/metrics")
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	for what, text := range map[string]string{"log": sc.Log(), "metrics": metrics, "argv": string(cmdline)} {
		if strings.Contains(text, pw) {
			t.Errorf("the store password appears in the sidecar's %s", what)
		}
	}
	if sc.Sum("cassandra_tls_agent_source_errors_total", `store="jks"`) < 1 {
		t.Errorf("no refused source was counted: were the broken inputs seen at all?")
	}
}

// pemBlocks keeps the CERTIFICATE blocks (certs) or the others (the key)
// of a combined key+chain PEM.
func pemBlocks(data []byte, certs bool) []byte {
	var out []byte
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out
		}
		if (b.Type == "CERTIFICATE") == certs {
			out = append(out, pem.EncodeToMemory(b)...)
		}
	}
}

type footprint struct{ goroutines, fds, threads, rssKiB int }

func (f footprint) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, %d threads, %d MiB RSS", f.goroutines, f.fds, f.threads, f.rssKiB>>10)
}

// procCounts reads the sidecar's goroutines (its own metrics) and its
// descriptors, threads and RSS (/proc).
func procCounts(t *testing.T, pid int, sc *agentproc.Sidecar) footprint {
	t.Helper()
	var f footprint
	f.goroutines = int(sc.Metric("go_goroutines", ""))
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	f.fds = len(fds)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		fmt.Sscanf(line, "Threads: %d", &f.threads)
		fmt.Sscanf(line, "VmRSS: %d kB", &f.rssKiB)
	}
	return f
}
