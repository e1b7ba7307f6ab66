package render

import (
	"fmt"
	"strings"
)

// assembly is a rendered line-oriented file kept as its parts: template
// text, and the values placeholders produced with the escaping each gets.
// It can be put together again with other values in the placeholders'
// places, which is how the properties and INI renderers check their output.
type assembly struct {
	segs []segment
	n    int // values
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
	var tmpl strings.Builder
	for _, s := range a.segs {
		if !s.value {
			tmpl.WriteString(s.text)
		}
	}
	text := tmpl.String()
	lower := strings.ToLower(text)
	out := make([]string, 0, a.n)
	for _, span := range [][2]rune{{0xE000, 0xF8FF}, {0xF0000, 0xFFFFD}} {
		for r := span[0]; r <= span[1] && len(out) < a.n; r++ {
			if strings.ContainsRune(text, r) || r <= 0xFFFF && strings.Contains(lower, fmt.Sprintf(`\u%04x`, r)) {
				continue
			}
			out = append(out, string(r))
		}
	}
	return out, len(out) == a.n
}

// fill replaces, in a value read back from a probe rendering, each marker
// by the value it stood for (escaped: as the value is written).
func (a *assembly) fill(s string, markers []string, escaped bool) string {
	if len(markers) == 0 {
		return s
	}
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
	return strings.NewReplacer(pairs...).Replace(s)
}
