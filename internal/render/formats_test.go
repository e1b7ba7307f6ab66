package render

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render/rendertest"
)

func TestFormatFor(t *testing.T) {
	for path, want := range map[string]Format{
		"/c/cassandra.yaml": YAML, "x.YML": YAML, "/r/reaper.properties": Properties, "a.Properties": Properties,
		"x.ini": INI, "setup.cfg": INI, "/home/c/.cassandra/cqlshrc": INI, ".cqlshrc": INI,
		"jvm.options": Text, "cqlshrc.sample": Text, "env.sh": shell, "x.bash": shell, "app.env": Text,
	} {
		if got := FormatFor(Auto, path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	if FormatFor(Text, "env.sh") != Text {
		t.Error("an explicit format must win over the name")
	}
}

// propsTmpl puts ${V} in every place a properties value can start or go on.
const propsTmpl = "# ${V} in a comment stays\n" +
	"k1=${V}\n" +
	"k2 ${V}\n" +
	"k3 : pre${V}post\n" +
	"k4 = a \\\n    ${V}\n" +
	"k5=${V}\n" +
	"! another comment ${V}\n" +
	"k6=${V}${V}\n" +
	"k7=\\${V}\n"

// TestPropertiesValuesReadBack: whatever the value, the file has the same
// keys and each value reads back exactly (ReadProperties is checked
// against java.util.Properties in test/render_formats_test.go). A value
// ending in a backslash no longer swallows the next line.
func TestPropertiesValuesReadBack(t *testing.T) {
	for _, v := range append(append([]string{}, rendertest.Hostile...), rendertest.YAML11...) {
		out, err := Bytes([]byte(propsTmpl), "reaper.properties", Vars{"V": v}, Auto)
		if err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		got, err := ReadProperties(out)
		if err != nil {
			t.Errorf("%q: %v\n%s", v, err, out)
			continue
		}
		want := []Property{{"k1", v, 2}, {"k2", v, 3}, {"k3", "pre" + v + "post", 4}, {"k4", "a " + v, 5},
			{"k5", v, 7}, {"k6", v + v, 9}, {"k7", "${V}", 10}}
		if len(got) != len(want) {
			t.Errorf("%q: %d entries, want %d:\n%s", v, len(got), len(want), out)
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%q: entry %d = %+v, want %+v\n%s", v, i, got[i], want[i], out)
			}
		}
		if !strings.HasPrefix(string(out), "# ${V} in a comment stays\n") || !strings.Contains(string(out), "\n! another comment ${V}\n") {
			t.Errorf("%q: comments changed:\n%s", v, out)
		}
	}
}

// TestReadPropertiesLoneBackslash: a backslash ending the input is dropped,
// leaving an empty line that Java reads as the entry "" = "" (a fuzzer
// crasher: the reader indexed the empty line).
func TestReadPropertiesLoneBackslash(t *testing.T) {
	for _, in := range []string{`\`, "a=b\n  \\", "\\\n\\"} {
		got, err := ReadProperties([]byte(in))
		if err != nil || len(got) == 0 || got[len(got)-1].Key != "" || got[len(got)-1].Value != "" {
			t.Errorf("%q: %+v, %v", in, got, err)
		}
	}
	out, err := Bytes([]byte(`\`), "t.properties", Vars{}, Auto)
	if err != nil || string(out) != `\` {
		t.Errorf("render: %q, %v", out, err)
	}
}

func TestPropertiesRefusals(t *testing.T) {
	for _, tc := range []struct{ tmpl, v, want string }{
		{"${V}=x\n", "k", "t.properties:1: placeholders are allowed in values only, not in the key \"${V}\""},
		{"a=1\np${V} x\n", "k", "t.properties:2: placeholders are allowed in values only"},
		{"a=\\u12\n", "k", "template is not a valid properties file: line 1: malformed \\uxxxx encoding"},
		{"a=${V}\n", "\xff", "t.properties:1: the value of ${V} is not valid UTF-8"},
	} {
		_, err := Bytes([]byte(tc.tmpl), "t.properties", Vars{"V": tc.v}, Auto)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.tmpl, err, tc.want)
		}
	}
}

// iniTmpl puts ${V} wherever an INI value can hold it.
const iniTmpl = "; ${V} in a comment stays\n" +
	"[connection]\n" +
	"hostname = x${V}y\n" +
	"port: 9042\n" +
	"\n" +
	"[ssl]\n" +
	"certfile = /pem/${V}/ca.crt\n" +
	"multi = first\n" +
	"    second ${V} line\n" +
	"pct = 100% is %%(${V})s\n"

// TestINIValuesReadBack: a value either reads back exactly through
// configparser's interpolation (ReadINI + Interpolate, checked against
// Python in test/render_formats_test.go) or is refused naming the variable.
func TestINIValuesReadBack(t *testing.T) {
	for _, v := range append(append([]string{}, rendertest.Hostile...), rendertest.YAML11...) {
		out, err := Bytes([]byte(iniTmpl), "cqlshrc", Vars{"V": v}, Auto)
		refuse := iniUnfit(v, false, false) != ""
		if err != nil {
			if !refuse || !strings.Contains(err.Error(), "cqlshrc:3: the value of ${V}") {
				t.Errorf("%q: %v", v, err)
			}
			continue
		}
		if refuse {
			t.Errorf("%q: accepted:\n%s", v, out)
			continue
		}
		got, err := ReadINI(out)
		if err != nil || len(got) != 5 {
			t.Errorf("%q: %v %+v\n%s", v, err, got, out)
			continue
		}
		want := map[string]string{"hostname": "x" + v + "y", "port": "9042", "certfile": "/pem/" + v + "/ca.crt",
			"multi": "first\nsecond " + v + " line", "pct": "100% is %(" + v + ")s"}
		for _, e := range got {
			if e.Option == "pct" {
				if e.Value != "100% is %%("+strings.ReplaceAll(v, "%", "%%")+")s" {
					t.Errorf("%q: raw pct = %q", v, e.Value)
				}
				continue
			}
			if iv, err := Interpolate(e.Value); err != nil || iv != want[e.Option] {
				t.Errorf("%q: %s reads back as %q (%v), want %q\n%s", v, e.Option, iv, err, want[e.Option], out)
			}
		}
		if !strings.HasPrefix(string(out), "; ${V} in a comment stays\n") {
			t.Errorf("%q: comment changed:\n%s", v, out)
		}
	}
}

func TestINIRefusals(t *testing.T) {
	for _, tc := range []struct{ tmpl, v, want string }{
		{"[s]\nk = ${V}\n", " lead", "x.ini:2: the value of ${V} starts with white space"},
		{"[s]\nk = ${V}\n", "trail\t", "x.ini:2: the value of ${V} ends with white space"},
		{"[s]\nk = ${V}\n", "a\u3000", "ends with white space"},
		{"[s]\nk = ${V}\n", "a\x1f", "ends with white space"},
		{"[s]\nk = ${V}\n", "a\nb", "contains a line break"},
		{"[s]\nk = ${V}\n", "a\rb", "contains a line break"},
		{"[s]\nk = ${V}\n", "a\xffb", "is not valid UTF-8"},
		{"[${V}]\nk = v\n", "s", "x.ini:1: placeholders are allowed in option values only"},
		{"[s]\n${V} = v\n", "k", "x.ini:2: placeholders are allowed in option values only"},
		{"k = ${V}\n", "v", "no section header"},
		{"[s]\nk = 1\nk = 2\n", "v", `option "k" in section "s" already exists`},
		{"[s]\njunk\n", "v", "neither an option nor a section"},
	} {
		_, err := Bytes([]byte(tc.tmpl), "x.ini", Vars{"V": tc.v}, Auto)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q with %q: err = %v, want %q", tc.tmpl, tc.v, err, tc.want)
		}
	}
}

// TestTextRefusesStructureChanges: text escapes nothing, so it refuses
// every value that could change a line-oriented file's structure.
func TestTextRefusesStructureChanges(t *testing.T) {
	for _, tc := range []struct{ tmpl, v string }{
		{"a=${V}\nb=2\n", "x\u2028y"}, {"a=${V}\n", "x\u0085y"}, {"a=${V}\n", "x\vy"}, {"a=${V}\n", "x\fy"},
		{"a=${V}\n", "x\x1ey"}, {"a=${V}\n", "x\x00y"}, {"a=${V}\n", "x\ry"}, {"a=${V}\n", "x\ny"},
		{"a=${V}\nb=2\n", `abc\`}, {"a=${V}", `abc\`}, {"a=${V}\\\nb=2\n", `abc\`}, {"a=${V}\r\nb=2\n", `abc\`},
		{"a=${V}${V}\nb=2\n", `\`},
	} {
		_, err := Bytes([]byte(tc.tmpl), "t.conf", Vars{"V": tc.v}, Auto)
		if err == nil || !strings.Contains(err.Error(), "t.conf:1: the value of ${V}") {
			t.Errorf("%q with %q: err = %v", tc.tmpl, tc.v, err)
		}
	}
	for _, tc := range []struct{ tmpl, v string }{
		{"a=${V}\n", `mid\dle`}, {"a=${V}x\n", `abc\`}, {"a=${V} \n", `abc\`}, {"a=${V}\n", "tab\tok"},
	} {
		if out, err := Bytes([]byte(tc.tmpl), "t.conf", Vars{"V": tc.v}, Auto); err != nil || string(out) != strings.Replace(tc.tmpl, "${V}", tc.v, 1) {
			t.Errorf("%q with %q: %q, %v", tc.tmpl, tc.v, out, err)
		}
	}
}

// TestShellScriptsRefused: no format escapes shell syntax, so a script is
// refused unless the format is forced.
func TestShellScriptsRefused(t *testing.T) {
	const tmpl = "export PW=${PW}\n"
	if _, err := Bytes([]byte(tmpl), "/etc/env.sh", Vars{"PW": "x; rm -rf /"}, Auto); err == nil || !strings.Contains(err.Error(), "/etc/env.sh: a shell script cannot be rendered safely") {
		t.Fatalf("err = %v", err)
	}
	if out, err := Bytes([]byte(tmpl), "/etc/env.sh", Vars{"PW": "pw"}, Text); err != nil || string(out) != "export PW=pw\n" {
		t.Fatalf("forced text: %q, %v", out, err)
	}
}

// TestLargeTemplatesRenderInLinearTime: rendering and its read-back check
// are linear in the template's size (a 20,000-line properties template took
// minutes when line numbers and the probe's markers were found by scanning
// from the start for every line). The deadline is generous for -race on a
// loaded machine; quadratic work misses it by far.
func TestLargeTemplatesRenderInLinearTime(t *testing.T) {
	const n = 20000
	var props, ini, yml strings.Builder
	ini.WriteString("[s]\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&props, "key.%d = some value ${V} here\n", i)
		fmt.Fprintf(&ini, "key.%d = some value ${V} here\n", i)
		fmt.Fprintf(&yml, "key%d: some value ${V} here\n", i)
	}
	done := make(chan error, 1)
	go func() {
		for _, tc := range []struct{ tmpl, name string }{{props.String(), "x.properties"}, {ini.String(), "x.ini"}, {yml.String(), "x.yaml"}} {
			if _, err := Bytes([]byte(tc.tmpl), tc.name, Vars{"V": "v"}, Auto); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("rendering %d-line templates took over a minute", n)
	}
}
