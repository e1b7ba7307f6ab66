package cql

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// fakeNode speaks just enough of the CQL v4 protocol for the handshake:
// SUPPORTED to OPTIONS, AUTHENTICATE naming class to STARTUP, and to
// AUTH_RESPONSE the error authErr (code 0x0100, as Cassandra sends an
// AuthenticationException). It records every AUTH_RESPONSE body.
type fakeNode struct {
	class, authErr string
	mu             sync.Mutex
	responses      [][]byte
}

func (f *fakeNode) serve(t *testing.T) string {
	t.Helper()
	return pkitest.ServeTCP(t, f.conn)
}

func cqlString(s string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(s)))
	return append(b, s...)
}

func (f *fakeNode) conn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		hdr := make([]byte, 9)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[5:]))
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		var op byte
		var out []byte
		switch hdr[4] {
		case 0x05: // OPTIONS → SUPPORTED, an empty multimap
			op, out = 0x06, []byte{0, 0}
		case 0x01: // STARTUP → AUTHENTICATE
			op, out = 0x03, cqlString(f.class)
		case 0x0F: // AUTH_RESPONSE: [bytes]
			f.mu.Lock()
			f.responses = append(f.responses, body)
			f.mu.Unlock()
			op, out = 0x00, append(binary.BigEndian.AppendUint32(nil, 0x0100), cqlString(f.authErr)...)
		default:
			return
		}
		frame := []byte{0x84, 0, hdr[2], hdr[3], op}
		frame = binary.BigEndian.AppendUint32(frame, uint32(len(out)))
		if _, err := c.Write(append(frame, out...)); err != nil {
			return
		}
	}
}

func (f *fakeNode) seen() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.responses...)
}

const (
	mtlsClass     = "org.apache.cassandra.auth.MutualTlsAuthenticator"
	fallbackClass = "org.apache.cassandra.auth.MutualTlsWithPasswordFallbackAuthenticator"
	passwordClass = "org.apache.cassandra.auth.PasswordAuthenticator"
	// What Cassandra 5.0.9's certificate negotiator says for an unmapped identity.
	notAuthorized = "Certificate identity 'spiffe://cluster.local/ns/apps/sa/stranger' not authorized"
)

func probeFake(t *testing.T, f *fakeNode, c *Client) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Probe(ctx, f.serve(t))
	if err == nil {
		t.Fatal("the probe succeeded against a node that refuses every client")
	}
	return err
}

// TestNoPasswordAnswersACertificateAuthenticator: without a password the
// client answers AUTHENTICATE from a certificate authenticator with an empty
// (not null) token, and the server's refusal of the identity is named.
func TestNoPasswordAnswersACertificateAuthenticator(t *testing.T) {
	for _, class := range []string{mtlsClass, fallbackClass} {
		f := &fakeNode{class: class, authErr: notAuthorized}
		err := probeFake(t, f, &Client{})
		want := "the certificate's identity spiffe://cluster.local/ns/apps/sa/stranger is not mapped to a role (ADD IDENTITY 'spiffe://cluster.local/ns/apps/sa/stranger' TO ROLE …)"
		if got := Classify(err); got != want {
			t.Errorf("%s: cause %q, want %q (error: %v)", class, got, want, err)
		}
		seen := f.seen()
		if len(seen) == 0 {
			t.Fatalf("%s: no AUTH_RESPONSE was sent", class)
		}
		// [bytes] of length 0: four zero bytes, not -1 (null).
		if string(seen[0]) != "\x00\x00\x00\x00" {
			t.Errorf("%s: AUTH_RESPONSE body %q, want an empty token", class, seen[0])
		}
	}
}

// TestNoPasswordForAPasswordAuthenticator: a server that asks for a
// password gets nothing, and the cause says so and names its authenticator.
func TestNoPasswordForAPasswordAuthenticator(t *testing.T) {
	f := &fakeNode{class: passwordClass, authErr: "should not be reached"}
	err := probeFake(t, f, &Client{})
	if got := Classify(err); got != "the server requires a password; none is configured" {
		t.Errorf("cause %q (error: %v)", got, err)
	}
	if !strings.Contains(err.Error(), passwordClass) {
		t.Errorf("the error does not name the server's authenticator: %v", err)
	}
	if n := len(f.seen()); n != 0 {
		t.Errorf("%d AUTH_RESPONSE sent to a password authenticator without a password", n)
	}
}

// TestPasswordClientOnACertificateAuthenticator: a password client sends its
// credentials (the fallback takes them from clients without a certificate);
// when the server goes by the certificate instead, the cause names the identity.
func TestPasswordClientOnACertificateAuthenticator(t *testing.T) {
	f := &fakeNode{class: fallbackClass, authErr: notAuthorized}
	err := probeFake(t, f, &Client{Username: "reaper", Password: []byte("pw")})
	if got := Classify(err); !strings.HasPrefix(got, "the certificate's identity spiffe://cluster.local/ns/apps/sa/stranger is not mapped") {
		t.Errorf("cause %q (error: %v)", got, err)
	}
	if seen := f.seen(); len(seen) == 0 || !strings.Contains(string(seen[0]), "\x00reaper\x00pw") {
		t.Errorf("AUTH_RESPONSE %q, want the SASL PLAIN credentials", seen)
	}
}

func TestClassifyCertificateCauses(t *testing.T) {
	for msg, want := range map[string]string{
		"Unable to extract Spiffe from the certificate":                                         causeNoIdentity,
		"Unable to extract client identity from certificate for authentication":                 causeNoIdentity,
		"Credential format error: username or password is empty or contains NUL(\\0) character": causeNeedsPassword,
		"Authentication ID must not be null":                                                    causeNeedsPassword,
		"Invalid or not supported certificate":                                                  "client certificate refused by the server's certificate authenticator",
		"Provided username and/or password are incorrect":                                       "authentication failed (username or password rejected)",
	} {
		if got := Classify(errors.New("gocql: unable to create session: " + msg)); got != want {
			t.Errorf("Classify(%q) = %q, want %q", msg, got, want)
		}
	}
}
