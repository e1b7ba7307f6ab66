package render

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// assembly is a rendered line-oriented file kept as its parts: template
// text, and the values placeholders produced with the escaping each gets.
// It can be put together again with other values in the placeholders'
// places, which is how the properties and INI renderers check their output.
type assembly struct {
	segs     []segment
	n        int                        // values
	replacer map[bool]*strings.Replacer // fill's, escaped or not, for the current markers
}

type segment struct {
	text   string // template text, or the placeholder's value
	value  bool
	escape func(string) string
}

func (a *assembly) text(s string) {
	if s != "" {
		a.segs = append(a.segs, segment{text: s})
	}
}

func (a *assembly) value(p piece, escape func(string) string) {
	a.segs = append(a.segs, segment{text: p.text, value: true, escape: escape})
	a.n++
}

// render joins the parts; with markers, the i-th value is replaced by
// markers[i] (escaped the same way).
func (a *assembly) render(markers []string) string {
	var b strings.Builder
	i := 0
	for _, s := range a.segs {
		switch {
		case !s.value:
			b.WriteString(s.text)
		case markers != nil:
			b.WriteString(s.escape(markers[i]))
			i++
		default:
			b.WriteString(s.escape(s.text))
		}
	}
	return b.String()
}

// markers picks one private-use character per value that the template text
// does not contain, neither as itself nor as a \u escape. ok is false when
// there are more values than characters to mark them with.
func (a *assembly) markers() ([]string, bool) {
	taken := map[rune]bool{}
	for _, s := range a.segs {
		if s.value {
			continue
		}
		for _, r := range s.text {
			if isPrivateUse(r) {
				taken[r] = true
			}
		}
		for i := strings.Index(s.text, `\u`); i >= 0; i = nextIndex(s.text, `\u`, i) {
			if v, err := strconv.ParseUint(s.text[i+2:min(i+6, len(s.text))], 16, 32); err == nil && i+6 <= len(s.text) {
				taken[rune(v)] = true
			}
		}
	}
	out := make([]string, 0, a.n)
	for _, span := range [][2]rune{{0xE000, 0xF8FF}, {0xF0000, 0xFFFFD}} {
		for r := span[0]; r <= span[1] && len(out) < a.n; r++ {
			if !taken[r] {
				out = append(out, string(r))
			}
		}
	}
	a.replacer = nil
	return out, len(out) == a.n
}

func isPrivateUse(r rune) bool { return 0xE000 <= r && r <= 0xF8FF || 0xF0000 <= r && r <= 0xFFFFD }

// nextIndex is the index of sub in s after position i, or -1.
func nextIndex(s, sub string, i int) int {
	j := strings.Index(s[i+1:], sub)
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// fill replaces, in a value read back from a probe rendering, each marker
// by the value it stood for (escaped: as the value is written).
func (a *assembly) fill(s string, markers []string, escaped bool) string {
	if len(markers) == 0 {
		return s
	}
	if a.replacer == nil {
		a.replacer = map[bool]*strings.Replacer{}
	}
	r := a.replacer[escaped]
	if r == nil {
		pairs := make([]string, 0, 2*len(markers))
		i := 0
		for _, seg := range a.segs {
			if seg.value {
				v := seg.text
				if escaped {
					v = seg.escape(v)
				}
				pairs = append(pairs, markers[i], v)
				i++
			}
		}
		r = strings.NewReplacer(pairs...)
		a.replacer[escaped] = r
	}
	return r.Replace(s)
}

// finish ends a rendering in a format that knows its escaping: the
// scanner's placeholder errors first, then the values the format refused,
// then the rendered text, which check reads back against the template.
func (a *assembly) finish(name string, s *substituter, refused []string, check func(*assembly, string) error) ([]byte, error) {
	if err := s.err(name); err != nil {
		return nil, err
	}
	if len(refused) > 0 {
		return nil, errors.New(strings.Join(refused, "; "))
	}
	out := a.render(nil)
	if err := check(a, out); err != nil {
		return nil, fmt.Errorf("%s: rendering would change the file: %w", name, err)
	}
	return []byte(out), nil
}
