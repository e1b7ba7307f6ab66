package atomicfile

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func readAll(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = string(data)
	}
	return out
}

func generations(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var gens []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "..") {
			gens = append(gens, e.Name())
		}
	}
	sort.Strings(gens)
	return gens
}

// TestWriteDirLayoutModesAndGenerations: names are symlinks into ..data,
// files have the mode asked for, the previous generation is kept with
// KeepPrevious (and only it), other files of the directory are left alone.
func TestWriteDirLayoutModesAndGenerations(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keystore.pem"), []byte("other output"), 0o600)
	o := DirOptions{Mode: 0o640, KeepPrevious: true}
	for i, v := range []string{"1", "2", "3"} {
		if err := WriteDir(dir, map[string][]byte{"tls.key": []byte("key" + v), "tls.crt": []byte("crt" + v)}, o); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, dir, "tls.key", "tls.crt"); got["tls.key"] != "key"+v || got["tls.crt"] != "crt"+v {
			t.Fatalf("generation %s: %v", v, got)
		}
		if n := len(generations(t, dir)); n != min(i+1, 2) {
			t.Errorf("after %d writes: %d generations %v, want the current and the previous", i+1, n, generations(t, dir))
		}
	}
	for _, n := range []string{"tls.key", "tls.crt"} {
		if target, err := os.Readlink(filepath.Join(dir, n)); err != nil || target != filepath.Join(DataDir, n) {
			t.Errorf("%s -> %q (%v), want a symlink into ..data", n, target, err)
		}
		if st, _ := os.Stat(filepath.Join(dir, n)); st.Mode().Perm() != 0o640 {
			t.Errorf("%s mode %v", n, st.Mode().Perm())
		}
	}
	if got := readAll(t, dir, "keystore.pem"); got["keystore.pem"] != "other output" {
		t.Errorf("another output was touched")
	}
	// A name that is gone loses its symlink; a temp file is never left.
	if err := WriteDir(dir, map[string][]byte{"tls.key": []byte("k")}, o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "tls.crt")); !os.IsNotExist(err) {
		t.Errorf("tls.crt should be gone: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "tmp") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestWriteDirMigratesPlainFiles: a directory of plain files (the layout
// before ..data) becomes the symlink layout; each name keeps resolving to
// a complete file throughout.
func TestWriteDirMigratesPlainFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tls.key"), []byte("old key"), 0o644)
	os.WriteFile(filepath.Join(dir, "tls.crt"), []byte("old crt"), 0o644)
	if err := WriteDir(dir, map[string][]byte{"tls.key": []byte("new key"), "tls.crt": []byte("new crt"), "ca.crt": []byte("ca")}, DirOptions{}); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, dir, "tls.key", "tls.crt", "ca.crt")
	if got["tls.key"] != "new key" || got["tls.crt"] != "new crt" || got["ca.crt"] != "ca" {
		t.Fatalf("after migration: %v", got)
	}
	for _, n := range []string{"tls.key", "tls.crt", "ca.crt"} {
		if st, err := os.Lstat(filepath.Join(dir, n)); err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is not a symlink: %v", n, err)
		}
		if st, _ := os.Stat(filepath.Join(dir, n)); st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want the default 0600", n, st.Mode().Perm())
		}
	}
}

func TestWriteDirRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", "a/b", "..data", ".hidden"} {
		if err := WriteDir(dir, map[string][]byte{name: nil}, DirOptions{}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	os.Mkdir(filepath.Join(dir, "tls.key"), 0o755)
	if err := WriteDir(dir, map[string][]byte{"tls.key": []byte("k")}, DirOptions{}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a directory in place of a name: %v", err)
	}
	if gens := generations(t, dir); len(gens) != 0 {
		t.Errorf("written before refusing: %v", gens)
	}
}
