// Package kubeletfs writes a directory exactly the way the kubelet's
// AtomicWriter updates a Secret or ConfigMap volume, so tests and the demo
// exercise the watcher against the real sequence rather than a simplified one.
package kubeletfs

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

const (
	dataDir    = "..data"
	newDataDir = "..data_tmp"
)

// Write publishes files into dir as one atomic update:
//  1. write every file into a new hidden timestamped directory ..<ts>;
//  2. point a ..data_tmp symlink at it;
//  3. rename ..data_tmp over ..data (the atomic step);
//  4. create the per-key symlinks name → ..data/name (first time only) and
//     remove those of keys that are gone;
//  5. remove the previous timestamped directory.
func Write(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	oldTS, _ := os.Readlink(filepath.Join(dir, dataDir))
	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tsDir, name), data, 0o644); err != nil {
			return err
		}
	}
	tmpLink := filepath.Join(dir, newDataDir)
	os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		return err
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataDir)); err != nil {
		return err
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join(dataDir, name), link); err != nil {
				return err
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name()[0] == '.' || files[e.Name()] != nil {
			continue
		}
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && filepath.Dir(target) == dataDir {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	if oldTS != "" {
		if err := os.RemoveAll(filepath.Join(dir, oldTS)); err != nil {
			return fmt.Errorf("removing old data dir: %w", err)
		}
	}
	return nil
}

// ReadDir reads the regular files of a plain directory into a map, the
// input of Write (e.g. to publish what certgen wrote).
func ReadDir(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if e.Type().IsRegular() {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			out[e.Name()] = data
		}
	}
	return out, nil
}
