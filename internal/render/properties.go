package render

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Java .properties files, as java.util.Properties.load reads them.
//
// A logical line is a natural line (ended by \n, \r or \r\n) continued by an
// odd number of backslashes before its end; the backslash, the line end and
// the next line's leading white space (space, \t, \f) vanish. A line whose
// first non-white character is # or ! is a comment (never continued). The
// key ends at the first unescaped =, : or white space; white space and at
// most one = or : after it are skipped; the rest is the value. In keys and
// values \t \n \r \f \uXXXX are escapes and a backslash before any other
// character stands for that character.
//
// Placeholders are expanded in values only (a placeholder in a key is an
// error, one in a comment is left as it is), and each value a placeholder
// produces is escaped so that it reads back exactly: \ → \\, control and
// non-ASCII characters as \uXXXX (so load(InputStream), which reads
// ISO-8859-1, and load(Reader) agree), and a leading space, =, :, # or ! with
// a backslash. A \$ in the template is Java's escape for $ and starts no
// placeholder.

// Property is one key and value as java.util.Properties reads them.
type Property struct {
	Key, Value string
	Line       int // the natural line the entry starts on
}

// propLine is one logical line: its key and value, with the offsets in the
// source of the raw key and value text.
type propLine struct {
	Property
	keyStart, keyEnd int // raw key: src[keyStart:keyEnd]
	valStart, valEnd int // raw value: src[valStart:valEnd] (continuations included)
}

// ReadProperties reads data as java.util.Properties.load(Reader) does with
// a UTF-8 reader. Its only error is Java's: a malformed \uXXXX escape.
func ReadProperties(data []byte) ([]Property, error) {
	lines, err := readPropLines(string(data))
	if err != nil {
		return nil, err
	}
	out := make([]Property, len(lines))
	for i, l := range lines {
		out[i] = l.Property
	}
	return out, nil
}

func readPropLines(src string) ([]propLine, error) {
	var out []propLine
	lineOf := lineIndex(src).of
	off := 0
	for {
		buf, pos, next, ok := propReadLine(src, off)
		if !ok {
			return out, nil
		}
		off = next
		limit := len(buf)
		keyLen, valueStart := 0, limit
		hasSep, preceding := false, false
		for keyLen < limit {
			c := buf[keyLen]
			if (c == '=' || c == ':') && !preceding {
				valueStart, hasSep = keyLen+1, true
				break
			} else if (c == ' ' || c == '\t' || c == '\f') && !preceding {
				valueStart = keyLen + 1
				break
			}
			preceding = c == '\\' && !preceding
			keyLen++
		}
		for valueStart < limit {
			c := buf[valueStart]
			if c != ' ' && c != '\t' && c != '\f' {
				if !hasSep && (c == '=' || c == ':') {
					hasSep = true
				} else {
					break
				}
			}
			valueStart++
		}
		end := pos[0] // an empty line (a lone backslash at the end): everything at the backslash
		if limit > 0 {
			end = pos[limit-1] + 1
		}
		l := propLine{keyStart: pos[0], keyEnd: pos[0], valStart: end, valEnd: end}
		l.Line = lineOf(pos[0])
		if keyLen > 0 {
			l.keyEnd = pos[keyLen-1] + 1
		}
		if valueStart < limit {
			l.valStart = pos[valueStart]
		}
		var err error
		if l.Key, err = propDecode(buf[:keyLen]); err == nil {
			l.Value, err = propDecode(buf[valueStart:limit])
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", l.Line, err)
		}
		out = append(out, l)
	}
}

// propReadLine is Properties.LineReader.readLine from src[off:]: the
// logical line's bytes, the source offset of each, and where reading goes
// on. ok is false at the end of the input.
func propReadLine(src string, off int) (buf []byte, pos []int, next int, ok bool) {
	skipWhite, appendedLineBegin, preceding := true, false, false
	for off < len(src) {
		c := src[off]
		off++
		if skipWhite {
			if c == ' ' || c == '\t' || c == '\f' {
				continue
			}
			if !appendedLineBegin && (c == '\r' || c == '\n') {
				continue
			}
			skipWhite, appendedLineBegin = false, false
		}
		if len(buf) == 0 && (c == '#' || c == '!') {
			for off < len(src) && src[off] != '\n' && src[off] != '\r' {
				off++
			}
			skipWhite = true
			continue
		}
		if c != '\n' && c != '\r' {
			buf = append(buf, c)
			pos = append(pos, off-1)
			preceding = c == '\\' && !preceding
			continue
		}
		if len(buf) == 0 {
			skipWhite = true
			continue
		}
		if !preceding {
			return buf, pos, off, true
		}
		// A continuation: the backslash is not part of the line.
		buf, pos = buf[:len(buf)-1], pos[:len(pos)-1]
		skipWhite, appendedLineBegin, preceding = true, true, false
		if c == '\r' && off < len(src) && src[off] == '\n' {
			off++
		}
	}
	if len(buf) == 0 {
		return nil, nil, off, false
	}
	if preceding {
		// A backslash ending the input is dropped; what is left may be an
		// empty line, which Java still reads as the entry "" = "". pos keeps
		// the backslash's offset then, to place the empty key and value.
		if len(buf) == 1 {
			return buf[:0], pos, off, true
		}
		buf, pos = buf[:len(buf)-1], pos[:len(pos)-1]
	}
	return buf, pos, off, true
}

var errMalformedU = errors.New(`malformed \uxxxx encoding`)

// propDecode is Properties.loadConvert: escapes resolved, UTF-16 units
// joined into a string (the raw bytes are read as UTF-8).
func propDecode(raw []byte) (string, error) {
	if !strings.ContainsRune(string(raw), '\\') {
		return string(raw), nil
	}
	var units []uint16
	appendText := func(b []byte) {
		for len(b) > 0 {
			r, n := utf8.DecodeRune(b)
			units = utf16.AppendRune(units, r)
			b = b[n:]
		}
	}
	for i := 0; i < len(raw); {
		j := i
		for j < len(raw) && raw[j] != '\\' {
			j++
		}
		appendText(raw[i:j])
		if j == len(raw) {
			break
		}
		j++ // the backslash; readLine never leaves one unpaired at the end
		if j >= len(raw) {
			break
		}
		c := raw[j]
		j++
		switch c {
		case 'u':
			if j+4 > len(raw) {
				return "", errMalformedU
			}
			var v uint16
			for _, h := range raw[j : j+4] {
				switch {
				case '0' <= h && h <= '9':
					v = v<<4 + uint16(h-'0')
				case 'a' <= h && h <= 'f':
					v = v<<4 + 10 + uint16(h-'a')
				case 'A' <= h && h <= 'F':
					v = v<<4 + 10 + uint16(h-'A')
				default:
					return "", errMalformedU
				}
			}
			units = append(units, v)
			j += 4
		case 't':
			units = append(units, '\t')
		case 'r':
			units = append(units, '\r')
		case 'n':
			units = append(units, '\n')
		case 'f':
			units = append(units, '\f')
		default:
			// Any other escaped character stands for itself (a whole rune).
			j--
			r, n := utf8.DecodeRune(raw[j:])
			units = utf16.AppendRune(units, r)
			j += n
		}
		i = j
	}
	return string(utf16.Decode(units)), nil
}

// propEscape writes a value so that, placed in a properties value, it reads
// back exactly whatever precedes or follows it.
func propEscape(v string) string {
	var b strings.Builder
	for i, r := range v {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\f':
			b.WriteString(`\f`)
		case i == 0 && strings.ContainsRune(" =:#!", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7e:
			for _, u := range utf16.AppendRune(nil, r) {
				fmt.Fprintf(&b, `\u%04X`, u)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// renderProperties expands placeholders in the values of a properties
// template, escaping what they produce, then re-reads the result.
func renderProperties(tmpl []byte, name string, s *substituter) ([]byte, error) {
	src := string(tmpl)
	lines, err := readPropLines(src)
	if err != nil {
		return nil, fmt.Errorf("%s: template is not a valid properties file: %w", name, err)
	}
	var (
		doc    assembly
		errs   []string
		last   int
		lineOf = lineIndex(src).of
	)
	for _, l := range lines {
		doc.text(src[last:l.keyStart])
		kp, _ := s.split(src[l.keyStart:l.keyEnd], name, l.Line, true)
		if hasPlaceholder(kp) {
			errs = append(errs, fmt.Sprintf("%s:%d: placeholders are allowed in values only, not in the key %q", name, l.Line, l.Key))
		}
		doc.text(join(kp))
		doc.text(src[l.keyEnd:l.valStart])
		vp, _ := s.split(src[l.valStart:l.valEnd], name, lineOf(l.valStart), true)
		for _, p := range vp {
			if p.name == "" {
				doc.text(p.text)
				continue
			}
			if !utf8.ValidString(p.text) {
				errs = append(errs, fmt.Sprintf("%s:%d: the value of ${%s} is not valid UTF-8", name, lineOf(l.valStart), p.name))
			}
			doc.value(p, propEscape)
		}
		last = l.valEnd
	}
	doc.text(src[last:])
	return doc.finish(name, s, errs, checkProperties)
}

// checkProperties re-reads the output: the same keys in the same order,
// and every value equal to what the template with its placeholders' values
// inserted means. The expectation comes from a probe rendering in which
// each placeholder produced a unique private-use character instead.
func checkProperties(doc *assembly, out string) error {
	markers, ok := doc.markers()
	if !ok {
		return errors.New("too many placeholders to check")
	}
	got, err := readPropLines(out)
	if err != nil {
		return err
	}
	probe, err := readPropLines(doc.render(markers))
	if err != nil {
		return err
	}
	if len(got) != len(probe) {
		return fmt.Errorf("%d entries instead of %d", len(got), len(probe))
	}
	for i := range got {
		if got[i].Key != probe[i].Key {
			return fmt.Errorf("line %d: the key differs", probe[i].Line)
		}
		if got[i].Value != doc.fill(probe[i].Value, markers, false) {
			return fmt.Errorf("line %d: the value of %q would not read back as rendered", probe[i].Line, probe[i].Key)
		}
	}
	return nil
}

// lineStarts maps offsets in a text to 1-based line numbers (lines end with \n,
// \r\n or \r).
type lineStarts []int // the offset each line starts at

func lineIndex(src string) lineStarts {
	l := lineStarts{0}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' || src[i] == '\r' && (i+1 == len(src) || src[i+1] != '\n') {
			l = append(l, i+1)
		}
	}
	return l
}

func (l lineStarts) of(off int) int { return sort.SearchInts(l, off+1) }
