package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

var (
	_ Discoverer = Static{}
	_ Discoverer = DNS{}
	_ Discoverer = Jolokia{}
)

// fakeJolokia answers like a Jolokia 2 agent (protocol: a POST body is one
// request object or an array of them — a bulk request — and the reply is
// one response object or an array in the same order; a failed request has
// HTTP 200 and the failure in "status", "error_type" and "error").
type fakeJolokia struct {
	// mbeans maps MBean name → attribute → value; a missing MBean or
	// attribute is answered with status 404 as Jolokia does.
	mbeans map[string]map[string]any
	// fail maps an attribute to an exception answered with status 500.
	fail               map[string]string
	username, password string
	// raw, when set, is sent instead of any computed answer.
	raw   string
	posts atomic.Int32
}

func (f *fakeJolokia) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.posts.Add(1)
	if r.Method != http.MethodPost {
		http.Error(w, "POST only in this fake", http.StatusMethodNotAllowed)
		return
	}
	if f.username != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != f.username || p != f.password {
			w.Header().Set("WWW-Authenticate", `Basic realm="jolokia"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain;charset=utf-8") // as the JVM agent does
	if f.raw != "" {
		fmt.Fprint(w, f.raw)
		return
	}
	var body json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		json.NewEncoder(w).Encode(map[string]any{"status": 400, "error_type": "java.lang.IllegalArgumentException", "error": "Invalid JSON request"})
		return
	}
	var bulk []map[string]any
	if json.Unmarshal(body, &bulk) == nil {
		out := make([]map[string]any, len(bulk))
		for i, req := range bulk {
			out[i] = f.answer(req)
		}
		json.NewEncoder(w).Encode(out)
		return
	}
	var one map[string]any
	json.Unmarshal(body, &one)
	json.NewEncoder(w).Encode(f.answer(one))
}

func (f *fakeJolokia) answer(req map[string]any) map[string]any {
	fail := func(status int, typ, msg string) map[string]any {
		return map[string]any{"request": req, "status": status, "error_type": typ, "error": typ + " : " + msg}
	}
	if req["type"] != "read" {
		return fail(400, "java.lang.IllegalArgumentException", "only read in this fake")
	}
	mbean, _ := req["mbean"].(string)
	attrs, ok := f.mbeans[mbean]
	if !ok {
		return fail(404, "javax.management.InstanceNotFoundException", mbean)
	}
	get := func(name string) (any, map[string]any) {
		if msg, ok := f.fail[name]; ok {
			return nil, fail(500, "java.lang.RuntimeException", msg)
		}
		v, ok := attrs[name]
		if !ok {
			return nil, fail(404, "javax.management.AttributeNotFoundException", "No such attribute: "+name)
		}
		return v, nil
	}
	var value any
	switch a := req["attribute"].(type) {
	case string:
		v, failed := get(a)
		if failed != nil {
			return failed
		}
		value = v
	case []any: // several attributes: a map of them
		m := map[string]any{}
		for _, name := range a {
			v, failed := get(name.(string))
			if failed != nil {
				return failed
			}
			m[name.(string)] = v
		}
		value = m
	default:
		return fail(400, "java.lang.IllegalArgumentException", "no attribute")
	}
	return map[string]any{"request": req, "value": value, "timestamp": 1767000000, "status": 200}
}

// cassandra50 is StorageService as Cassandra 5.0 shows it.
func cassandra50(live, unreachable []string) map[string]map[string]any {
	plain := func(eps []string) []string {
		var out []string
		for _, e := range eps {
			out = append(out, e[:strings.LastIndex(e, ":")])
		}
		return out
	}
	return map[string]map[string]any{StorageServiceMBean: {
		"LiveNodesWithPort": live, "UnreachableNodesWithPort": unreachable,
		"LiveNodes": plain(live), "UnreachableNodes": plain(unreachable),
		"OperationMode": "NORMAL",
	}}
}

// cassandra311 has no …WithPort attributes.
func cassandra311(live, unreachable []string) map[string]map[string]any {
	return map[string]map[string]any{StorageServiceMBean: {"LiveNodes": live, "UnreachableNodes": unreachable}}
}

func TestJolokia(t *testing.T) {
	cases := []struct {
		name    string
		fake    *fakeJolokia
		j       Jolokia // URL is filled in
		want    []string
		wantErr []string
	}{
		{name: "Cassandra 5.0, live and unreachable",
			fake: &fakeJolokia{mbeans: cassandra50([]string{"127.0.0.12:7000", "127.0.0.11:7000", "127.0.0.13:7001"}, []string{"127.0.0.14:7000"})},
			want: []string{"127.0.0.11:7000", "127.0.0.12:7000", "127.0.0.13:7001", "127.0.0.14:7000"}},
		{name: "ports from gossip, not StoragePort",
			fake: &fakeJolokia{mbeans: cassandra50([]string{"10.0.0.1:7001"}, nil)}, j: Jolokia{StoragePort: 7000},
			want: []string{"10.0.0.1:7001"}},
		{name: "leading slash and InetAddress form",
			fake: &fakeJolokia{mbeans: cassandra50([]string{"/127.0.0.1:7000", "node2/127.0.0.2:7000"}, []string{})},
			want: []string{"127.0.0.1:7000", "127.0.0.2:7000"}},
		{name: "IPv6 in Java's and the short form, deduplicated",
			fake: &fakeJolokia{mbeans: cassandra50([]string{"[0:0:0:0:0:0:0:1]:7000", "[::1]:7000", "[fd00::2]:7000"}, []string{"[fd00:0:0:0:0:0:0:2]:7000"})},
			want: []string{"[::1]:7000", "[fd00::2]:7000"}},
		{name: "a node both live and unreachable is listed once",
			fake: &fakeJolokia{mbeans: cassandra50([]string{"127.0.0.1:7000"}, []string{"127.0.0.1:7000"})},
			want: []string{"127.0.0.1:7000"}},
		{name: "null unreachable list",
			fake: &fakeJolokia{mbeans: map[string]map[string]any{StorageServiceMBean: {"LiveNodesWithPort": []string{"127.0.0.1:7000"}, "UnreachableNodesWithPort": nil}}},
			want: []string{"127.0.0.1:7000"}},
		{name: "Cassandra 3.11: no ports, default 7000",
			fake: &fakeJolokia{mbeans: cassandra311([]string{"10.0.0.2", "10.0.0.1"}, []string{"10.0.0.3"})},
			want: []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"}},
		{name: "Cassandra 3.11: StoragePort",
			fake: &fakeJolokia{mbeans: cassandra311([]string{"10.0.0.1", "/10.0.0.2", "0:0:0:0:0:0:0:1"}, nil)}, j: Jolokia{StoragePort: 7001},
			want: []string{"10.0.0.1:7001", "10.0.0.2:7001", "[::1]:7001"}},
		{name: "basic authentication",
			fake: &fakeJolokia{mbeans: cassandra50([]string{"127.0.0.1:7000"}, nil), username: "monitor", password: "s3cret"},
			j:    Jolokia{Username: "monitor", Password: "s3cret"},
			want: []string{"127.0.0.1:7000"}},

		{name: "wrong credentials",
			fake: &fakeJolokia{mbeans: cassandra50([]string{"127.0.0.1:7000"}, nil), username: "monitor", password: "s3cret"},
			j:    Jolokia{Username: "monitor", Password: "guess"}, wantErr: []string{"HTTP 401"}},
		{name: "no StorageService (node still starting)",
			fake:    &fakeJolokia{mbeans: map[string]map[string]any{}},
			wantErr: []string{"read StorageService.LiveNodesWithPort: status 404: javax.management.InstanceNotFoundException", "read StorageService.LiveNodes: status 404"}},
		{name: "an exception is not a reason to drop the ports",
			fake:    &fakeJolokia{mbeans: cassandra50([]string{"127.0.0.1:7000"}, nil), fail: map[string]string{"UnreachableNodesWithPort": "boom"}},
			wantErr: []string{"read StorageService.UnreachableNodesWithPort: status 500: java.lang.RuntimeException : boom"}},
		{name: "3.11 fallback fails too",
			fake:    &fakeJolokia{mbeans: cassandra311([]string{"10.0.0.1"}, nil), fail: map[string]string{"UnreachableNodes": "gossip not ready"}},
			wantErr: []string{"status 404", "read StorageService.UnreachableNodes: status 500", "gossip not ready"}},
		{name: "not a list",
			fake:    &fakeJolokia{mbeans: map[string]map[string]any{StorageServiceMBean: {"LiveNodesWithPort": "127.0.0.1:7000", "UnreachableNodesWithPort": []string{}}}},
			wantErr: []string{"read StorageService.LiveNodesWithPort: not a list of strings"}},
		{name: "a name where gossip has addresses",
			fake:    &fakeJolokia{mbeans: cassandra50([]string{"node1:7000"}, nil)},
			wantErr: []string{`endpoint "node1:7000": not an IP address`}},
		{name: "a WithPort value without a port",
			fake:    &fakeJolokia{mbeans: map[string]map[string]any{StorageServiceMBean: {"LiveNodesWithPort": []string{"127.0.0.1"}, "UnreachableNodesWithPort": []string{}}}},
			wantErr: []string{`endpoint "127.0.0.1"`, "missing port"}},
		{name: "empty gossip",
			fake:    &fakeJolokia{mbeans: cassandra50([]string{}, []string{})},
			wantErr: []string{"gossip lists no live or unreachable node"}},
		{name: "whole request refused",
			fake:    &fakeJolokia{raw: `{"status":403,"error_type":"java.lang.Exception","error":"java.lang.Exception : Origin not allowed"}`},
			wantErr: []string{"status 403: java.lang.Exception : Origin not allowed"}},
		{name: "not JSON",
			fake:    &fakeJolokia{raw: `<html>hello</html>`},
			wantErr: []string{"unreadable response", "<html>hello</html>"}},
		{name: "too few responses",
			fake:    &fakeJolokia{raw: `[{"status":200,"value":[]}]`},
			wantErr: []string{"1 responses to 4 requests"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.fake)
			defer srv.Close()
			j := tc.j
			j.URL = srv.URL + "/jolokia/"
			got, err := j.Peers(context.Background())
			if tc.wantErr == nil {
				if err != nil || !slices.Equal(got, tc.want) {
					t.Errorf("Peers = %q, %v; want %q", got, err, tc.want)
				}
			} else {
				if err == nil {
					t.Fatalf("Peers = %q, want an error", got)
				}
				for _, w := range append([]string{"jolokia " + j.URL + ": "}, tc.wantErr...) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
			}
			if n := tc.fake.posts.Load(); n != 1 {
				t.Errorf("%d HTTP requests, want one bulk request", n)
			}
		})
	}
}

func TestJolokiaUnreachableAgent(t *testing.T) {
	url := "http://" + closedPort(t) + "/jolokia/"
	_, err := Jolokia{URL: url}.Peers(context.Background())
	if err == nil || !strings.Contains(err.Error(), "jolokia "+url+": ") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %v, want the URL and the cause", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv := httptest.NewServer(&fakeJolokia{mbeans: cassandra50([]string{"127.0.0.1:7000"}, nil)})
	defer srv.Close()
	if _, err := (Jolokia{URL: srv.URL}).Peers(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// TestJolokiaErrorsHoldNoSecret: a gossip Jolokia URL with user:password@
// and ?token=…, refused or answered with an error page that quotes the
// request: the error names the endpoint, never the secrets.
func TestJolokiaErrorsHoldNoSecret(t *testing.T) {
	const user, pass, token = "jmx-user-3c1d", "jmx-pass-8e2f", "jmx-token-5a7b"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		u, p, _ := r.BasicAuth()
		w.Write([]byte("no: " + r.URL.String() + " " + u + ":" + p))
	}))
	defer echo.Close()
	for _, host := range []string{closedPort(t), strings.TrimPrefix(echo.URL, "http://")} {
		raw := "http://" + user + ":" + pass + "@" + host + "/jolokia/?token=" + token
		_, err := Jolokia{URL: raw}.Peers(context.Background())
		if err == nil || !strings.Contains(err.Error(), host) {
			t.Fatalf("error %v, want one naming %s", err, host)
		}
		for _, secret := range []string{user, pass, token} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error holds %q: %v", secret, err)
			}
		}
	}
}

// fakeResolver answers from a map; a missing name is an error like the
// resolver's own.
type fakeResolver map[string][]string

func (f fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	addrs, ok := f[host]
	if !ok {
		return nil, fmt.Errorf("lookup %s: no such host", host)
	}
	return addrs, nil
}

func TestDNS(t *testing.T) {
	r := fakeResolver{
		"dc1-all-pods-service.cassandra.svc.cluster.local": {"10.0.0.3", "10.0.0.1", "fd00::2", "10.0.0.1", "::ffff:10.0.0.3", "fd00:0:0:0:0:0:0:2"},
		"empty.svc": {},
	}
	cases := []struct {
		name    string
		d       DNS
		want    []string
		wantErr []string
	}{
		{name: "every A and AAAA record, sorted, once",
			d:    DNS{Name: "dc1-all-pods-service.cassandra.svc.cluster.local:7000", Resolver: r},
			want: []string{"10.0.0.1:7000", "10.0.0.3:7000", "[fd00::2]:7000"}},
		{name: "IP literal through the system resolver", d: DNS{Name: "127.0.0.1:7001"}, want: []string{"127.0.0.1:7001"}},
		{name: "no such host", d: DNS{Name: "gone.svc:7000", Resolver: r},
			wantErr: []string{"dns peers gone.svc:7000: ", "lookup gone.svc: no such host"}},
		{name: "no records", d: DNS{Name: "empty.svc:7000", Resolver: r}, wantErr: []string{"dns peers empty.svc:7000: no addresses"}},
		{name: "no port", d: DNS{Name: "dc1.svc", Resolver: r}, wantErr: []string{"dns peers: ", "missing port"}},
		{name: "bad port", d: DNS{Name: "dc1.svc:storage", Resolver: r}, wantErr: []string{"dns peers dc1.svc:storage: ", `port "storage"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.d.Peers(context.Background())
			checkPeers(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestStatic(t *testing.T) {
	cases := []struct {
		name    string
		addrs   []string
		want    []string
		wantErr []string
	}{
		{name: "sorted, once", addrs: []string{"10.0.0.3:7000", "10.0.0.2:7000", "10.0.0.3:7000", "[fd00:0:0:0:0:0:0:2]:7000", "[fd00::2]:7000", "cass-0.cass:7000"},
			want: []string{"10.0.0.2:7000", "10.0.0.3:7000", "[fd00::2]:7000", "cass-0.cass:7000"}},
		{name: "no port", addrs: []string{"10.0.0.2:7000", "10.0.0.3"}, wantErr: []string{"static peers: ", "10.0.0.3", "missing port"}},
		{name: "port 0", addrs: []string{"10.0.0.2:0"}, wantErr: []string{`static peers: "10.0.0.2:0": port "0"`}},
		{name: "no host", addrs: []string{":7000"}, wantErr: []string{`static peers: ":7000" has no host`}},
		{name: "empty", wantErr: []string{"static peers: no addresses"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Static{Addrs: tc.addrs}.Peers(context.Background())
			checkPeers(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func checkPeers(t *testing.T, got []string, err error, want, wantErr []string) {
	t.Helper()
	if wantErr == nil {
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Peers = %q, %v; want %q", got, err, want)
		}
		return
	}
	if err == nil {
		t.Fatalf("Peers = %q, want an error", got)
	}
	for _, w := range wantErr {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}
