package reload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Action is one way to make a process pick up new stores.
type Action interface {
	// Name labels metrics and logs: jolokia, exec, signal, http.
	Name() string
	Run(ctx context.Context) error
}

// Jolokia runs MessagingService.reloadSslCertificates — what `nodetool
// reloadssl` does — through a Jolokia agent in the Cassandra JVM.
type Jolokia struct {
	URL                string
	Username, Password string
	Client             *http.Client
}

// ReloadMBean and ReloadOperation are Cassandra 4.0+'s forced SSL reload.
const (
	ReloadMBean     = "org.apache.cassandra.net:type=MessagingService"
	ReloadOperation = "reloadSslCertificates"
)

func (j *Jolokia) Name() string { return "jolokia" }

func (j *Jolokia) Run(ctx context.Context) error {
	body, _ := json.Marshal(map[string]any{"type": "exec", "mbean": ReloadMBean, "operation": ReloadOperation, "arguments": []any{}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if j.Username != "" {
		req.SetBasicAuth(j.Username, j.Password)
	}
	resp, err := client(j.Client).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jolokia: HTTP %d: %s", resp.StatusCode, trunc(data))
	}
	// Jolokia reports failures (unknown MBean, exceptions) with HTTP 200 and
	// the real status in the body.
	var r struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("jolokia: unreadable response: %w", err)
	}
	if r.Status != http.StatusOK {
		return fmt.Errorf("jolokia: status %d: %s", r.Status, r.Error)
	}
	return nil
}

// Exec runs a command, e.g. nodetool reloadssl. Non-zero exit is an error.
type Exec struct {
	Command []string
}

func (e *Exec) Name() string { return "exec" }

func (e *Exec) Run(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, e.Command[0], e.Command[1:]...)
	cmd.WaitDelay = 0
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", e.Command[0], ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(e.Command, " "), err, trunc(out))
	}
	return nil
}

// Signal sends a signal to a process found by pid file or by a substring of
// its command line (in a pod with shareProcessNamespace: true), e.g. SIGTERM
// to Reaper's JVM so its container restarts with the new stores.
type Signal struct {
	Signal  syscall.Signal
	PIDFile string
	Process string
	// ProcRoot is /proc; tests may point it elsewhere.
	ProcRoot string
}

func (s *Signal) Name() string { return "signal" }

func (s *Signal) Run(ctx context.Context) error {
	pids, err := s.find()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, s.Signal); err != nil {
			return fmt.Errorf("signal %v to pid %d: %w", s.Signal, pid, err)
		}
	}
	return nil
}

func (s *Signal) find() ([]int, error) {
	if s.PIDFile != "" {
		data, err := os.ReadFile(s.PIDFile)
		if err != nil {
			return nil, fmt.Errorf("pid file: %w", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("pid file %s: %q is not a pid", s.PIDFile, trunc(data))
		}
		return []int{pid}, nil
	}
	root := s.ProcRoot
	if root == "" {
		root = "/proc"
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(root, e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " "), s.Process) {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("no process whose command line contains %q (is shareProcessNamespace set?)", s.Process)
	}
	return pids, nil
}

// ParseSignal accepts SIGHUP, HUP, hup, 1.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	switch strings.TrimPrefix(strings.ToUpper(s), "SIG") {
	case "HUP":
		return syscall.SIGHUP, nil
	case "INT":
		return syscall.SIGINT, nil
	case "TERM":
		return syscall.SIGTERM, nil
	case "USR1":
		return syscall.SIGUSR1, nil
	case "USR2":
		return syscall.SIGUSR2, nil
	case "KILL":
		return syscall.SIGKILL, nil
	}
	return 0, fmt.Errorf("unknown signal %q (want HUP, INT, TERM, USR1, USR2, KILL or a number)", s)
}

// Webhook calls a URL and expects a status.
type Webhook struct {
	URL            string
	Method         string
	ExpectedStatus int
	Client         *http.Client
}

func (w *Webhook) Name() string { return "http" }

func (w *Webhook) Run(ctx context.Context) error {
	method := w.Method
	if method == "" {
		method = http.MethodPost
	}
	want := w.ExpectedStatus
	if want == 0 {
		want = http.StatusOK
	}
	req, err := http.NewRequestWithContext(ctx, method, w.URL, nil)
	if err != nil {
		return err
	}
	resp, err := client(w.Client).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("http: %s %s: status %d, want %d: %s", method, w.URL, resp.StatusCode, want, trunc(data))
	}
	return nil
}

func client(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return http.DefaultClient
}

func trunc(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
