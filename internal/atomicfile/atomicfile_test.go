package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesAndSetsMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keystore.jks")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o600, 0o640} {
		if err := Write(p, []byte("new"), mode); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(p)
		st, _ := os.Stat(p)
		if string(got) != "new" || st.Mode().Perm() != mode {
			t.Fatalf("got %q mode %v, want %q mode %v", got, st.Mode().Perm(), "new", mode)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestWriteFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out")
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("x"), 0o600); err == nil {
		t.Fatal("writing over a directory succeeded")
	}
	os.WriteFile(filepath.Join(dir, "plain"), []byte("x"), 0o600)
	if err := Write(filepath.Join(dir, "plain", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("writing below a regular file succeeded")
	}
	if err := Write(filepath.Join(dir, "new", "sub", "f"), []byte("x"), 0o600); err != nil {
		t.Fatalf("missing parents were not created: %v", err)
	}
	os.RemoveAll(filepath.Join(dir, "new"))
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}
