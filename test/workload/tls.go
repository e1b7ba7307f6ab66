package workload

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// TLSFiles names a CQL client's PEM material. The files may change at any time (the kubelet's
// ..data swap, cert-manager renewing a certificate): DynamicTLS re-reads them at every handshake.
type TLSFiles struct {
	CAFile   string // trusted CAs for the servers' certificates
	CertFile string // client certificate, leaf first (sent when the server asks)
	KeyFile  string
}

// DynamicTLS is TLS client material that follows its files: trust anchors come from CAFile
// and the client certificate from CertFile/KeyFile as they are at each handshake. A file that
// cannot be read or parsed (e.g. caught between two writes) leaves the last good material in
// use; with no good material yet the handshake fails.
//
// Servers are verified against the anchors and against the dialled IP address (the IP SANs),
// by VerifyConnection, not by crypto/tls's built-in check, whose pool cannot change.
type DynamicTLS struct {
	files TLSFiles

	mu        sync.Mutex
	caSum     [sha256.Size]byte
	pool      *x509.CertPool
	certSum   [sha256.Size]byte
	cert      *tls.Certificate
	caLoads   int
	certLoads int
	lastErr   error
}

// NewDynamicTLS loads the files once, failing when they are not usable now.
func NewDynamicTLS(files TLSFiles) (*DynamicTLS, error) {
	if files.CAFile == "" {
		return nil, errors.New("workload: TLS needs a CA file")
	}
	if (files.CertFile == "") != (files.KeyFile == "") {
		return nil, errors.New("workload: a client certificate needs its key and vice versa")
	}
	d := &DynamicTLS{files: files}
	if _, err := d.roots(); err != nil {
		return nil, err
	}
	if files.CertFile != "" {
		if _, err := d.clientCert(nil); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Loads reports how many distinct contents of the CA file and of the certificate/key pair
// have been loaded so far (1 each after NewDynamicTLS): a rotation increments them.
func (d *DynamicTLS) Loads() (ca, cert int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.caLoads, d.certLoads
}

// LastError is the last failure to re-read the files (nil when the last read was good).
func (d *DynamicTLS) LastError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr
}

// ClientCertificate returns the client certificate that the next handshake will send.
func (d *DynamicTLS) ClientCertificate() (*tls.Certificate, error) { return d.clientCert(nil) }

// roots returns the pool for the CA file's current content.
func (d *DynamicTLS) roots() (*x509.CertPool, error) {
	data, err := os.ReadFile(d.files.CAFile)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		return d.keep(d.pool != nil, fmt.Errorf("workload: reading CA file: %w", err))
	}
	sum := sha256.Sum256(data)
	if d.pool != nil && sum == d.caSum {
		return d.pool, nil
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return d.keep(d.pool != nil, fmt.Errorf("workload: CA file %s: %w", d.files.CAFile, err))
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return d.keep(d.pool != nil, fmt.Errorf("workload: CA file %s holds no certificate", d.files.CAFile))
	}
	d.pool, d.caSum, d.lastErr = pool, sum, nil
	d.caLoads++
	return pool, nil
}

// keep records err and returns the current pool when there is one (have), else err.
func (d *DynamicTLS) keep(have bool, err error) (*x509.CertPool, error) {
	d.lastErr = err
	if have {
		return d.pool, nil
	}
	return nil, err
}

// clientCert is tls.Config.GetClientCertificate: the pair as the files hold it now.
func (d *DynamicTLS) clientCert(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if d.files.CertFile == "" {
		return &tls.Certificate{}, nil // no certificate: the server decides
	}
	certPEM, cerr := os.ReadFile(d.files.CertFile)
	keyPEM, kerr := os.ReadFile(d.files.KeyFile)
	d.mu.Lock()
	defer d.mu.Unlock()
	fail := func(err error) (*tls.Certificate, error) {
		d.lastErr = err
		if d.cert != nil {
			return d.cert, nil
		}
		return nil, err
	}
	if err := errors.Join(cerr, kerr); err != nil {
		return fail(fmt.Errorf("workload: reading the client certificate: %w", err))
	}
	sum := sha256.Sum256(append(append(append([]byte{}, certPEM...), 0), keyPEM...))
	if d.cert != nil && sum == d.certSum {
		return d.cert, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// Cert and key read on either side of a swap do not match: the next handshake
		// reads them again.
		return fail(fmt.Errorf("workload: client certificate %s / %s: %w", d.files.CertFile, d.files.KeyFile, err))
	}
	d.cert, d.certSum, d.lastErr = &pair, sum, nil
	d.certLoads++
	return d.cert, nil
}

// Config returns a client config for a connection to host (an IP address or a name that the
// server certificate must carry).
func (d *DynamicTLS) Config(host string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The built-in verification uses a fixed RootCAs pool; VerifyConnection below does the
		// same checks against the pool of the moment.
		InsecureSkipVerify:   true,
		VerifyConnection:     func(cs tls.ConnectionState) error { return d.verify(host, cs) },
		GetClientCertificate: d.clientCert,
	}
}

func (d *DynamicTLS) verify(host string, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("workload: the server sent no certificate")
	}
	pool, err := d.roots()
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("workload: server certificate of %s: %w", host, err)
	}
	if err := leaf.VerifyHostname(host); err != nil {
		return fmt.Errorf("workload: server certificate of %s: %w", host, err)
	}
	return nil
}

// HostDialer returns a gocql.HostDialer that dials each host at its connect address and runs
// the TLS handshake with Config(that address), so every connection (control connection
// included) is verified against the IP it actually reached.
func (d *DynamicTLS) HostDialer(timeout time.Duration) gocql.HostDialer {
	return &hostDialer{tls: d, dialer: net.Dialer{Timeout: timeout}}
}

type hostDialer struct {
	tls    *DynamicTLS
	dialer net.Dialer
}

func (h *hostDialer) DialHost(ctx context.Context, host *gocql.HostInfo) (*gocql.DialedHost, error) {
	ip := host.ConnectAddress()
	if ip == nil || ip.IsUnspecified() || host.Port() == 0 {
		return nil, fmt.Errorf("workload: host %v has no connect address", host)
	}
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(host.Port()))
	conn, err := h.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("workload: dialling %s: %w", addr, err)
	}
	tc := tls.Client(conn, h.tls.Config(ip.String()))
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("workload: TLS handshake with %s: %w", addr, err)
	}
	// crypto/tls cannot writev: gocql's write coalescing must be off.
	return &gocql.DialedHost{Conn: tc, DisableCoalesce: true}, nil
}
