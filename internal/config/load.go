package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
	c, used, err := parse(data, name, vars)
	if err != nil {
		return nil, redact(err, used, vars)
	}
	return c, nil
}

// parse also returns the variables the file's placeholders referred to.
func parse(data []byte, name string, vars render.Vars) (*Config, []string, error) {
	if err := oneDocument(data, name); err != nil {
		return nil, nil, err
	}
	// The same placeholder rules as every YAML template: only ${NAME} and
	// ${NAME:-default} in values, $${ for a literal ${, any other $ as is.
	expanded, used, err := render.Render(data, name, vars, render.YAML)
	if err != nil {
		return nil, used, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return nil, used, fmt.Errorf("%s: %w", name, err)
	}
	if err := Complete(&c); err != nil {
		return nil, used, fmt.Errorf("%s: %w", name, err)
	}
	return &c, used, nil
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

// redact replaces, in err's message, the value of every variable the file
// referred to with its ${NAME}. The names come from the renderer itself, so
// they follow the placeholder rules exactly (a placeholder written with a
// YAML escape, "\x24{X}", is one; $X and $${X} are not). Values shorter
// than three characters are left: they cannot be secrets worth the garbled
// message.
func redact(err error, used []string, vars render.Vars) error {
	msg := err.Error()
	type pair struct{ name, value string }
	var pairs []pair
	for _, n := range used {
		if v := vars[n]; len(v) >= 3 {
			pairs = append(pairs, pair{n, v})
		}
	}
	// Longest first, so a value that contains another is replaced whole.
	sort.Slice(pairs, func(i, j int) bool { return len(pairs[i].value) > len(pairs[j].value) })
	for _, p := range pairs {
		msg = strings.ReplaceAll(msg, p.value, "${"+p.name+"}")
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}
