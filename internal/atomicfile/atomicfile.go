// Package atomicfile replaces files so that a reader sees either the old
// content or the new, never a mix — Cassandra may open a keystore at any
// moment, and a crash mid-write must not leave a truncated one behind.
package atomicfile

import (
	"bytes"

	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/files"
)

// Write replaces path with data: it writes a temporary file in the same
// directory (so the rename cannot cross filesystems), fsyncs it, sets mode,
// renames it over path and fsyncs the directory so the rename survives a
// crash. On any error the old file is left as it was and the temporary file
// is removed. Missing parent directories are created (0755): outputs usually
// go to a fresh emptyDir.
func Write(path string, data []byte, mode fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if st, statErr := os.Stat(path); statErr == nil && st.IsDir() {
		return fmt.Errorf("write %s: is a directory", path)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: create temporary file: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Chmod before the rename so the file never exists at path with the
	// temporary file's default mode.
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: chmod: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if err = os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("write %s: rename: %w", path, err)
	}
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("write %s: fsync directory: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteIfChanged writes data with Write unless path already holds exactly
// data, so readers that watch mtimes see no change for nothing. The mode is
// applied either way.
func WriteIfChanged(path string, data []byte, mode fs.FileMode) (written bool, err error) {
	if old, err := files.Read(path); err == nil && bytes.Equal(old, data) {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm() != mode.Perm() {
			if err := os.Chmod(path, mode.Perm()); err != nil {
				return false, fmt.Errorf("chmod %s: %w", path, err)
			}
		}
		return false, nil
	}
	return true, Write(path, data, mode)
}
