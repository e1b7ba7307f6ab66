package render

import (
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render/rendertest"
)

// fuzzFormats: the format a fuzz input selects, and the file name used.
var fuzzFormats = []struct {
	f    Format
	name string
}{{YAML, "t.yaml"}, {Properties, "t.properties"}, {INI, "cqlshrc"}, {Text, "t.conf"}}

// marker stands in for the value in a second rendering: a private-use
// character that is neither in the template nor in the value.
const marker = "\ue123"

// FuzzRender: for any template, value and format, rendering either fails,
// or its output, read back with the format's reader, has the same structure
// as the output of the same template rendered with a harmless marker
// value, and every place holding the marker holds exactly the value there.
// The readers are the ones test/render_formats_test.go checks against
// SnakeYAML, java.util.Properties and Python's configparser.
func FuzzRender(f *testing.F) {
	// Each hostile value in the template of its format (the corpus in
	// testdata/fuzz/FuzzRender adds the defects of issue 14 and crashers).
	for _, v := range append(append([]string{}, rendertest.Hostile...), rendertest.YAML11[:8]...) {
		for i, tmpl := range []string{cassandraTmpl, propsTmpl, iniTmpl, "a=${V}\nb=${W:-x}\\\n${V}\n"} {
			f.Add(tmpl, v, uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, tmpl, value string, which uint8) {
		ff := fuzzFormats[int(which)%len(fuzzFormats)]
		vars := Vars{"V": value, "W": "w", "KEYSTORE_PASSWORD": value, "TRUSTSTORE_PASSWORD": value}
		out, err := Bytes([]byte(tmpl), ff.name, vars, ff.f)
		if err != nil || value == "" || strings.Contains(tmpl+value, marker) || strings.Contains(strings.ToLower(tmpl), `\ue123`) {
			return
		}
		mvars := Vars{"V": marker, "W": "w", "KEYSTORE_PASSWORD": marker, "TRUSTSTORE_PASSWORD": marker}
		probe, err := Bytes([]byte(tmpl), ff.name, mvars, ff.f)
		if err != nil {
			return // e.g. !!int ${V}: the marker is not a number
		}
		if err := sameRendering(ff.f, out, probe, value); err != nil {
			t.Fatalf("%s %q with %q: %v\noutput:\n%s\nprobe:\n%s", ff.f, tmpl, value, err, out, probe)
		}
	})
}

// sameRendering compares an output with the probe rendering.
func sameRendering(f Format, out, probe []byte, value string) error {
	fill := func(s string) string { return strings.ReplaceAll(s, marker, value) }
	switch f {
	case YAML:
		var a, b yaml.Node
		if err := yaml.Unmarshal(out, &a); err != nil {
			return fmt.Errorf("output does not parse: %v", err)
		}
		if err := yaml.Unmarshal(probe, &b); err != nil {
			return fmt.Errorf("probe does not parse: %v", err)
		}
		return sameTree(&a, &b, fill, "$")
	case Properties:
		a, err := ReadProperties(out)
		if err != nil {
			return err
		}
		b, err := ReadProperties(probe)
		if err != nil {
			return err
		}
		if len(a) != len(b) {
			return fmt.Errorf("%d entries, probe %d", len(a), len(b))
		}
		for i := range a {
			if a[i].Key != b[i].Key || a[i].Value != fill(b[i].Value) {
				return fmt.Errorf("entry %d: %q=%q, probe %q=%q", i, a[i].Key, a[i].Value, b[i].Key, b[i].Value)
			}
		}
	case INI:
		a, err := ReadINI(out)
		if err != nil {
			return err
		}
		b, err := ReadINI(probe)
		if err != nil {
			return err
		}
		if len(a) != len(b) {
			return fmt.Errorf("%d options, probe %d", len(a), len(b))
		}
		for i := range a {
			if a[i].Section != b[i].Section || a[i].Option != b[i].Option {
				return fmt.Errorf("option %d: [%s] %s, probe [%s] %s", i, a[i].Section, a[i].Option, b[i].Section, b[i].Option)
			}
			if a[i].Value != strings.ReplaceAll(b[i].Value, marker, INIEscape(value)) {
				return fmt.Errorf("option %s: raw %q, probe %q", a[i].Option, a[i].Value, b[i].Value)
			}
			av, aerr := Interpolate(a[i].Value)
			bv, berr := Interpolate(b[i].Value)
			if (aerr == nil) != (berr == nil) || aerr == nil && av != fill(bv) {
				return fmt.Errorf("option %s: reads %q (%v), probe %q (%v)", a[i].Option, av, aerr, bv, berr)
			}
		}
	case Text:
		if string(out) != fill(string(probe)) {
			return fmt.Errorf("output is not the probe with the value in the marker's places")
		}
		for _, sep := range strings.Split(textBreaks, "") {
			if strings.Count(string(out), sep) != strings.Count(string(probe), sep) {
				return fmt.Errorf("line breaks %q: %d, probe %d", sep, strings.Count(string(out), sep), strings.Count(string(probe), sep))
			}
		}
		if a, b := continued(string(out)), continued(string(probe)); a != b {
			return fmt.Errorf("%d lines continued with a backslash, probe %d", a, b)
		}
	}
	return nil
}

// continued counts lines that end in an odd number of backslashes.
func continued(s string) int {
	n := 0
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if (len(line)-len(strings.TrimRight(line, `\`)))%2 == 1 {
			n++
		}
	}
	return n
}

func sameTree(a, b *yaml.Node, fill func(string) string, path string) error {
	if a.Kind != b.Kind || len(a.Content) != len(b.Content) {
		return fmt.Errorf("at %s the structure differs", path)
	}
	if a.Kind == yaml.ScalarNode && (a.Value != fill(b.Value) || a.ShortTag() != b.ShortTag()) {
		return fmt.Errorf("at %s: %s %q, probe %s %q", path, a.ShortTag(), a.Value, b.ShortTag(), b.Value)
	}
	for i := range a.Content {
		if err := sameTree(a.Content[i], b.Content[i], fill, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	return nil
}
