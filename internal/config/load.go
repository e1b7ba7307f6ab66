package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
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
		var te *yaml.TypeError
		if errors.As(err, &te) {
			err = hideValues(te)
		}
		return nil, used, fmt.Errorf("%s: %w", name, err)
	}
	if err := Complete(&c); err != nil {
		return nil, used, fmt.Errorf("%s: %w", name, err)
	}
	return &c, used, nil
}

// shownValue is the part of a yaml.v3 type error that shows the value
// ("cannot unmarshal !!str `s3cr3t-...` into int"): after expansion, any
// part of a value may have come from a secret.
var shownValue = regexp.MustCompile("(?s)(cannot unmarshal !!\\w+) `.*` (into )")

// hideValues drops the values from a type error's messages; the line and
// the types stay.
func hideValues(te *yaml.TypeError) error {
	out := &yaml.TypeError{Errors: make([]string, len(te.Errors))}
	for i, e := range te.Errors {
		out.Errors[i] = shownValue.ReplaceAllString(e, "$1 $2")
	}
	return out
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
// YAML escape, "\x24{X}", is one; $X and $${X} are not). A value is found in
// every form an error may show it: as it is, quoted the Go way (%q), and cut
// to seven bytes the way yaml.v3's type errors show a long one ("`s3cr3t-...`").
// All occurrences are found in the original message first, so a replacement
// cannot form a new one. Values shorter than three characters are left: they
// cannot be secrets worth the garbled message.
func redact(err error, used []string, vars render.Vars) error {
	msg := err.Error()
	type form struct{ text, name string }
	var forms []form
	for _, n := range used {
		v := vars[n]
		if len(v) < 3 {
			continue
		}
		forms = append(forms, form{v, n})
		if q := strconv.Quote(v); q[1:len(q)-1] != v {
			forms = append(forms, form{q[1 : len(q)-1], n})
		}
		if len(v) > 10 {
			forms = append(forms, form{"`" + v[:7] + "...`", n})
		}
	}
	// Longest first, so a value that contains another is replaced whole.
	sort.SliceStable(forms, func(i, j int) bool { return len(forms[i].text) > len(forms[j].text) })
	owner := make([]int, len(msg)) // 1 + index into forms of the form covering each byte
	for fi, f := range forms {
		for off := 0; off+len(f.text) <= len(msg); {
			i := strings.Index(msg[off:], f.text)
			if i < 0 {
				break
			}
			for k := off + i; k < off+i+len(f.text); k++ {
				if owner[k] == 0 {
					owner[k] = fi + 1
				}
			}
			off += i + 1
		}
	}
	var b strings.Builder
	changed := false
	for i := 0; i < len(msg); i++ {
		switch o := owner[i]; {
		case o == 0:
			b.WriteByte(msg[i])
		case i == 0 || owner[i-1] == 0 || forms[owner[i-1]-1].name != forms[o-1].name:
			b.WriteString("${" + forms[o-1].name + "}")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return errors.New(b.String())
}
