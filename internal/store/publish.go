package store

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/atomicfile"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/files"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki"
)

// File names written into Spec.PEMDir. The first three mirror cert-manager's
// layout, so a PEM dir can itself be a source; keystore.pem (key, then leaf
// and chain in one file) is what Cassandra 4.1+'s PEMBasedSslContextFactory
// takes as its keystore.
const (
	PEMKeyFile      = pki.KeyFile
	PEMCertFile     = pki.CertFile
	PEMCAFile       = pki.CAFile
	PEMKeystoreFile = "keystore.pem"
)

// Spec describes the outputs of one store. Empty paths are not written.
type Spec struct {
	Keystore       string
	KeystoreType   Type
	Truststore     string
	TruststoreType Type
	// Profile is the PKCS#12 profile; ignored for JKS.
	Profile Profile
	// Alias names the private-key entry (JKS; go-pkcs12 writes no friendly
	// name for the key, so Java calls a PKCS#12 key entry "1").
	Alias string
	// Password protects the keystore and its key entry.
	Password []byte
	// TruststorePassword defaults to Password.
	TruststorePassword []byte
	// PEMDir, if set, receives tls.key, tls.crt, ca.crt and keystore.pem.
	PEMDir string
	// Mode is applied to every output; 0600 when zero.
	Mode fs.FileMode
}

func (s Spec) withDefaults() Spec {
	if s.Alias == "" {
		s.Alias = DefaultAlias
	}
	if s.TruststorePassword == nil {
		s.TruststorePassword = s.Password
	}
	if s.Mode == 0 {
		s.Mode = 0o600
	}
	if s.KeystoreType == "" {
		s.KeystoreType = JKS
	}
	if s.TruststoreType == "" {
		s.TruststoreType = JKS
	}
	return s
}

// Validate checks the spec itself, before any material is touched.
func (s Spec) Validate() error {
	s = s.withDefaults()
	if s.Keystore == "" && s.Truststore == "" && s.PEMDir == "" {
		return errors.New("no output: set a keystore, a truststore or a PEM directory")
	}
	if (s.Keystore != "" || s.Truststore != "") && len(s.Password) == 0 {
		return errors.New("a store password is required (from a password file or the environment)")
	}
	if s.Truststore != "" && len(s.TruststorePassword) == 0 {
		return errors.New("the truststore password is empty")
	}
	if s.Mode&^fs.ModePerm != 0 {
		return fmt.Errorf("mode %v is not a permission mode", s.Mode)
	}
	if s.Keystore != "" {
		if err := CheckPassword(s.KeystoreType, s.Password); err != nil {
			return &PasswordError{Store: "keystore", Err: err}
		}
	}
	if s.Truststore != "" {
		if err := CheckPassword(s.TruststoreType, s.TruststorePassword); err != nil {
			return &PasswordError{Store: "truststore", Err: err}
		}
	}
	return nil
}

// CheckPassword says whether Java (and so Cassandra) can open a store of
// type t under password. JKS takes any text: Java derives its keys from the
// password's UTF-16 characters, and so do we. PKCS#12 in Java takes only
// printable ASCII (its PBE keys refuse anything else with "Password is not
// ASCII"), so a store we could write would be one Cassandra cannot load.
// The error never contains the password.
func CheckPassword(t Type, password []byte) error {
	if t == PKCS12 {
		for _, b := range password {
			if b < 0x20 || b > 0x7E {
				return errors.New("it has characters outside printable ASCII, which Java refuses for PKCS#12 stores " +
					"(\"Password is not ASCII\"): Cassandra could not open the store; use an ASCII password, " +
					"or type jks, which takes any Unicode password")
			}
		}
		return nil
	}
	if !utf8.Valid(password) {
		return errNotUTF8
	}
	return nil
}

// PasswordError is a store password that Java could not use.
type PasswordError struct {
	Store string // keystore or truststore
	Err   error
}

func (e *PasswordError) Error() string {
	return "the " + e.Store + " password cannot be used: " + e.Err.Error()
}
func (e *PasswordError) Unwrap() error { return e.Err }

// OutputError is a failure to produce or write one output file. It is never
// a problem of the source material: callers count and report it apart.
type OutputError struct {
	Path string
	Err  error
}

func (e *OutputError) Error() string {
	if msg := e.Err.Error(); strings.Contains(msg, e.Path) {
		return msg
	}
	return e.Path + ": " + e.Err.Error()
}
func (e *OutputError) Unwrap() error { return e.Err }

// Result says which outputs were written and which were already current.
type Result struct {
	Written   []string
	Unchanged []string
}

// Changed reports whether anything was written.
func (r Result) Changed() bool { return len(r.Written) > 0 }

// output is one thing to publish — a file, or the PEM pair directory:
// whether what is on disk already holds what we want, and how to produce
// and write it if not.
type output struct {
	paths   []string     // reported in Result
	current func() bool  // true when the disk already holds it (then only the mode is fixed)
	encode  func() error // prepares what write writes; nothing touches the disk
	write   func() error // publishes it atomically
	fixMode func() error // applies the mode to what is already current
}

// Publish writes the outputs of s that do not already hold m. It encodes
// every output that needs writing before writing any, so an encoding error
// leaves all files untouched; trust is written before keys so that, during
// a CA rotation, trust widens before the new leaf is presented: the
// truststore, then the PEM directory (ca.crt with tls.key and tls.crt, one
// atomic swap), then the keystore and keystore.pem.
func Publish(m *pki.Material, s Spec, now time.Time) (Result, error) {
	if err := s.Validate(); err != nil {
		return Result{}, err
	}
	s = s.withDefaults()
	outs := plan(m, s, now)

	var res Result
	var pending []*output
	for _, o := range outs {
		// An unreadable or special file (a FIFO, a symlink to a device) is
		// never current: it is replaced by the rename below.
		if o.current() {
			if err := o.fixMode(); err != nil {
				return res, &OutputError{Path: o.paths[0], Err: err}
			}
			res.Unchanged = append(res.Unchanged, o.paths...)
			continue
		}
		if err := o.encode(); err != nil {
			return Result{}, &OutputError{Path: o.paths[0], Err: err}
		}
		pending = append(pending, o)
	}
	for _, o := range pending {
		if err := o.write(); err != nil {
			return res, &OutputError{Path: o.paths[0], Err: err}
		}
		res.Written = append(res.Written, o.paths...)
	}
	return res, nil
}

// fixMode applies mode to an output whose content is already current: an
// operator who tightens the mode must not wait for the next rotation. It
// follows symbolic links (the PEM pair's names point into ..data).
func fixMode(path string, mode fs.FileMode) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode().Perm() == mode.Perm() {
		return nil
	}
	return os.Chmod(path, mode.Perm())
}

func plan(m *pki.Material, s Spec, now time.Time) []*output {
	var outs []*output
	chain := append([]*x509.Certificate{m.Leaf}, m.Chain...)
	if s.Truststore != "" {
		outs = append(outs, storeOutput(s.Truststore, s.Mode,
			func(d []byte) bool { return holdsTrust(d, s.TruststoreType, s.TruststorePassword, m.CAs) },
			func() ([]byte, error) {
				return encodeTruststore(m.CAs, s.TruststoreType, s.Profile, s.TruststorePassword, now)
			}))
	}
	var key []byte
	var keyErr error
	if s.PEMDir != "" {
		key, keyErr = pemKey(m)
		outs = append(outs, pemPairOutput(s.PEMDir, s.Mode, map[string][]byte{
			PEMCAFile:   pemCerts(m.CAs...),
			PEMKeyFile:  key,
			PEMCertFile: pemCerts(chain...),
		}, keyErr))
	}
	if s.Keystore != "" {
		outs = append(outs, storeOutput(s.Keystore, s.Mode,
			func(d []byte) bool { return holdsKey(d, s.KeystoreType, s.Alias, s.Password, m.Key, chain) },
			func() ([]byte, error) {
				return encodeKeystore(m, s.KeystoreType, s.Profile, s.Alias, s.Password, now)
			}))
	}
	if s.PEMDir != "" {
		both := append(append([]byte{}, key...), pemCerts(chain...)...)
		// PEM encoding is deterministic, unlike JKS and PKCS#12 (timestamps,
		// random salts): compare bytes.
		outs = append(outs, storeOutput(filepath.Join(s.PEMDir, PEMKeystoreFile), s.Mode,
			func(d []byte) bool { return keyErr == nil && bytes.Equal(d, both) },
			func() ([]byte, error) { return both, keyErr }))
	}
	return outs
}

// storeOutput is one file, replaced with atomicfile.Write.
func storeOutput(path string, mode fs.FileMode, holds func([]byte) bool, encode func() ([]byte, error)) *output {
	var data []byte
	return &output{
		paths: []string{path},
		current: func() bool {
			old, err := files.Read(path)
			return err == nil && holds(old)
		},
		encode:  func() (err error) { data, err = encode(); return err },
		write:   func() error { return atomicfile.Write(path, data, mode) },
		fixMode: func() error { return fixMode(path, mode) },
	}
}

// pemPairOutput is tls.key, tls.crt and ca.crt in dir, published together
// the kubelet's way (atomicfile.WriteDir): each name is a symlink into
// ..data, which one rename swaps to a new generation. A reader that opens
// dir/..data once reads a key and a certificate of the same generation.
// It is current when every name already is such a symlink to the wanted
// content; plain files (the layout before) are migrated by the write.
func pemPairOutput(dir string, mode fs.FileMode, want map[string][]byte, encodeErr error) *output {
	names := []string{PEMKeyFile, PEMCertFile, PEMCAFile}
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(dir, n)
	}
	return &output{
		paths: paths,
		current: func() bool {
			if encodeErr != nil {
				return false
			}
			for _, n := range names {
				p := filepath.Join(dir, n)
				if target, err := os.Readlink(p); err != nil || target != filepath.Join(atomicfile.DataDir, n) {
					return false
				}
				if old, err := files.Read(p); err != nil || !bytes.Equal(old, want[n]) {
					return false
				}
			}
			return true
		},
		encode: func() error { return encodeErr },
		write: func() error {
			return atomicfile.WriteDir(dir, want, atomicfile.DirOptions{Mode: mode, KeepPrevious: true})
		},
		fixMode: func() error {
			for _, p := range paths {
				if err := fixMode(p, mode); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// holdsKey reports whether data is a store of type t, readable with
// password, holding exactly one key entry equal to key and chain. Comparing
// decoded inputs, not bytes, is what lets an unchanged source skip the write.
func holdsKey(data []byte, t Type, alias string, password []byte, key crypto.Signer, chain []*x509.Certificate) bool {
	c, err := decodeAs(data, t, password)
	if err != nil || len(c.Keys) != 1 || len(c.Trusted) != 0 {
		return false
	}
	e := c.Keys[0]
	if t == JKS && e.Alias != strings.ToLower(alias) { // Java stores aliases lower-cased
		return false
	}
	// Equal PKCS#8 encodings mean the same private key (and so the same
	// public key); no separate public-key comparison is needed.
	wantKey, err1 := x509.MarshalPKCS8PrivateKey(key)
	gotKey, err2 := x509.MarshalPKCS8PrivateKey(e.Key)
	return err1 == nil && err2 == nil && bytes.Equal(wantKey, gotKey) && sameCerts(e.Chain, chain)
}

func holdsTrust(data []byte, t Type, password []byte, cas []*x509.Certificate) bool {
	c, err := decodeAs(data, t, password)
	if err != nil || len(c.Keys) != 0 || len(c.Trusted) != len(cas) {
		return false
	}
	if t == PKCS12 { // go-pkcs12 decodes bags in order and drops friendly names
		got := make([]*x509.Certificate, len(c.Trusted))
		for i, e := range c.Trusted {
			got[i] = e.Cert
		}
		return sameCerts(got, cas)
	}
	byAlias := make(map[string]*x509.Certificate, len(c.Trusted))
	for _, e := range c.Trusted {
		byAlias[e.Alias] = e.Cert
	}
	for i, ca := range cas {
		if got := byAlias[caAlias(i)]; got == nil || !got.Equal(ca) {
			return false
		}
	}
	return true
}

func decodeAs(data []byte, t Type, password []byte) (*Contents, error) {
	c, err := Decode(data, password)
	if err != nil {
		return nil, err
	}
	if c.Type != t {
		return nil, fmt.Errorf("store is %s, want %s", c.Type, t)
	}
	return c, nil
}

func sameCerts(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
