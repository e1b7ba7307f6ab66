// Package watch tells when the files of a certificate source may have
// changed. It watches directories, never single files — the kubelet swaps a
// Secret volume by renaming a ..data symlink, and a watch on a file would
// follow the old target and go silent — and treats every event as "maybe
// changed": deciding what really changed is the caller's job, by content.
// Debouncing folds a burst of events into one notification; a periodic
// resync covers lost events; a watcher that fails is rebuilt; where inotify
// is unavailable it falls back to polling.
package watch

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Reason says why a notification fired.
type Reason string

const (
	Event  Reason = "event"  // a filesystem event, after debouncing
	Resync Reason = "resync" // the periodic resync
	Poll   Reason = "poll"   // the polling fallback's tick
)

// Mode is how changes are detected.
type Mode string

const (
	ModeInotify Mode = "inotify"
	ModePoll    Mode = "poll"
)

// Options configure a Watcher.
type Options struct {
	// Dirs to watch. Their parents are watched too, so a directory that is
	// deleted and re-created is picked up again.
	Dirs []string
	// Debounce folds events arriving within this window into one
	// notification (default 500ms).
	Debounce time.Duration
	// Resync notifies periodically even without events (default 1m).
	Resync time.Duration
	// Poll forces polling; PollInterval is its period (default 2s).
	Poll         bool
	PollInterval time.Duration
	Log          *slog.Logger
	// OnMode is told the detection mode whenever it is chosen or changes.
	OnMode func(Mode)
	// OnWatch is told the watched directories whenever a watch is added
	// (at start, and when a deleted directory comes back). Tests wait on it
	// instead of sleeping.
	OnWatch func(dirs []string)
	// NewWatcher is injectable to simulate inotify failures.
	NewWatcher func() (*fsnotify.Watcher, error)
}

func (o Options) withDefaults() Options {
	if o.Debounce <= 0 {
		o.Debounce = 500 * time.Millisecond
	}
	if o.Resync <= 0 {
		o.Resync = time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.OnMode == nil {
		o.OnMode = func(Mode) {}
	}
	if o.OnWatch == nil {
		o.OnWatch = func([]string) {}
	}
	if o.NewWatcher == nil {
		o.NewWatcher = fsnotify.NewWatcher
	}
	return o
}

// Run calls notify until ctx ends: after debounced events, on every resync,
// and on every poll tick in polling mode. notify runs on Run's goroutine, so
// calls never overlap; events arriving meanwhile are coalesced.
func Run(ctx context.Context, o Options, notify func(Reason)) error {
	o = o.withDefaults()
	resync := time.NewTicker(o.Resync)
	defer resync.Stop()
	for ctx.Err() == nil {
		if o.Poll {
			o.OnMode(ModePoll)
			return poll(ctx, o, resync, notify)
		}
		w, err := o.NewWatcher()
		if err != nil {
			o.Log.Warn("inotify unavailable: falling back to polling", "error", err.Error(), "interval", o.PollInterval.String())
			o.OnMode(ModePoll)
			return poll(ctx, o, resync, notify)
		}
		o.OnMode(ModeInotify)
		err = loop(ctx, o, w, resync, notify)
		w.Close()
		if err == nil {
			return nil
		}
		// A failed watcher (e.g. queue overflow) may have lost events: rebuild
		// it and resync, which re-reads everything.
		o.Log.Warn("watcher failed: rebuilding it", "error", err.Error())
		notify(Resync)
	}
	return nil
}

func poll(ctx context.Context, o Options, resync *time.Ticker, notify func(Reason)) error {
	t := time.NewTicker(o.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			notify(Poll)
		case <-resync.C:
			notify(Resync)
		}
	}
}

// loop runs one fsnotify watcher; it returns nil when ctx ends and an error
// when the watcher fails.
func loop(ctx context.Context, o Options, w *fsnotify.Watcher, resync *time.Ticker, notify func(Reason)) error {
	ensure := func() {
		added := false
		for _, d := range watchSet(o.Dirs) {
			if slices.Contains(w.WatchList(), d) {
				continue
			}
			switch err := w.Add(d); {
			case err == nil:
				added = true
			case !os.IsNotExist(err):
				o.Log.Warn("cannot watch directory", "dir", d, "error", err.Error())
			}
		}
		if added {
			o.OnWatch(w.WatchList())
		}
	}
	ensure()
	var (
		debounce <-chan time.Time
		timer    *time.Timer
		first    time.Time
		// After any event, and while a directory is missing, look for the
		// directories again at the debounce pace (its parent's Create event
		// may have come before we re-added it). The ticker stops once a tick
		// finds every directory watched: an idle watcher does not wake up.
		recheck  *time.Ticker
		recheckC <-chan time.Time
	)
	armRecheck := func() {
		if recheck == nil {
			recheck = time.NewTicker(o.Debounce)
			recheckC = recheck.C
		}
	}
	defer func() {
		if recheck != nil {
			recheck.Stop()
		}
	}()
	if len(w.WatchList()) < len(watchSet(o.Dirs)) {
		armRecheck()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errClosed
			}
			o.Log.Debug("filesystem event", "name", ev.Name, "op", ev.Op.String())
			// Trailing debounce: wait until events have been quiet for the
			// window (a writer that puts tls.crt and tls.key down one after
			// the other is seen once), but never longer than 10 windows.
			switch {
			case timer == nil:
				timer, first = time.NewTimer(o.Debounce), time.Now()
				debounce = timer.C
			case time.Since(first) < 10*o.Debounce:
				timer.Reset(o.Debounce)
			}
			ensure()
			armRecheck()
		case err, ok := <-w.Errors:
			if !ok {
				return errClosed
			}
			return err
		case <-debounce:
			timer, debounce = nil, nil
			ensure()
			notify(Event)
		case <-recheckC:
			if len(w.WatchList()) < len(watchSet(o.Dirs)) {
				before := len(w.WatchList())
				ensure()
				if len(w.WatchList()) > before {
					notify(Event) // a directory came back
				}
			}
			if len(w.WatchList()) == len(watchSet(o.Dirs)) && timer == nil {
				recheck.Stop()
				recheck, recheckC = nil, nil
			}
		case <-resync.C:
			ensure()
			if len(w.WatchList()) < len(watchSet(o.Dirs)) {
				armRecheck()
			}
			notify(Resync)
		}
	}
}

var errClosed = errors.New("watcher channels closed")

// watchSet is every directory and its parent, cleaned and de-duplicated.
func watchSet(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		d = filepath.Clean(d)
		for _, p := range []string{d, filepath.Dir(d)} {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}
