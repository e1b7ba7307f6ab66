package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// TestFullAndReadOnlyDisk: outputs on a filesystem that fills up, then
// turns read-only. Each failing build exits 1 naming the cause, leaves the
// last good outputs byte for byte, and leaves no temporary file behind. The
// filesystem is a 64 KiB tmpfs in a private mount namespace (unshare -m; CI
// runs as root), so the machine's own mounts are untouched.
func TestFullAndReadOnlyDisk(t *testing.T) {
	need(t, "unshare", "mount", "sha256sum")
	root := t.TempDir()
	ca, err := pkitest.CA("disk CA")
	if err != nil {
		t.Fatal(err)
	}
	src, src2 := filepath.Join(root, "src"), filepath.Join(root, "src2")
	for _, dir := range []string{src, src2} {
		leaf, err := pkitest.Leaf(ca, "node1", pkitest.P256)
		if err != nil {
			t.Fatal(err)
		}
		if err := pkitest.WriteDir(dir, leaf, nil, ca.Cert); err != nil {
			t.Fatal(err)
		}
	}
	// A bundle far larger than the filesystem: its truststore cannot fit.
	var big []byte
	for range 300 {
		c, err := pkitest.CA("filler")
		if err != nil {
			t.Fatal(err)
		}
		big = append(big, pkitest.CertPEM(c.Cert)...)
	}
	writeFile(t, filepath.Join(root, "big.pem"), big)
	writeFile(t, filepath.Join(root, "pw"), []byte("changeit"))
	out := filepath.Join(root, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `
out=$OUT
stores() { "$AGENT" stores --password-file "$ROOT/pw" --keystore "$out/keystore.jks" --truststore "$out/truststore.jks" "$@" 2>&1; echo "exit=$?"; }
mount -t tmpfs -o size=64k tmpfs "$out" || exit 99
echo "== good"; stores --source "$ROOT/src"
echo "== sums-good"; (cd "$out" && sha256sum *)
echo "== full"; stores --source "$ROOT/src" --trust-bundle "$ROOT/big.pem"
echo "== sums-full"; (cd "$out" && sha256sum *)
echo "== ls-full"; ls -A "$out"
mount -o remount,ro "$out" || exit 98
echo "== ro"; stores --source "$ROOT/src2"
echo "== sums-ro"; (cd "$out" && sha256sum *)
echo "== end"
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "OUT="+out, "ROOT="+root, "AGENT="+agentBin)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unshare: %v\n%s", err, b)
	}
	defer func() {
		if t.Failed() {
			t.Logf("what the script printed:\n%s", b)
		}
	}()
	sections := map[string]string{}
	for _, part := range strings.Split(string(b), "== ")[1:] {
		name, body, _ := strings.Cut(part, "\n")
		sections[name] = body
	}
	exit := regexp.MustCompile(`exit=(\d+)`)
	code := func(s string) string {
		if m := exit.FindStringSubmatch(sections[s]); m != nil {
			return m[1]
		}
		return "?"
	}
	if code("good") != "0" {
		t.Fatalf("the good build failed:\n%s", b)
	}
	if code("full") != "1" || !strings.Contains(sections["full"], "no space left on device") {
		t.Errorf("full disk: exit %s, want 1 naming \"no space left on device\":\n%s", code("full"), sections["full"])
	}
	if sections["sums-full"] != sections["sums-good"] {
		t.Errorf("a full disk changed the outputs:\nbefore %s\nafter %s", sections["sums-good"], sections["sums-full"])
	}
	if strings.TrimSpace(sections["ls-full"]) != "keystore.jks\ntruststore.jks" {
		t.Errorf("files left on the full disk: %q (a temporary file survived?)", sections["ls-full"])
	}
	if code("ro") != "1" || !strings.Contains(sections["ro"], "read-only file system") {
		t.Errorf("read-only disk: exit %s, want 1 naming \"read-only file system\":\n%s", code("ro"), sections["ro"])
	}
	if sections["sums-ro"] != sections["sums-good"] {
		t.Errorf("a read-only disk changed the outputs")
	}
}
