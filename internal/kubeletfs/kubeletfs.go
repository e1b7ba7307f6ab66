// Package kubeletfs writes a directory exactly the way the kubelet's
// AtomicWriter updates a Secret or ConfigMap volume, so tests and the demo
// exercise the watcher against the real sequence rather than a simplified one.
package kubeletfs

import (
	"os"
	"path/filepath"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/atomicfile"
)

// Write publishes files into dir as one atomic update, with the kubelet's
// AtomicWriter sequence (atomicfile.WriteDir, the one implementation the
// agent also publishes its PEM outputs with):
//  1. write every file into a new hidden timestamped directory ..<ts>;
//  2. point a ..data_tmp symlink at it;
//  3. rename ..data_tmp over ..data (the atomic step);
//  4. create the per-key symlinks name → ..data/name (first time only) and
//     remove those of keys that are gone;
//  5. remove the previous timestamped directory.
//
// Like the kubelet, it writes mode 0644 and does not fsync.
func Write(dir string, files map[string][]byte) error {
	return atomicfile.WriteDir(dir, files, atomicfile.DirOptions{Mode: 0o644, NoSync: true})
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
