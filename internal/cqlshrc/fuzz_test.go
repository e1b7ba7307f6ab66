package cqlshrc

import (
	"strconv"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render/rendertest"
)

// FuzzCqlshrc: with any option values, Render either refuses, or the text
// read the way configparser reads it (render.ReadINI, checked against Python
// in test/render_formats_test.go) gives back every option exactly through
// interpolation, and nothing else. The same for Credentials, whose
// [PlainTextAuthProvider] section and password cqlsh reads raw.
func FuzzCqlshrc(f *testing.F) {
	for _, v := range rendertest.Hostile {
		f.Add(v, "/pem/ca.crt", "/pem/"+v, "/pem/tls.key", "TLSv1_2", "/c/"+v, 9042, true, v, v)
	}
	f.Fuzz(func(t *testing.T, host, ca, cert, key, version, creds string, port int, validate bool, user, pw string) {
		o := Options{Host: host, Port: port, CAFile: ca, Validate: validate, CertFile: cert, KeyFile: key,
			TLSVersion: version, CredentialsFile: creds}
		if out, err := Render(o); err == nil {
			if port == 0 {
				port = 9042
			}
			want := map[[2]string]string{{"connection", "hostname"}: host, {"connection", "port"}: strconv.Itoa(port),
				{"connection", "ssl"}: strconv.FormatBool(ca != "")}
			if creds != "" {
				want[[2]string{"authentication", "credentials"}] = creds
			}
			if ca != "" {
				want[[2]string{"ssl", "certfile"}] = ca
				want[[2]string{"ssl", "validate"}] = strconv.FormatBool(validate)
				if cert != "" {
					want[[2]string{"ssl", "usercert"}] = cert
					want[[2]string{"ssl", "userkey"}] = key
				}
				if version != "" {
					want[[2]string{"ssl", "version"}] = version
				}
			}
			checkINI(t, out, want, map[[2]string]bool{})
		}
		if out, err := Credentials(user, []byte(pw)); err == nil {
			checkINI(t, out, map[[2]string]string{
				{"plain_text_auth", "username"}: user, {"plain_text_auth", "password"}: pw,
				{"PlainTextAuthProvider", "username"}: user, {"PlainTextAuthProvider", "password"}: pw,
			}, map[[2]string]bool{{"plain_text_auth", "password"}: true, {"PlainTextAuthProvider", "username"}: true, {"PlainTextAuthProvider", "password"}: true})
		}
	})
}

// checkINI reads out like configparser and compares every option with
// want: raw for the options cqlsh reads raw, interpolated for the others.
func checkINI(t *testing.T, out []byte, want map[[2]string]string, raw map[[2]string]bool) {
	t.Helper()
	got, err := render.ReadINI(out)
	if err != nil {
		t.Fatalf("configparser would refuse the file: %v\n%s", err, out)
	}
	if len(got) != len(want) {
		t.Fatalf("%d options, want %d:\n%s", len(got), len(want), out)
	}
	for _, e := range got {
		k := [2]string{e.Section, e.Option}
		w, ok := want[k]
		v, err := e.Value, error(nil)
		if !raw[k] {
			v, err = render.Interpolate(e.Value)
		}
		if !ok || err != nil || v != w {
			t.Fatalf("[%s] %s reads back as %q (%v), want %q:\n%s", e.Section, e.Option, v, err, w, out)
		}
	}
}
