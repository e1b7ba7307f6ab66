package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/files"
)

// Names of the kubelet's AtomicWriter layout.
const (
	// DataDir is the symlink to the current generation of a directory
	// published by WriteDir: a reader that opens dir/..data once reads
	// files of one generation only.
	DataDir    = "..data"
	newDataDir = "..data_tmp"
)

// DirOptions shape WriteDir.
type DirOptions struct {
	// Mode of every file (0600 when zero). Directories are 0755.
	Mode fs.FileMode
	// KeepPrevious keeps the generation just replaced until the next
	// write, so that a reader that resolved ..data a moment before the swap
	// can still read it. The kubelet removes it at once.
	KeepPrevious bool
	// NoSync skips fsync (the kubelet writes to tmpfs and does not sync).
	NoSync bool
}

// WriteDir publishes files (name → content) into dir as one atomic update,
// the way the kubelet updates a Secret volume:
//
//  1. write every file into a new hidden timestamped directory ..<ts>;
//  2. point a ..data_tmp symlink at it;
//  3. rename ..data_tmp over ..data — the atomic step;
//  4. make each name a symlink to ..data/name (replacing, by rename, a
//     regular file of that name left by an older layout) and remove the
//     symlinks of names that are gone;
//  5. remove older generations.
//
// Files of dir that are not symlinks into ..data and not among the names
// (other outputs) are left alone. A directory of plain files (the layout
// before this one) is first converted in place, keeping its content, so
// that no reader ever sees a mixed pair while migrating.
func WriteDir(dir string, contents map[string][]byte, o DirOptions) error {
	if o.Mode == 0 {
		o.Mode = 0o600
	}
	for name := range contents {
		if name == "" || strings.ContainsRune(name, '/') || strings.HasPrefix(name, ".") {
			return fmt.Errorf("write %s: %q is not a plain file name", dir, name)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	for name := range contents {
		// Refused before anything is written: a rename cannot replace it.
		if st, err := os.Lstat(filepath.Join(dir, name)); err == nil && st.IsDir() {
			return fmt.Errorf("write %s: is a directory", filepath.Join(dir, name))
		}
	}
	if legacy := plainFiles(dir, contents); legacy != nil {
		if err := publish(dir, legacy, o); err != nil {
			return err
		}
	}
	return publish(dir, contents, o)
}

// plainFiles returns the current content of the names that are regular
// files in dir (the layout written before ..data), or nil when none is.
// Unreadable ones are left out: they are replaced like any other.
func plainFiles(dir string, contents map[string][]byte) map[string][]byte {
	var out map[string][]byte
	for name := range contents {
		p := filepath.Join(dir, name)
		if st, err := os.Lstat(p); err != nil || !st.Mode().IsRegular() {
			continue
		}
		if out == nil {
			out = map[string][]byte{}
		}
		if data, err := files.Read(p); err == nil {
			out[name] = data
		}
	}
	return out
}

func publish(dir string, contents map[string][]byte, o DirOptions) (err error) {
	dataLink := filepath.Join(dir, DataDir)
	oldGen, _ := os.Readlink(dataLink)
	gen, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	swapped := false
	defer func() {
		if err != nil && !swapped {
			os.RemoveAll(gen)
		}
	}()
	if err := os.Chmod(gen, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	for name, data := range contents {
		if err := writeNew(filepath.Join(gen, name), data, o); err != nil {
			return err
		}
	}
	if !o.NoSync {
		if err := syncDir(gen); err != nil {
			return fmt.Errorf("write %s: fsync: %w", gen, err)
		}
	}
	if err := replaceSymlink(filepath.Base(gen), dataLink, filepath.Join(dir, newDataDir)); err != nil {
		return fmt.Errorf("write %s: swapping %s: %w", dir, DataDir, err)
	}
	swapped = true
	for name := range contents {
		link := filepath.Join(dir, name)
		target := filepath.Join(DataDir, name)
		if cur, err := os.Readlink(link); err == nil && cur == target {
			continue
		}
		if err := replaceSymlink(target, link, filepath.Join(dir, "."+name+".link-tmp")); err != nil {
			return fmt.Errorf("write %s: %w", link, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if _, ok := contents[name]; ok {
			continue
		}
		p := filepath.Join(dir, name)
		if target, err := os.Readlink(p); err == nil && filepath.Dir(target) == DataDir && !strings.HasPrefix(name, ".") {
			os.Remove(p) // a name no longer published
		}
	}
	if !o.NoSync {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("write %s: fsync directory: %w", dir, err)
		}
	}
	// Older generations. Failing to remove one is not a failed publish.
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, "..") || name == filepath.Base(gen) || (o.KeepPrevious && name == oldGen) {
			continue
		}
		os.RemoveAll(filepath.Join(dir, name))
	}
	return nil
}

// writeNew creates path (which must not exist) with data and mode, synced.
func writeNew(path string, data []byte, o DirOptions) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, o.Mode.Perm())
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(o.Mode.Perm()) // the umask may have narrowed it
	}
	if err == nil && !o.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// replaceSymlink makes link a symlink to target, atomically: a new symlink
// at tmp, renamed over link.
func replaceSymlink(target, link, tmp string) error {
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
