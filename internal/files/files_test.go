package files

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	os.WriteFile(p("ok"), []byte("data\n"), 0o600)
	os.WriteFile(p("blank"), []byte(" \n\t\n"), 0o600)
	os.Symlink(p("ok"), p("link"))
	os.Mkdir(p("dir"), 0o755)
	if err := syscall.Mkfifo(p("fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	big, _ := os.Create(p("big"))
	big.Truncate(MaxSize + 1) // sparse: costs no disk
	big.Close()
	os.Symlink("/dev/zero", p("zero"))

	tests := []struct {
		name     string
		nonEmpty bool
		want     error // nil: success
	}{
		{"ok", true, nil},
		{"link", true, nil},
		{"blank", false, nil},
		{"blank", true, ErrEmpty},
		{"missing", false, ErrMissing},
		{"dir", false, ErrNotRegular},
		{"fifo", false, ErrNotRegular},
		{"zero", false, ErrNotRegular},
		{"big", false, ErrTooLarge},
	}
	for _, tc := range tests {
		read := Read
		if tc.nonEmpty {
			read = ReadNonEmpty
		}
		data, err := read(p(tc.name))
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == nil && len(data) == 0:
			t.Errorf("%s: no data", tc.name)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		case tc.want != nil && err.Error()[:len(p(tc.name))] != p(tc.name):
			t.Errorf("%s: error %q does not start with the path", tc.name, err)
		}
	}
	if _, err := Read(p("missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file is not fs.ErrNotExist: %v", err)
	}
}
