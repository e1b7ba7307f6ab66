package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/atomicfile"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/files"
	"go.yaml.in/yaml/v3"
)

// Format says how a template is parsed, and so how the values placeholders
// produce are escaped.
type Format string

const (
	Auto       Format = ""           // by the output's file name (FormatFor)
	YAML       Format = "yaml"       // inside the scalar values of the parsed tree; the encoder quotes
	Properties Format = "properties" // Java properties: values escaped as java.util.Properties reads them
	INI        Format = "ini"        // Python configparser (cqlshrc): % doubled, unwritable values refused
	Text       Format = "text"       // no escaping: values that could change the structure are refused

	// shell is what a shell script resolves to: there is no shell format.
	shell Format = "shell"
)

// Formats are the formats a template may name.
var Formats = []Format{YAML, Properties, INI, Text}

// ParseFormat accepts a format name (any case) or "" for Auto.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(s))
	if f == Auto {
		return Auto, nil
	}
	for _, k := range Formats {
		if f == k {
			return f, nil
		}
	}
	return "", fmt.Errorf("format %q: want yaml, properties, ini or text", s)
}

// FormatFor resolves Auto by the file name: .yaml/.yml are YAML,
// .properties Properties, .ini/.cfg and cqlshrc INI, anything else text —
// except a shell script, which no format can render safely.
func FormatFor(f Format, path string) Format {
	if f != Auto {
		return f
	}
	base := strings.ToLower(filepath.Base(path))
	switch filepath.Ext(base) {
	case ".yaml", ".yml":
		return YAML
	case ".properties":
		return Properties
	case ".ini", ".cfg":
		return INI
	case ".sh", ".bash", ".ksh", ".zsh":
		return shell
	}
	if base == "cqlshrc" || base == ".cqlshrc" {
		return INI
	}
	return Text
}

// Bytes renders tmpl. name labels errors.
func Bytes(tmpl []byte, name string, vars Vars, f Format) ([]byte, error) {
	out, _, err := Render(tmpl, name, vars, f)
	return out, err
}

// Render is Bytes that also returns the names of the variables the
// template's placeholders referred to (for redacting their values), also
// when it fails.
func Render(tmpl []byte, name string, vars Vars, f Format) ([]byte, []string, error) {
	s := newSubstituter(vars)
	var (
		out []byte
		err error
	)
	switch FormatFor(f, name) {
	case YAML:
		out, err = renderYAML(tmpl, name, s)
	case Properties:
		out, err = renderProperties(tmpl, name, s)
	case INI:
		out, err = renderINI(tmpl, name, s)
	case Text:
		out, err = renderText(tmpl, name, s)
	case shell:
		err = fmt.Errorf("%s: a shell script cannot be rendered safely: no format escapes shell syntax, and a value with $(…), a backquote, ; or a quote would run as code; pass secrets to scripts as files or environment variables (format: text renders it anyway)", name)
	default:
		err = fmt.Errorf("%s: unknown format %q", name, f)
	}
	return out, s.usedNames(), err
}

// textBreaks are the characters that end a line for some reader: LF, CR,
// VT, FF, FS, GS, RS (Python's splitlines), NEL, LS, PS (Unicode, YAML
// 1.1) — and NUL, which ends a C string.
const textBreaks = "\n\r\v\f\x1c\x1d\x1e\u0085\u2028\u2029\x00"

// renderText substitutes in the raw text, escaping nothing, so it refuses
// every value that could change a line-oriented file's structure: one with
// a line break or NUL, and one that ends in a backslash right before the
// end of its line (or before only more backslashes there) — a line
// continuation in properties files, shell scripts and many more.
func renderText(tmpl []byte, name string, s *substituter) ([]byte, error) {
	src := string(tmpl)
	pieces, _ := s.split(src, name, 1, false)
	var (
		b    strings.Builder
		errs []string
		line = 1
	)
	for i, p := range pieces {
		b.WriteString(p.text)
		if p.name == "" {
			line += strings.Count(p.text, "\n")
			continue
		}
		if strings.ContainsAny(p.text, textBreaks) {
			errs = append(errs, fmt.Sprintf("%s:%d: the value of ${%s} contains a line break or NUL, which would change the file's structure (text templates escape nothing: use the yaml, properties or ini format)", name, line, p.name))
			continue
		}
		if strings.HasSuffix(p.text, "\\") && continues(pieces[i+1:]) {
			errs = append(errs, fmt.Sprintf("%s:%d: the value of ${%s} ends with a backslash at the end of the line, which would continue the line onto the next (text templates escape nothing: use the yaml, properties or ini format)", name, line, p.name))
		}
	}
	if err := s.err(name); err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return []byte(b.String()), nil
}

// continues reports whether what follows a value on its line is only
// backslashes, so that a backslash ending the value changes whether the
// line ends in an escaped line break.
func continues(rest []piece) bool {
	for _, p := range rest {
		t := strings.TrimLeft(p.text, "\\")
		if t == "" {
			continue
		}
		return strings.IndexAny(t[:1], "\r\n") == 0
	}
	return true // the end of the file
}

// renderYAML substitutes inside the scalar values of the parsed document,
// then lets the encoder quote them. Text substitution cannot keep a YAML
// file's structure — a password with ": " or a newline would add keys — but
// a scalar node stays one scalar whatever its value. Substituted values are
// strings ("true", "null", "123" stay strings) unless the template tags the
// scalar explicitly, e.g. `native_transport_port: !!int ${PORT}`, in which
// case the value must be of that type.
func renderYAML(tmpl []byte, name string, s *substituter) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(tmpl, &doc); err != nil {
		return nil, fmt.Errorf("%s: template is not valid YAML: %w", name, err)
	}
	if doc.Kind == 0 { // empty document
		return tmpl, nil
	}
	var errs []error
	walk(&doc, false, func(n *yaml.Node, isKey bool) {
		pieces, changed := s.split(n.Value, name, n.Line, false)
		if !changed {
			return
		}
		v := join(pieces)
		if isKey {
			if hasPlaceholder(pieces) {
				errs = append(errs, fmt.Errorf("%s:%d: placeholders are allowed in values only, not in the key %q", name, n.Line, n.Value))
			} else {
				n.Value = v // only escapes: $${ is a literal ${
			}
			return
		}
		if err := typeScalar(n, v); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, n.Line, err))
			return
		}
		n.Value = v
	})
	if err := s.err(name); err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("%s: encode: %w", name, err)
	}
	enc.Close()
	// Belt and braces: the output must parse to the same shape, with every
	// scalar holding exactly the value we put in it.
	var back yaml.Node
	if err := yaml.Unmarshal(buf.Bytes(), &back); err != nil {
		return nil, fmt.Errorf("%s: rendered YAML does not parse: %w", name, err)
	}
	if err := sameShape(&doc, &back, "$"); err != nil {
		return nil, fmt.Errorf("%s: rendering would change the document: %w", name, err)
	}
	return buf.Bytes(), nil
}

// typeScalar gives a substituted scalar its tag: a string unless the
// template tagged it explicitly with a type its new value satisfies.
//
// A string written plain is quoted. The encoder is a YAML 1.2 one: it would
// write off, Yes, y, 190:20:30 or = plain, and YAML 1.1 readers — SnakeYAML,
// which Cassandra reads cassandra.yaml with — take those for a boolean, a
// sexagesimal number or another type. A quoted scalar is a string for every
// reader of every YAML version, so no list of 1.1 patterns is needed.
func typeScalar(n *yaml.Node, v string) error {
	explicit := n.Style&yaml.TaggedStyle != 0
	if !explicit {
		n.Tag = "!!str"
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			n.Style |= yaml.DoubleQuotedStyle
		}
		return nil
	}
	var err error
	switch n.ShortTag() {
	case "!!str":
	case "!!int":
		_, err = strconv.ParseInt(v, 0, 64)
	case "!!float":
		_, err = strconv.ParseFloat(v, 64)
	case "!!bool":
		_, err = strconv.ParseBool(v)
	default:
		return fmt.Errorf("tag %s is not supported on a substituted value (use !!str, !!int, !!float or !!bool)", n.Tag)
	}
	if err != nil {
		return fmt.Errorf("the value substituted into a %s scalar is not of that type", n.ShortTag())
	}
	// The value resolves to the tag by itself now; emit it plain, as a
	// hand-written cassandra.yaml would have it.
	n.Tag = n.ShortTag()
	n.Style &^= yaml.TaggedStyle
	return nil
}

// walk visits every scalar; isKey is true for mapping keys.
func walk(n *yaml.Node, isKey bool, fn func(n *yaml.Node, isKey bool)) {
	switch n.Kind {
	case yaml.ScalarNode:
		fn(n, isKey)
	case yaml.MappingNode:
		for i, c := range n.Content {
			walk(c, i%2 == 0, fn)
		}
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			walk(c, false, fn)
		}
	}
}

// sameShape compares two trees: kinds, key order, and scalar values and tags.
func sameShape(a, b *yaml.Node, path string) error {
	if a.Kind != b.Kind || len(a.Content) != len(b.Content) {
		return fmt.Errorf("at %s the structure differs", path)
	}
	if a.Kind == yaml.ScalarNode && (a.Value != b.Value || a.ShortTag() != b.ShortTag()) {
		return fmt.Errorf("at %s the value or its type differs", path)
	}
	if a.Kind == yaml.AliasNode && a.Value != b.Value {
		return fmt.Errorf("at %s the alias differs", path)
	}
	for i := range a.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if a.Kind == yaml.MappingNode && i%2 == 1 {
			p = path + "." + a.Content[i-1].Value
		}
		if err := sameShape(a.Content[i], b.Content[i], p); err != nil {
			return err
		}
	}
	return nil
}

// File renders template into out (which may be the same file) atomically
// with mode, and only writes when the result differs from out's content.
// It reports whether out was written.
func File(template, out string, vars Vars, f Format, mode fs.FileMode) (bool, error) {
	tmpl, err := files.ReadNonEmpty(template)
	if err != nil {
		return false, err
	}
	data, err := Bytes(tmpl, template, vars, FormatFor(f, out))
	if err != nil {
		return false, err
	}
	if mode == 0 {
		mode = 0o600
	}
	return atomicfile.WriteIfChanged(out, data, mode)
}
