package render

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// INI files as Python's configparser.ConfigParser() reads them with its
// defaults — what cqlsh reads cqlshrc with.
//
// Lines end with \n, \r\n or \r. A line whose stripped text starts with #
// or ; is a comment; blank lines are kept inside a multi-line value. A line
// indented deeper than the option line before it continues that option's
// value. Otherwise a line is a [section] header or "option = value" (or
// ":"), split at the first delimiter; option names are lower-cased, and a
// duplicate section or option is an error. Values are stripped of white
// space (Python's idea of it: Unicode spaces, \v, \f, \x1c–\x1f too) at
// both ends of every line. On reading an option, % starts an interpolation:
// %% is a literal %, %(name)s another option's value, and any other % is an
// error.
//
// Placeholders are expanded in option values only (in a section header or
// option name they are an error; in a comment they are left as they are).
// Each value a placeholder produces has its % doubled; one with a line
// break, with white space where configparser would strip it, or that is
// not UTF-8 cannot be written, and is refused naming the variable.

// INIEntry is one option as configparser reads it, Value uninterpolated
// (what ConfigParser.get(..., raw=True) returns).
type INIEntry struct {
	Section, Option, Value string
	Line                   int // the option's line
}

// iniRegion is the raw text of one line's part of an option value.
type iniRegion struct {
	start, end int
	line       int
	entry      int // index of the option
}

type iniDoc struct {
	entries []INIEntry
	values  [][]string  // the lines of each entry's value
	regions []iniRegion // value text on option and continuation lines
	headers []iniRegion // section headers and option names: no placeholders
}

// ReadINI reads data as configparser.ConfigParser().read_string does with
// its defaults, returning every option in file order (the DEFAULT section's
// included, under "DEFAULT").
func ReadINI(data []byte) ([]INIEntry, error) {
	d, err := readINI(string(data))
	if err != nil {
		return nil, err
	}
	return d.entries, nil
}

// pyIsSpace is Python's str.isspace.
func pyIsSpace(r rune) bool { return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f }

// StripSpace is Python's str.strip(): what configparser does to values.
func StripSpace(s string) string { return strings.TrimFunc(s, pyIsSpace) }

func pyStrip(s string) (string, int) {
	t := strings.TrimLeftFunc(s, pyIsSpace)
	lead := len(s) - len(t)
	return strings.TrimRightFunc(t, pyIsSpace), lead
}

// iniLines splits src into lines as Python's universal newlines do: the
// offsets of each line's text, without its end.
func iniLines(src string) [][2]int {
	var out [][2]int
	start := 0
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '\n':
			out = append(out, [2]int{start, i})
			start = i + 1
		case '\r':
			out = append(out, [2]int{start, i})
			if i+1 < len(src) && src[i+1] == '\n' {
				i++
			}
			start = i + 1
		}
	}
	if start < len(src) {
		out = append(out, [2]int{start, len(src)})
	}
	return out
}

func readINI(src string) (*iniDoc, error) {
	if !utf8.ValidString(src) {
		return nil, errors.New("not valid UTF-8")
	}
	d := &iniDoc{}
	var (
		section, havSection = "", false
		option              = -1 // entry index of the current option
		indent              = 0
		seenSect            = map[string]bool{}
		seenOpt             = map[[2]string]bool{}
		errs                []string
	)
	for n, l := range iniLines(src) {
		lineNo := n + 1
		line := src[l[0]:l[1]]
		value, lead := pyStrip(line)
		if strings.HasPrefix(value, "#") || strings.HasPrefix(value, ";") {
			continue // a comment: not even an empty line of a value
		}
		if value == "" {
			if option >= 0 {
				d.values[option] = append(d.values[option], "")
			}
			continue
		}
		level := utf8.RuneCountInString(line[:lead]) // Python counts characters
		if havSection && option >= 0 && level > indent {
			d.values[option] = append(d.values[option], value)
			d.regions = append(d.regions, iniRegion{l[0] + lead, l[0] + lead + len(value), lineNo, option})
			continue
		}
		indent = level
		if strings.HasPrefix(value, "[") {
			if end := strings.LastIndex(value, "]"); end > 1 {
				section, havSection, option = value[1:end], true, -1
				if seenSect[section] && section != "DEFAULT" { // DEFAULT may be reopened
					errs = append(errs, fmt.Sprintf("line %d: section %q already exists", lineNo, section))
				}
				seenSect[section] = true
				d.headers = append(d.headers, iniRegion{l[0] + lead, l[0] + lead + len(value), lineNo, -1})
				continue
			}
		}
		if !havSection {
			return nil, fmt.Errorf("line %d: no section header before it", lineNo)
		}
		delim := strings.IndexAny(value, "=:")
		if delim < 0 {
			errs = append(errs, fmt.Sprintf("line %d: neither an option nor a section", lineNo))
			option = -1
			continue
		}
		name := strings.ToLower(strings.TrimRightFunc(value[:delim], pyIsSpace))
		if name == "" {
			errs = append(errs, fmt.Sprintf("line %d: an option without a name", lineNo))
		}
		if seenOpt[[2]string{section, name}] {
			errs = append(errs, fmt.Sprintf("line %d: option %q in section %q already exists", lineNo, name, section))
		}
		seenOpt[[2]string{section, name}] = true
		rest := value[delim+1:]
		v := strings.TrimLeftFunc(rest, pyIsSpace)
		vStart := l[0] + lead + delim + 1 + len(rest) - len(v)
		d.entries = append(d.entries, INIEntry{Section: section, Option: name, Line: lineNo})
		d.values = append(d.values, []string{v})
		option = len(d.entries) - 1
		d.headers = append(d.headers, iniRegion{l[0] + lead, l[0] + lead + delim, lineNo, option})
		d.regions = append(d.regions, iniRegion{vStart, vStart + len(v), lineNo, option})
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	for i := range d.entries {
		d.entries[i].Value = strings.TrimRightFunc(strings.Join(d.values[i], "\n"), pyIsSpace)
	}
	return d, nil
}

// Interpolate resolves what BasicInterpolation resolves without looking
// other options up: %% becomes %, %(name)s is kept, and any other % is an
// error, as configparser's get() would raise.
func Interpolate(v string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		switch {
		case i+1 < len(v) && v[i+1] == '%':
			b.WriteByte('%')
			i++
		case i+1 < len(v) && v[i+1] == '(':
			end := strings.Index(v[i:], ")")
			if end < 0 || i+end+1 >= len(v) {
				return "", errors.New("bad interpolation variable reference")
			}
			b.WriteString(v[i : i+end+2])
			i += end + 1
		default:
			return "", errors.New("'%' must be followed by '%' or '('")
		}
	}
	return b.String(), nil
}

// INIEscape writes a value for an INI file read with interpolation: % is
// doubled.
func INIEscape(v string) string { return strings.ReplaceAll(v, "%", "%%") }

// renderINI expands placeholders in the option values of an INI template,
// escaping what they produce, then re-reads the result.
func renderINI(tmpl []byte, name string, s *substituter) ([]byte, error) {
	src := string(tmpl)
	d, err := readINI(src)
	if err != nil {
		return nil, fmt.Errorf("%s: template is not an INI file configparser reads: %w", name, err)
	}
	var errs []string
	for _, h := range d.headers {
		if p, _ := s.split(src[h.start:h.end], name, h.line, false); hasPlaceholder(p) {
			errs = append(errs, fmt.Sprintf("%s:%d: placeholders are allowed in option values only, not in a section header or option name", name, h.line))
		}
	}
	var (
		doc  assembly
		last int
	)
	for _, r := range d.regions {
		doc.text(src[last:r.start])
		pieces, _ := s.split(src[r.start:r.end], name, r.line, false)
		for i, p := range pieces {
			if p.name == "" {
				doc.text(p.text)
				continue
			}
			if reason := iniUnfit(p.text, i == 0, i == len(pieces)-1); reason != "" {
				errs = append(errs, fmt.Sprintf("%s:%d: the value of ${%s} %s, which configparser cannot read back", name, r.line, p.name, reason))
			}
			doc.value(p, INIEscape)
		}
		last = r.end
	}
	doc.text(src[last:])
	return doc.finish(name, s, errs, checkINI)
}

// iniUnfit says why v cannot be an INI value's text ("" when it can); first
// and last tell whether it begins or ends the line's value.
func iniUnfit(v string, first, last bool) string {
	switch {
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	case strings.ContainsAny(v, "\r\n"):
		return "contains a line break"
	case first && strings.IndexFunc(v, pyIsSpace) == 0:
		return "starts with white space"
	case last && strings.TrimRightFunc(v, pyIsSpace) != v:
		return "ends with white space"
	}
	return ""
}

// checkINI re-reads the output: the same sections and options in the same
// order, and every value, interpolated, equal to what the template with its
// placeholders' values inserted means (from a probe rendering with markers).
func checkINI(doc *assembly, out string) error {
	markers, ok := doc.markers()
	if !ok {
		return errors.New("too many placeholders to check")
	}
	got, err := readINI(out)
	if err != nil {
		return err
	}
	probe, err := readINI(doc.render(markers))
	if err != nil {
		return err
	}
	if len(got.entries) != len(probe.entries) {
		return fmt.Errorf("%d options instead of %d", len(got.entries), len(probe.entries))
	}
	for i, p := range probe.entries {
		g := got.entries[i]
		if g.Section != p.Section || g.Option != p.Option {
			return fmt.Errorf("line %d: the section or option differs", p.Line)
		}
		// Raw, the value holds each placeholder's escaped text; read with
		// interpolation, the value itself.
		bad := g.Value != doc.fill(p.Value, markers, true)
		want, werr := Interpolate(p.Value)
		have, herr := Interpolate(g.Value)
		if (werr == nil) != (herr == nil) || werr == nil && have != doc.fill(want, markers, false) {
			bad = true
		}
		if bad {
			return fmt.Errorf("line %d: the value of %q would not read back as rendered", p.Line, p.Option)
		}
	}
	return nil
}
