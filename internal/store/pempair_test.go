package store_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/store"
)

// readPair reads tls.key and tls.crt the way a reader of a kubelet-style
// directory should: it opens the directory once — pem.dir/..data, or
// pem.dir itself when there is no ..data — and reads both files relative
// to that one open directory, so a swap in between cannot mix them.
// ..data that exists but does not resolve (a reader that read the link
// just before two swaps removed its generation) is a retry, never a
// fallback to the names themselves, which resolve one at a time.
func readPair(dir string) (key, crt []byte, err error) {
	data := filepath.Join(dir, "..data")
	root, err := os.OpenRoot(data)
	if errors.Is(err, fs.ErrNotExist) {
		if _, lerr := os.Lstat(data); errors.Is(lerr, fs.ErrNotExist) {
			root, err = os.OpenRoot(dir)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	if key, err = root.ReadFile(store.PEMKeyFile); err != nil {
		return nil, nil, err
	}
	crt, err = root.ReadFile(store.PEMCertFile)
	return key, crt, err
}

// memDir is a temporary directory on tmpfs when there is one — where
// kubelet Secret volumes and emptyDir{medium: Memory} live — so that 2,000
// rotations measure renames, not the disk's fsync.
func memDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "cta-pem-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestPEMPairNeverMismatched rotates the PEM outputs between two leaves
// 2,000 times while a reader reads tls.key and tls.crt through one open
// directory: every pair it reads belongs together.
func TestPEMPairNeverMismatched(t *testing.T) {
	ca, err := pkitest.CA("ca")
	if err != nil {
		t.Fatal(err)
	}
	var ms [2]*pki.Material
	var keys, crts [2][]byte
	for i := range ms {
		leaf, err := pkitest.Leaf(ca, "node1", pkitest.P256)
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = &pki.Material{Key: leaf.Key, Leaf: leaf.Cert, CAs: []*x509.Certificate{ca.Cert}}
	}
	dir := filepath.Join(memDir(t), "pem")
	spec := store.Spec{PEMDir: dir}
	for i := range ms {
		if _, err := store.Publish(ms[i], spec, time.Now()); err != nil {
			t.Fatal(err)
		}
		if keys[i], crts[i], err = readPair(dir); err != nil {
			t.Fatal(err)
		}
	}
	which := func(b []byte, set [2][]byte) int {
		for i := range set {
			if bytes.Equal(b, set[i]) {
				return i
			}
		}
		return -1
	}

	const rotations = 2000
	var pairs, mismatches, transient atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			key, crt, err := readPair(dir)
			if err != nil {
				// A generation removed between opening the directory and
				// reading it: the reader retries; never a mixed pair.
				if errors.Is(err, fs.ErrNotExist) {
					transient.Add(1)
					continue
				}
				t.Errorf("read: %v", err)
				return
			}
			pairs.Add(1)
			if k, c := which(key, keys), which(crt, crts); k < 0 || k != c {
				mismatches.Add(1)
			}
		}
	}()
	start := time.Now()
	for i := 0; i < rotations; i++ {
		if _, err := store.Publish(ms[i%2], spec, time.Now()); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d rotations in %v; %d pairs read, %d mismatched, %d retried",
		rotations, time.Since(start).Round(time.Millisecond), pairs.Load(), mismatches.Load(), transient.Load())
	if mismatches.Load() != 0 {
		t.Errorf("%d of %d pairs read were mismatched", mismatches.Load(), pairs.Load())
	}
	if pairs.Load() < 100 {
		t.Errorf("only %d pairs read: the check proves nothing", pairs.Load())
	}
}

// TestPEMPairMigrationUnchangedAndMode: plain files from the layout before
// ..data are migrated (content kept); publishing the same material again
// writes nothing (no new generation); a new mode is applied without a
// rewrite; ReadBack reads the published pair.
func TestPEMPairMigrationUnchangedAndMode(t *testing.T) {
	m := material(t, 1)
	dir := filepath.Join(t.TempDir(), "pem")
	key, err := x509.MarshalPKCS8PrivateKey(m.Key)
	if err != nil {
		t.Fatal(err)
	}
	// What an older agent left: plain files.
	legacy := map[string][]byte{
		store.PEMKeyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
		store.PEMCertFile: pkitest.CertPEM(m.Leaf),
		store.PEMCAFile:   pkitest.CertPEM(m.CAs...),
	}
	os.MkdirAll(dir, 0o755)
	for n, data := range legacy {
		os.WriteFile(filepath.Join(dir, n), data, 0o644)
	}
	spec := store.Spec{PEMDir: dir}
	res, err := store.Publish(m, spec, time.Now())
	if err != nil || len(res.Written) != 4 { // the pair, and keystore.pem (new)
		t.Fatalf("migration: %v %+v", err, res)
	}
	for n, data := range legacy {
		p := filepath.Join(dir, n)
		if target, err := os.Readlink(p); err != nil || target != filepath.Join("..data", n) {
			t.Errorf("%s -> %q (%v)", n, target, err)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, data) {
			t.Errorf("%s changed content in the migration", n)
		}
	}
	gen, _ := os.Readlink(filepath.Join(dir, "..data"))

	res, err = store.Publish(m, spec, time.Now())
	if err != nil || res.Changed() || len(res.Unchanged) != 4 {
		t.Fatalf("second publish: %v %+v", err, res)
	}
	if again, _ := os.Readlink(filepath.Join(dir, "..data")); again != gen {
		t.Errorf("unchanged material swapped ..data: %s -> %s", gen, again)
	}
	spec.Mode = 0o640
	if res, err = store.Publish(m, spec, time.Now()); err != nil || res.Changed() {
		t.Fatalf("mode change: %v %+v", err, res)
	}
	for _, n := range []string{store.PEMKeyFile, store.PEMCertFile, store.PEMCAFile, store.PEMKeystoreFile} {
		if st, _ := os.Stat(filepath.Join(dir, n)); st.Mode().Perm() != 0o640 {
			t.Errorf("%s mode %v, want 0640", n, st.Mode().Perm())
		}
	}
	back, err := store.ReadBack(spec)
	if err != nil || back == nil || !back.Leaf.Equal(m.Leaf) || len(back.CAs) != 1 {
		t.Fatalf("ReadBack: %v %+v", err, back)
	}
}
