package cassnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// NoLockEnv, when set to anything, makes Lock a no-op.
const NoLockEnv = "CASSNODE_NO_LOCK"

var (
	lockMu   sync.Mutex
	lockFile *os.File
)

// Lock makes this process the only one of the checkout running Cassandra nodes: it takes an
// exclusive flock on <cache>/run.lock and keeps it until the process exits (the kernel drops it
// then, even after a crash). Start and StartCluster call it. `go test ./...` runs packages in
// parallel; on 2 cores a 3-node cluster next to a single-node suite starves both, and timing
// assertions fail. Lock waits (polling, logging once to stderr) until ctx ends.
func Lock(ctx context.Context) error {
	lockMu.Lock()
	defer lockMu.Unlock()
	if lockFile != nil || os.Getenv(NoLockEnv) != "" {
		return nil
	}
	dir, err := CacheDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cassnode: %w", err)
	}
	path := filepath.Join(dir, "run.lock") // not fetch.sh's .lock: start.sh runs fetch.sh
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("cassnode: %w", err)
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	start, logged := time.Now(), false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return fmt.Errorf("cassnode: locking %s: %w", path, err)
		}
		if !logged {
			holder, _ := os.ReadFile(path)
			fmt.Fprintf(os.Stderr, "cassnode: waiting for %s, held by pid %s (another test process runs Cassandra; %s=1 to skip)\n",
				path, strings.TrimSpace(string(holder)), NoLockEnv)
			logged = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return fmt.Errorf("cassnode: waiting for %s: %w", path, ctx.Err())
		case <-t.C:
		}
	}
	if logged {
		fmt.Fprintf(os.Stderr, "cassnode: got %s after %v\n", path, time.Since(start).Round(time.Millisecond))
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	lockFile = f
	return nil
}
