package watch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/kubeletfs"
	"github.com/fsnotify/fsnotify"
)

// recorder collects notifications.
type recorder struct {
	mu       sync.Mutex
	got      []Reason
	ch       chan Reason
	watching chan []string
}

func newRecorder() *recorder { return &recorder{ch: make(chan Reason, 100)} }
func (r *recorder) notify(x Reason) {
	r.mu.Lock()
	r.got = append(r.got, x)
	r.mu.Unlock()
	r.ch <- x
}

func (r *recorder) wait(t *testing.T, want Reason, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case got := <-r.ch:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q notification within %v", want, within)
		}
	}
}

func (r *recorder) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-r.ch:
		t.Fatalf("unexpected notification %q", got)
	case <-time.After(d):
	}
}

// start runs a watcher and returns once its first watches are in place
// (or at once in polling mode, which has none).
func start(t *testing.T, o Options) *recorder {
	t.Helper()
	r := newRecorder()
	watching := make(chan []string, 16)
	o.OnWatch = func(dirs []string) {
		select {
		case watching <- dirs:
		default: // never block the watcher; a test waits for one set at a time
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, o, r.notify); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	r.watching = watching
	if o.NewWatcher == nil && !o.Poll {
		r.waitWatching(t, o.Dirs[0])
	}
	return r
}

// waitWatching returns once dir is among the watched directories.
func (r *recorder) waitWatching(t *testing.T, dir string) {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case dirs := <-r.watching:
			if slices.Contains(dirs, dir) {
				return
			}
		case <-deadline:
			t.Fatalf("%s not watched within 2s", dir)
		}
	}
}

func TestKubeletAtomicSwapIsSeen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if err := kubeletfs.Write(dir, map[string][]byte{"tls.crt": []byte("1"), "tls.key": []byte("1")}); err != nil {
		t.Fatal(err)
	}
	r := start(t, Options{Dirs: []string{dir}, Debounce: 50 * time.Millisecond, Resync: time.Hour})
	for i := 0; i < 3; i++ {
		if err := kubeletfs.Write(dir, map[string][]byte{"tls.crt": []byte{byte(i)}, "tls.key": []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
		r.wait(t, Event, 2*time.Second)
		// A whole swap is many events; the debounce folds them into one.
		r.quiet(t, 150*time.Millisecond)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "tls.crt")); string(got) != "\x02" {
		t.Fatalf("tls.crt through the symlinks = %q", got)
	}
}

func TestDeletedAndRecreatedDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	os.MkdirAll(dir, 0o755)
	r := start(t, Options{Dirs: []string{dir}, Debounce: 50 * time.Millisecond, Resync: time.Hour})
	os.RemoveAll(dir)
	r.wait(t, Event, 2*time.Second)
	os.MkdirAll(dir, 0o755)
	r.wait(t, Event, 2*time.Second)
	// The watch is back on the new directory: a write inside is seen.
	r.waitWatching(t, dir)
	for len(r.ch) > 0 {
		<-r.ch
	}
	os.WriteFile(filepath.Join(dir, "tls.crt"), []byte("x"), 0o600)
	r.wait(t, Event, 2*time.Second)
}

func TestEditorRenameWriteAndResync(t *testing.T) {
	dir := t.TempDir()
	r := start(t, Options{Dirs: []string{dir}, Debounce: 30 * time.Millisecond, Resync: 300 * time.Millisecond})
	tmp := filepath.Join(dir, ".tls.crt.swp")
	os.WriteFile(tmp, []byte("new"), 0o600)
	os.Rename(tmp, filepath.Join(dir, "tls.crt"))
	r.wait(t, Event, 2*time.Second)
	r.wait(t, Resync, 2*time.Second)
}

func TestFallsBackToPollingWithoutInotify(t *testing.T) {
	var modes []Mode
	var mu sync.Mutex
	r := start(t, Options{Dirs: []string{t.TempDir()}, PollInterval: 40 * time.Millisecond, Resync: time.Hour,
		NewWatcher: func() (*fsnotify.Watcher, error) { return nil, errors.New("too many open files") },
		OnMode:     func(m Mode) { mu.Lock(); modes = append(modes, m); mu.Unlock() }})
	r.wait(t, Poll, time.Second)
	r.wait(t, Poll, time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(modes) != 1 || modes[0] != ModePoll {
		t.Fatalf("modes = %v, want [poll]", modes)
	}
}

// BenchmarkKubeletSwapToNotify measures a kubelet ..data swap until the
// notification, with a 1 ms debounce (the default is 500 ms: what is timed
// here is the watcher's own latency, comparable to configmap-reload's).
func BenchmarkKubeletSwapToNotify(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "tls")
	kubeletfs.Write(dir, map[string][]byte{"tls.crt": []byte("0")})
	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watching := make(chan []string, 1)
	go Run(ctx, Options{Dirs: []string{dir}, Debounce: time.Millisecond, Resync: time.Hour,
		OnWatch: func(d []string) {
			select {
			case watching <- d:
			default:
			}
		}}, r.notify)
	<-watching
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		kubeletfs.Write(dir, map[string][]byte{"tls.crt": []byte{byte(i)}})
		<-r.ch
		// Drain a late second notification from the same swap, untimed.
		b.StopTimer()
		select {
		case <-r.ch:
		case <-time.After(5 * time.Millisecond):
		}
		b.StartTimer()
	}
}
