package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/files"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render"
	"go.yaml.in/yaml/v3"
)

// Load reads, expands, decodes, completes with defaults and validates the
// file at path. Any error is a configuration error (exit 2): nothing has
// been written when it is returned.
func Load(path string, environ []string) (*Config, error) {
	data, err := files.ReadNonEmpty(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path, environ)
}

// Parse expands ${VAR} from environ, decodes strictly (unknown keys are
// errors: a typo must not silently disable a feature; one document only),
// applies the defaults and validates. Error messages never carry the value
// of a variable: it may be a secret.
func Parse(data []byte, name string, environ []string) (*Config, error) {
	vars := render.FromEnviron(environ)
	c, err := parse(data, name, vars)
	if err != nil {
		return nil, redact(err, data, vars)
	}
	return c, nil
}

func parse(data []byte, name string, vars render.Vars) (*Config, error) {
	if err := oneDocument(data, name); err != nil {
		return nil, err
	}
	expanded, err := render.Bytes(data, name, vars, render.YAML)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := Complete(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

// Complete applies the defaults to a configuration built in code (the
// one-shot commands describe their single store this way) and validates it.
func Complete(c *Config) error {
	c.applyDefaults()
	return c.Validate()
}

// oneDocument refuses a file with several YAML documents: the agent would
// read the first and silently ignore the rest.
func oneDocument(data []byte, name string) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	for n := 0; ; n++ {
		err := dec.Decode(&doc)
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return fmt.Errorf("%s: %w", name, err)
		case n == 1:
			return fmt.Errorf("%s: more than one YAML document (a '---' separator): the agent reads exactly one", name)
		}
	}
}

var varRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// redact replaces, in err's message, the value of every variable the file
// refers to with its ${NAME}. Values shorter than three characters are left:
// they cannot be secrets worth the garbled message.
func redact(err error, data []byte, vars render.Vars) error {
	msg := err.Error()
	type pair struct{ name, value string }
	var used []pair
	for _, m := range varRef.FindAllSubmatch(data, -1) {
		if v := vars[string(m[1])]; len(v) >= 3 {
			used = append(used, pair{string(m[1]), v})
		}
	}
	// Longest first, so a value that contains another is replaced whole.
	sort.Slice(used, func(i, j int) bool { return len(used[i].value) > len(used[j].value) })
	for _, p := range used {
		msg = strings.ReplaceAll(msg, p.value, "${"+p.name+"}")
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}
