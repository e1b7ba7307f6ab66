package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// StoreState is where a store stands, as /readyz reports it.
type StoreState string

const (
	StatePending         StoreState = "pending"          // not looked at yet
	StateServed          StoreState = "served"           // outputs current, endpoints serve the leaf (or nothing to verify)
	StateHeld            StoreState = "held"             // current, with a rotation change held by a gate (still ready)
	StateUnverified      StoreState = "unverified"       // outputs current, the served certificate not confirmed
	StateSourceInvalid   StoreState = "source_invalid"   // the source was refused; the previous outputs stay
	StateOutputFailed    StoreState = "output_failed"    // an output could not be written
	StateRestartRequired StoreState = "restart_required" // a password changed; only a restart loads the stores
)

// ready reports whether a store in this state lets the pod be ready.
func (s StoreState) ready() bool { return s == StateServed || s == StateHeld }

// StoreStatus is one store's line in the health snapshot.
type StoreStatus struct {
	Store  string     `json:"store"`
	State  StoreState `json:"state"`
	Detail string     `json:"detail,omitempty"`
}

// Status is the snapshot /healthz and /readyz answer from.
type Status struct {
	Healthy    bool          `json:"healthy"`
	HealthWhy  string        `json:"health"`
	Ready      bool          `json:"ready"`
	Stores     []StoreStatus `json:"stores"`
	LastSyncAt time.Time     `json:"lastSync"`
}

// ReadyWhy says, one line per store, why the pod is not ready ("" when it is).
func (s Status) ReadyWhy() string {
	var lines []string
	for _, st := range s.Stores {
		if !st.State.ready() {
			lines = append(lines, fmt.Sprintf("store %s: %s: %s", st.Store, st.State, st.Detail))
		}
	}
	return strings.Join(lines, "\n")
}

// Health holds the snapshot. Syncs write it as soon as each stage knows
// something; probes read it and never wait on a sync.
type Health struct {
	now     func() time.Time
	stale   time.Duration // no sync for this long → unhealthy
	mu      sync.Mutex
	running bool
	beat    time.Time
	stores  []StoreStatus
}

// NewHealth starts every store pending. stale bounds the time between two
// syncs (a resync is due every resync interval) before the sync loop is
// considered stuck.
func NewHealth(stores []string, stale time.Duration, now func() time.Time) *Health {
	h := &Health{now: now, stale: stale, beat: now()}
	for _, s := range stores {
		h.stores = append(h.stores, StoreStatus{Store: s, State: StatePending, Detail: "not looked at yet"})
	}
	return h
}

// Running marks the sidecar's loops as started (true) or stopped.
func (h *Health) Running(on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running, h.beat = on, h.now()
}

// Beat records that the sync loop is making progress.
func (h *Health) Beat() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.beat = h.now()
}

// Set records a store's state.
func (h *Health) Set(store string, state StoreState, detail string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.stores {
		if h.stores[i].Store == store {
			h.stores[i] = StoreStatus{Store: store, State: state, Detail: detail}
		}
	}
}

// State returns a store's current state.
func (h *Health) State(store string) StoreState {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.stores {
		if s.Store == store {
			return s.State
		}
	}
	return ""
}

// Status returns a copy of the snapshot.
func (h *Health) Status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := Status{Ready: true, Stores: append([]StoreStatus(nil), h.stores...), LastSyncAt: h.beat}
	for _, s := range h.stores {
		st.Ready = st.Ready && s.State.ready()
	}
	switch since := h.now().Sub(h.beat); {
	case !h.running:
		st.HealthWhy = "sidecar loops not running"
	case since > h.stale:
		st.HealthWhy = fmt.Sprintf("no sync for %s", since.Round(time.Second))
	default:
		st.Healthy, st.HealthWhy = true, "ok"
	}
	return st
}

// Handler serves /metrics (from metricsHandler), /healthz and /readyz. Both
// probes answer plain text; ?format=json gives the whole snapshot.
func (h *Health) Handler(metricsHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		st := h.Status()
		answer(w, r, st, st.Healthy, st.HealthWhy)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		st := h.Status()
		answer(w, r, st, st.Ready, st.ReadyWhy())
	})
	return mux
}

func answer(w http.ResponseWriter, r *http.Request, st Status, ok bool, why string) {
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	if r.URL.Query().Get("format") == "json" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(st)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	if why == "" {
		why = "ok"
	}
	fmt.Fprintln(w, why)
}
