package render

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/secret"
)

// Vars maps variable names to values.
type Vars map[string]string

// VarName turns a secret file name into a variable name: upper case, every
// character other than A–Z, 0–9 and _ becomes _. So the Secret key
// "keystore-password" fills ${KEYSTORE_PASSWORD}, and "truststore.pass"
// fills ${TRUSTSTORE_PASS}.
func VarName(file string) string {
	return nonIdent.ReplaceAllString(strings.ToUpper(file), "_")
}

var nonIdent = regexp.MustCompile(`[^A-Z0-9_]`)

// FromEnviron reads "KEY=VALUE" pairs such as os.Environ returns.
func FromEnviron(environ []string) Vars {
	v := Vars{}
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok {
			v[k] = val
		}
	}
	return v
}

// LoadSecretsDir adds one variable per regular file in dir, named by
// VarName, holding the file's content less one trailing newline. Hidden
// entries — the kubelet's ..data and ..<timestamp> — are skipped; the
// per-key symlinks are followed. Secrets override the environment.
func (v Vars) LoadSecretsDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("secrets directory: %w", err)
	}
	from := map[string]string{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p) // follows the kubelet's symlinks
		if err != nil || st.IsDir() {
			continue
		}
		name := VarName(e.Name())
		if prev, dup := from[name]; dup {
			return fmt.Errorf("secrets directory %s: %q and %q both map to ${%s}", dir, prev, e.Name(), name)
		}
		from[name] = e.Name()
		data, err := secret.ReadFile(p)
		if err != nil {
			return fmt.Errorf("secrets directory: %w", err)
		}
		v[name] = string(data)
	}
	return nil
}

// MissingError names every placeholder that had no value.
type MissingError struct {
	Template string
	Names    []string // sorted, unique
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s: no value for %s (set them in the environment or the secrets directory)", e.Template, strings.Join(e.Names, ", "))
}
