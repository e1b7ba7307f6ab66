package render

import (
	"fmt"
	"sort"
	"strings"
)

// The placeholder syntax, and nothing more:
//
//	${NAME}           the value of NAME; an error when NAME is unset or empty
//	${NAME:-default}  the value of NAME, or default when NAME is unset or empty
//	$${               a literal ${ (the only escape)
//
// NAME is an ASCII letter or _ followed by letters, digits or _. A default
// is literal text up to the first }: it may not hold a line break or ${,
// and a $ in it is just a $. Every other $ is literal and left as it is:
// $$, $NAME, a$b, ${a.b}, ${ X}, ${}. Two near misses are errors rather
// than literal text, because leaving them would silently ship the
// placeholder as a value: ${NAME followed by a shell operator this syntax
// does not have (-, =, +, ?, or : other than :-), and a ${NAME or
// ${NAME:-… that is not closed on its line.
//
// This is a deliberately small subset of envsubst's syntax: envsubst (and
// github.com/a8m/envsubst, which this package used before) also expands
// $NAME and rewrites $$, so rendering an existing file — cassandra.yaml in
// place, a properties file with a $ in a password — changed text that was
// never meant as a placeholder.

// ref is one placeholder or escape found in a string.
type ref struct {
	start, end int // s[start:end] is the whole ${…} or $${
	escape     bool
	name       string
	def        string
	hasDef     bool
}

func isNameStart(c byte) bool {
	return c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

func isNameByte(c byte) bool { return isNameStart(c) || '0' <= c && c <= '9' }

// scanRef looks at s[i], which must be '$'. ok is false when the $ is
// literal text.
func scanRef(s string, i int) (r ref, ok bool, err error) {
	if strings.HasPrefix(s[i:], "$${") {
		return ref{start: i, end: i + 3, escape: true}, true, nil
	}
	if !strings.HasPrefix(s[i:], "${") || i+2 >= len(s) || !isNameStart(s[i+2]) {
		return ref{}, false, nil
	}
	k := i + 2
	for k < len(s) && isNameByte(s[k]) {
		k++
	}
	name := s[i+2 : k]
	if k == len(s) || s[k] == '\n' || s[k] == '\r' {
		return ref{}, false, fmt.Errorf("${%s is not closed with } on its line (write $${ for a literal ${)", name)
	}
	switch s[k] {
	case '}':
		return ref{start: i, end: k + 1, name: name}, true, nil
	case ':':
		if k+1 < len(s) && s[k+1] == '-' {
			d := k + 2
			for e := d; e < len(s); e++ {
				switch {
				case s[e] == '}':
					return ref{start: i, end: e + 1, name: name, def: s[d:e], hasDef: true}, true, nil
				case s[e] == '\n' || s[e] == '\r':
					return ref{}, false, fmt.Errorf("${%s:-… is not closed with } on its line", name)
				case strings.HasPrefix(s[e:], "${"):
					return ref{}, false, fmt.Errorf("the default of ${%s:-…} contains ${: nested placeholders are not supported", name)
				}
			}
			return ref{}, false, fmt.Errorf("${%s:-… is not closed with } on its line", name)
		}
		return ref{}, false, unsupported(name, s[k:])
	case '-', '=', '+', '?':
		return ref{}, false, unsupported(name, s[k:])
	}
	return ref{}, false, nil // e.g. ${a.b}: not a placeholder
}

func unsupported(name, rest string) error {
	op := rest[:1]
	if len(rest) > 1 && strings.ContainsRune("-=+?", rune(rest[1])) && op == ":" {
		op = rest[:2]
	}
	return fmt.Errorf("${%s%s…} is not supported: only ${NAME} and ${NAME:-default} are placeholders (write $${ for a literal ${)", name, op)
}

// piece is a run of rendered text: literal template text, or what a
// placeholder produced (the variable's value or its default).
type piece struct {
	text string
	name string // the placeholder's variable; "" for template text
}

// substituter expands placeholders string by string, collecting the names
// of missing variables and syntax errors across calls, so that all of them
// are reported together.
type substituter struct {
	vars    Vars
	used    map[string]bool
	missing map[string]bool
	errs    []string
}

func newSubstituter(v Vars) *substituter {
	return &substituter{vars: v, used: map[string]bool{}, missing: map[string]bool{}}
}

// split cuts in into template text and placeholder values, in order. file
// and line (in's first line) locate errors. With backslash, a backslash and
// the byte after it are template text (a Java properties escape: \${ is not
// a placeholder). changed reports whether any placeholder or escape was
// found.
func (s *substituter) split(in, file string, line int, backslash bool) (pieces []piece, changed bool) {
	lit := 0     // start of pending template text
	counted := 0 // in[:counted] has had its line breaks added to line
	for i := 0; i < len(in); i++ {
		c := in[i]
		if backslash && c == '\\' {
			i++
			continue
		}
		if c != '$' {
			continue
		}
		r, ok, err := scanRef(in, i)
		if err != nil {
			line += strings.Count(in[counted:i], "\n")
			counted = i
			s.errs = append(s.errs, fmt.Sprintf("%s:%d: %v", file, line, err))
			continue
		}
		if !ok {
			continue
		}
		changed = true
		if r.escape {
			pieces = append(pieces, piece{text: in[lit:i] + "${"})
		} else {
			if i > lit {
				pieces = append(pieces, piece{text: in[lit:i]})
			}
			pieces = append(pieces, piece{text: s.lookup(r), name: r.name})
		}
		lit = r.end
		i = r.end - 1
	}
	if lit < len(in) || len(pieces) == 0 {
		pieces = append(pieces, piece{text: in[lit:]})
	}
	return pieces, changed
}

// lookup is the value a placeholder stands for; a missing one is recorded.
func (s *substituter) lookup(r ref) string {
	s.used[r.name] = true
	if v := s.vars[r.name]; v != "" {
		return v
	}
	if r.def != "" {
		return r.def
	}
	s.missing[r.name] = true
	return ""
}

// hasPlaceholder reports whether any piece came from a placeholder.
func hasPlaceholder(pieces []piece) bool {
	for _, p := range pieces {
		if p.name != "" {
			return true
		}
	}
	return false
}

func join(pieces []piece) string {
	var b strings.Builder
	for _, p := range pieces {
		b.WriteString(p.text)
	}
	return b.String()
}

// usedNames lists every variable a placeholder referred to, sorted.
func (s *substituter) usedNames() []string {
	names := make([]string, 0, len(s.used))
	for n := range s.used {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s *substituter) err(template string) error {
	if len(s.errs) > 0 {
		return fmt.Errorf("%s", strings.Join(s.errs, "; "))
	}
	if len(s.missing) > 0 {
		names := make([]string, 0, len(s.missing))
		for n := range s.missing {
			names = append(names, n)
		}
		sort.Strings(names)
		return &MissingError{Template: template, Names: names}
	}
	return nil
}
