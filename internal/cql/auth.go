package cql

import (
	"fmt"
	"regexp"
	"strings"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Cassandra 5.0 can authenticate a client by its TLS certificate
// (MutualTlsAuthenticator, or MutualTlsWithPasswordFallbackAuthenticator
// for clients that present none). The server still answers STARTUP with
// AUTHENTICATE naming its authenticator class, and the client must send an
// AUTH_RESPONSE, whose content the certificate negotiator ignores: the
// identity (e.g. the certificate's spiffe:// URI SAN) is mapped to a role
// through system_auth.identity_to_role. gocql with no Authenticator fails
// locally ("authentication required"), so a client without a password
// answers with certificateAuth.

// certificateAuth is the authenticator of a client without a password. It
// sends an empty response to an authenticator that accepts certificates and
// refuses, with a cause in plain words, one that needs a password.
type certificateAuth struct{}

func (certificateAuth) Challenge(req []byte) ([]byte, gocql.Authenticator, error) {
	class := string(req)
	if !AcceptsCertificates(class) {
		return nil, nil, &ProbeError{Cause: causeNeedsPassword,
			Err: fmt.Errorf("the server authenticates with %s, which takes a username and password", class)}
	}
	// Not nil: a null [bytes] is a protocol error for the server.
	return []byte{}, nil, nil
}

func (certificateAuth) Success([]byte) error { return nil }

// AcceptsCertificates reports whether the authenticator class named in an
// AUTHENTICATE message identifies clients by their certificate.
func AcceptsCertificates(class string) bool {
	return strings.Contains(class, "MutualTls")
}

const (
	causeNeedsPassword = "the server requires a password; none is configured"
	causeNoIdentity    = "the client certificate carries no identity the server's certificate validator accepts (for SpiffeCertificateValidator: a spiffe:// URI SAN)"
)

// unmapped matches the error of Cassandra 5.0's certificate negotiator for
// an identity that no role has: "Certificate identity 'spiffe://…' not authorized".
var unmapped = regexp.MustCompile(`(?i)certificate identity '([^']*)' not authorized`)

// identityCause names the identity of a certificate the server did not map
// to a role, or returns "".
func identityCause(msg string) string {
	m := unmapped.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	return fmt.Sprintf("the certificate's identity %s is not mapped to a role (ADD IDENTITY '%s' TO ROLE …)", m[1], m[1])
}
