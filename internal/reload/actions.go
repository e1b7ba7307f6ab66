package reload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
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
	URL string
	// Username and PasswordFile (read at every call): basic authentication.
	Username, PasswordFile string
	Client                 *http.Client
}

// ReloadMBean and ReloadOperation are Cassandra 4.0+'s forced SSL reload.
const (
	ReloadMBean     = "org.apache.cassandra.net:type=MessagingService"
	ReloadOperation = "reloadSslCertificates"
)

func (j *Jolokia) Name() string { return "jolokia" }

func (j *Jolokia) Run(ctx context.Context) error {
	body, _ := json.Marshal(map[string]any{"type": "exec", "mbean": ReloadMBean, "operation": ReloadOperation, "arguments": []any{}})
	r := httpRequest{method: http.MethodPost, url: j.URL, body: body, contentType: "application/json",
		creds: Credentials{Username: j.Username, PasswordFile: j.PasswordFile}, client: j.Client, maxBody: 1 << 20}
	resp, snippet, err := r.do(ctx)
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", r.describe(), resp.status, snippet(resp.body))
	}
	// Jolokia reports failures (unknown MBean, exceptions) with HTTP 200 and
	// the real status in the body.
	var reply struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(resp.body, &reply); err != nil {
		return fmt.Errorf("%s: unreadable Jolokia response: %w: %s", r.describe(), err, snippet(resp.body))
	}
	if reply.Status != http.StatusOK {
		return fmt.Errorf("%s: Jolokia status %d: %s", r.describe(), reply.Status, snippet([]byte(reply.Error)))
	}
	return nil
}

// Exec runs a command, e.g. nodetool reloadssl. Non-zero exit is an error.
//
// The command runs in a process group of its own. When its context ends
// (the step's timeout, or the agent stopping), the whole group gets
// SIGTERM, then SIGKILL after KillGrace: a wrapper script's children must
// not outlive the action, nor keep the agent waiting. Whatever the command
// leaves running in its group when it exits is ended the same way, and an
// inherited output pipe cannot hold Wait (WaitDelay).
type Exec struct {
	Command []string
	// KillGrace is the time between SIGTERM and SIGKILL (default 2s).
	KillGrace time.Duration
}

func (e *Exec) Name() string { return "exec" }

// maxOutput bounds the output kept for the error message.
const maxOutput = 64 << 10

func (e *Exec) Run(ctx context.Context) error {
	grace := e.KillGrace
	if grace <= 0 {
		grace = 2 * time.Second
	}
	// Only the program's name in errors: arguments may carry credentials
	// (nodetool -pw …).
	name := filepath.Base(e.Command[0])
	cmd := exec.Command(e.Command[0], e.Command[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &cappedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = grace
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-ctx.Done():
		endGroup(pgid, grace, exited)
		return fmt.Errorf("%s: %w; its process group was ended", name, ctx.Err())
	}
	endGroup(pgid, grace, nil) // whatever it left behind
	if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		return fmt.Errorf("%s: %w: %s", name, err, trunc(out.Bytes()))
	}
	return nil
}

// endGroup ends the process group pgid: SIGTERM, then SIGKILL to whatever
// is left after grace. With exited, it also waits for the group's leader to
// be reaped (cmd.Wait, which WaitDelay bounds).
func endGroup(pgid int, grace time.Duration, exited <-chan error) {
	if syscall.Kill(-pgid, syscall.SIGTERM) != nil {
		return // no process left in the group
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	if exited != nil {
		select {
		case <-exited:
		case <-deadline.C:
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
			return
		}
	}
	// The rest of the group: poll until it is gone or the grace is over.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for groupRunning(pgid) {
		select {
		case <-deadline.C:
			syscall.Kill(-pgid, syscall.SIGKILL)
			return
		case <-tick.C:
		}
	}
}

// groupRunning reports whether a process of group pgid still runs. Orphans
// of the group are reaped here when they were reparented to the agent (it
// is PID 1 in its container, or a subreaper); zombies that another process
// must reap do not count.
func groupRunning(pgid int) bool {
	for {
		var ws syscall.WaitStatus
		if pid, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
			break
		}
	}
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true // cannot tell: the caller's grace bounds the wait
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp …; comm may contain spaces and parentheses.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			return true
		}
	}
	return false
}

// cappedBuffer keeps the first max bytes written and discards the rest.
// Stdout and Stderr share it: exec.Cmd then writes from one goroutine.
type cappedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *cappedBuffer) Bytes() []byte { return b.buf.Bytes() }

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
	// Username with PasswordFile (basic authentication) or BearerTokenFile,
	// read at every call; without them a URL's user:password@ is sent as
	// basic authentication.
	Username, PasswordFile, BearerTokenFile string
	Client                                  *http.Client
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
	r := httpRequest{method: method, url: w.URL, client: w.Client,
		creds: Credentials{Username: w.Username, PasswordFile: w.PasswordFile, BearerTokenFile: w.BearerTokenFile}}
	resp, snippet, err := r.do(ctx)
	if err != nil {
		return err
	}
	if resp.status != want {
		return fmt.Errorf("%s: status %d, want %d: %s", r.describe(), resp.status, want, snippet(resp.body))
	}
	return nil
}

// trunc makes text from a server or a command fit for an error message: at
// most 300 bytes, control characters and invalid UTF-8 shown as '?', so a
// body cannot forge log lines or smuggle terminal escapes.
func trunc(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) > 300 {
		cut := 300
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return s[:cut] + "…"
	}
	return s
}
