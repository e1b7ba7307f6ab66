package cqlshrc

import (
	"strings"
	"testing"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render"
)

func TestRender(t *testing.T) {
	out, err := Render(Options{Host: "127.0.0.1", Port: 9142, CAFile: "/pem/ca.crt", Validate: true,
		CertFile: "/pem/tls.crt", KeyFile: "/pem/tls.key", CredentialsFile: "/home/c/.cassandra/credentials"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[authentication]\ncredentials = /home/c/.cassandra/credentials\n",
		"[connection]\nhostname = 127.0.0.1\nport = 9142\nssl = true\n",
		"[ssl]\ncertfile = /pem/ca.crt\nvalidate = true\nuserkey = /pem/tls.key\nusercert = /pem/tls.crt\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("cqlshrc lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "version") || strings.Contains(string(out), "password") {
		t.Errorf("cqlshrc must not carry a TLS version unless asked, nor any password:\n%s", out)
	}
	out, _ = Render(Options{Host: "h", CAFile: "/ca", TLSVersion: "TLSv1_2"})
	if !strings.Contains(string(out), "version = TLSv1_2") {
		t.Errorf("TLS version asked for but not written:\n%s", out)
	}
}

func TestRenderCertificateAuth(t *testing.T) {
	out, err := Render(Options{Host: "h", CAFile: "/pem/ca.crt", Validate: true, CertFile: "/pem/tls.crt", KeyFile: "/pem/tls.key", CertificateAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "[auth_provider]\nmodule = cassandra.auth\nclassname = TransitionalModePlainTextAuthProvider\n"
	if !strings.Contains(string(out), want) || strings.Contains(string(out), "[authentication]") {
		t.Errorf("cqlshrc for certificate authentication:\n%s", out)
	}
	out, _ = Render(Options{Host: "h", CAFile: "/pem/ca.crt", CertFile: "/pem/tls.crt", KeyFile: "/pem/tls.key"})
	if strings.Contains(string(out), "auth_provider") {
		t.Errorf("an auth provider without being asked:\n%s", out)
	}
}

func TestRenderRefuses(t *testing.T) {
	for name, o := range map[string]Options{
		"no host":                                {},
		"validate without CA":                    {Host: "h", Validate: true},
		"cert without key":                       {Host: "h", CAFile: "/ca", CertFile: "/c"},
		"cert without CA":                        {Host: "h", CertFile: "/c", KeyFile: "/k"},
		"newline in a path":                      {Host: "h", CAFile: "/ca\n[evil]"},
		"bad port":                               {Host: "h", Port: 70000},
		"certificate auth without a certificate": {Host: "h", CAFile: "/ca", CertificateAuth: true},
		"certificate auth with credentials":      {Host: "h", CAFile: "/ca", CertFile: "/c", KeyFile: "/k", CertificateAuth: true, CredentialsFile: "/cr"},
	} {
		if _, err := Render(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCredentials(t *testing.T) {
	out, err := Credentials("ops%user", []byte("p%ss;#word"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "[plain_text_auth]\nusername = ops%%user\npassword = p%ss;#word\n") ||
		!strings.Contains(string(out), "[PlainTextAuthProvider]\nusername = ops%user\npassword = p%ss;#word\n") {
		t.Errorf("credentials:\n%s", out)
	}
	for _, pw := range []string{"zq9\nxk7", " zq9lead", "zq9trail ", ""} {
		_, err := Credentials("u", []byte(pw))
		if err == nil {
			t.Errorf("password %q accepted", pw)
		} else if pw != "" && strings.Contains(err.Error(), strings.TrimSpace(pw)) {
			t.Errorf("error quotes the password: %v", err)
		}
	}
}

// TestRenderForConfigparser: cqlsh reads every cqlshrc option through
// configparser's interpolation, so a % in a path must be written %%, and a
// value configparser would strip is refused (it would silently differ).
func TestRenderForConfigparser(t *testing.T) {
	o := Options{Host: "h%st", CAFile: "/pem/50%/ca.crt", Validate: true, CertFile: "/pem/%(x)s.crt", KeyFile: "/pem/%%.key",
		CredentialsFile: "/c/100%"}
	out, err := Render(o)
	if err != nil {
		t.Fatal(err)
	}
	back, err := render.ReadINI(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"credentials": o.CredentialsFile, "hostname": o.Host, "certfile": o.CAFile,
		"usercert": o.CertFile, "userkey": o.KeyFile}
	for _, e := range back {
		v, err := render.Interpolate(e.Value)
		if w, ok := want[e.Option]; ok && (err != nil || v != w) {
			t.Errorf("[%s] %s reads back as %q (%v), want %q\n%s", e.Section, e.Option, v, err, w, out)
		}
	}
	for _, bad := range []string{" /lead", "/trail ", "/a\x1f", "/a\u00a0", "/a\u2028", "/\xff"} {
		if _, err := Render(Options{Host: "h", CAFile: bad}); err == nil || !strings.Contains(err.Error(), "cqlshrc: CA file") {
			t.Errorf("CA file %q: err = %v", bad, err)
		}
	}
	if _, err := Credentials("u", []byte("pw\x1f")); err == nil {
		t.Error("a password ending in a character Python strips was accepted")
	}
}
