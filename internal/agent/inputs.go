package agent

import (
	"crypto/sha256"
	"fmt"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/config"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/files"
)

// inputs is a hash of everything a store's outputs depend on: the source
// files (pki.Source.Paths: a directory's files or a credential bundle, and
// the trust bundles), passwords and options. Comparing hashes, not mtimes,
// is what makes the kubelet's symlink swaps (which change no mtime of the
// files themselves) and lost events harmless.
type inputs [32]byte

// readInputs hashes a store's inputs. Unreadable files hash as their error,
// so appearing and disappearing files are changes too.
func readInputs(c config.Store, getenv func(string) string) inputs {
	h := sha256.New()
	add := func(label string, data []byte) {
		fmt.Fprintf(h, "%s\x00%d\x00", label, len(data))
		h.Write(data)
	}
	file := func(p string) {
		data, err := files.Read(p)
		if err != nil {
			add(p, []byte("error: "+err.Error()))
			return
		}
		add(p, data)
	}
	for _, f := range c.PKISource().Paths() {
		file(f)
	}
	for _, f := range []string{c.PasswordFile, c.TruststorePasswordFile} {
		if f != "" {
			file(f)
		}
	}
	if c.PasswordEnv != "" {
		add("env", []byte(getenv(c.PasswordEnv)))
	}
	fmt.Fprintf(h, "%+v%+v%+v%v", c.Keystore, c.Truststore, c.PEM, c.Mode)
	var out inputs
	copy(out[:], h.Sum(nil))
	return out
}

// passwordsOf hashes a store's passwords: Cassandra keeps the ones it read
// from cassandra.yaml at start, so a change cannot be hot-reloaded.
func passwordsOf(pw, tpw []byte) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00", len(pw))
	h.Write(pw)
	h.Write(tpw)
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
