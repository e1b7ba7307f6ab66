package test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render"
	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/render/rendertest"
)

// cassandraJar finds one of Cassandra's jars in the cache `make deps` fills.
func cassandraJar(t *testing.T, prefix string) string {
	t.Helper()
	jars, _ := filepath.Glob(filepath.Join(repoRoot(), ".cache", "cassandra", "lib", prefix+"-*.jar"))
	if len(jars) == 0 {
		t.Fatalf("no %s jar in .cache/cassandra/lib: run `make deps` (./test/deps.sh)", prefix)
	}
	return jars[0]
}

// fileValues keeps the values a secrets file can carry: not only white
// space (an empty secret is refused), and not ending in CR (with the file's
// newline it would read as CRLF, which is dropped whole).
func fileValues(values []string) []string {
	var out []string
	for _, v := range values {
		if strings.TrimSpace(v) != "" && !strings.HasSuffix(v, "\r") {
			out = append(out, v)
		}
	}
	return out
}

// secretsFor writes one secrets-directory file per value (v000 → ${V000})
// and returns the directory. A file's one trailing newline is dropped by the
// agent, so each file gets one.
func secretsFor(t *testing.T, values []string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	for i, v := range values {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("v%03d", i)), []byte(v+"\n"))
	}
	return dir
}

// TestYAMLValuesReadBySnakeYAML: a YAML template rendered with values that
// YAML 1.1 readers retype (off, Yes, 190:20:30, 0x1F, ~, 2001-12-14, ...) and
// hostile ones; SnakeYAML, which Cassandra uses, must read every value back
// as a java.lang.String equal to the input.
func TestYAMLValuesReadBySnakeYAML(t *testing.T) {
	need(t, "java")
	jar := cassandraJar(t, "snakeyaml")
	values := fileValues(append(append([]string{}, rendertest.YAML11...), rendertest.Hostile...))
	dir := t.TempDir()
	var tmpl strings.Builder
	for i := range values {
		fmt.Fprintf(&tmpl, "k%03d: ${V%03d}\n", i, i)
	}
	tp, out := filepath.Join(dir, "cassandra.yaml.tmpl"), filepath.Join(dir, "cassandra.yaml")
	writeFile(t, tp, []byte(tmpl.String()))
	if r := agent(t, nil, "render", "--template", tp, "--out", out, "--format", "yaml", "--secrets-dir", secretsFor(t, values)); r.code != 0 {
		t.Fatalf("render: exit %d\n%s", r.code, r.stderr)
	}
	got := run(t, "java", "-cp", jar, filepath.Join(repoRoot(), "test", "java", "YamlTypes.java"), out)
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		f := strings.Split(line, "\t")
		var i int
		if len(f) != 3 || !strings.HasPrefix(f[0], "k") {
			t.Fatalf("unexpected SnakeYAML output line %q", line)
		}
		fmt.Sscanf(f[0][1:], "%d", &i)
		val, _ := base64.StdEncoding.DecodeString(f[2])
		if f[1] != "java.lang.String" || string(val) != values[i] {
			t.Errorf("%q read back by SnakeYAML as %s %q", values[i], f[1], val)
		}
		seen++
	}
	if seen != len(values) {
		data, _ := os.ReadFile(out)
		t.Errorf("SnakeYAML read %d entries, want %d:\n%s", seen, len(values), data)
	}
}

// javaProperties loads path with java.util.Properties (PropsDump.java):
// key → value; with ascii (a file that is all ASCII), load(InputStream) and
// load(Reader) must agree.
func javaProperties(t *testing.T, path string, ascii bool) map[string]string {
	t.Helper()
	out := run(t, "java", filepath.Join(repoRoot(), "test", "java", "PropsDump.java"), path)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if ascii && lines[0] != "SAME" {
		t.Errorf("load(InputStream) and load(Reader) read %s differently", path)
	}
	m := map[string]string{}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, "\t")
		kb, _ := base64.StdEncoding.DecodeString(k)
		vb, _ := base64.StdEncoding.DecodeString(v)
		m[string(kb)] = string(vb)
	}
	return m
}

// TestPropertiesReadByJava: a .properties template rendered with hostile
// values in every place a value can take them; java.util.Properties must
// read exactly the template's keys, each value equal to what was put in.
// (As text, a value ending in a backslash swallowed the next line.)
func TestPropertiesReadByJava(t *testing.T) {
	need(t, "java")
	values := fileValues(append(append([]string{}, rendertest.Hostile...), rendertest.YAML11...))
	var tmpl strings.Builder
	want := map[string]string{}
	for i, v := range values {
		fmt.Fprintf(&tmpl, "k%03da=${V%03d}\nk%03db ${V%03d}\nk%03dc : pre${V%03d}post\nk%03dd = a \\\n    ${V%03d}\n", i, i, i, i, i, i, i, i)
		want[fmt.Sprintf("k%03da", i)] = v
		want[fmt.Sprintf("k%03db", i)] = v
		want[fmt.Sprintf("k%03dc", i)] = "pre" + v + "post"
		want[fmt.Sprintf("k%03dd", i)] = "a " + v
	}
	dir := t.TempDir()
	tp, out := filepath.Join(dir, "client.properties.tmpl"), filepath.Join(dir, "client.properties")
	writeFile(t, tp, []byte(tmpl.String()))
	if r := agent(t, nil, "render", "--template", tp, "--out", out, "--secrets-dir", secretsFor(t, values)); r.code != 0 {
		t.Fatalf("render: exit %d\n%s", r.code, r.stderr)
	}
	got := javaProperties(t, out, true)
	if len(got) != len(want) {
		t.Errorf("Java read %d entries, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: Java read %q, want %q", k, got[k], v)
		}
	}
}

// trickyProperties exercises java.util.Properties' syntax where it is
// subtle; ReadProperties (the renderer's reader and check) must agree.
const trickyProperties = "# comment \\\nnot.continued = 1\n" +
	"! bang comment\n" +
	"key\\ with\\ spaces = v1\n" +
	"a:b:c\n" +
	"   leading = x\n" +
	"\\\n#continued.key=2\n" +
	"cont = one \\\n   two \\\r\n\tthree\n" +
	"onto.empty = x\\\n\n" +
	"esc = \\u0041\\t\\n\\r\\f\\=\\:\\#\\!\\ \\\\ \\q\n" +
	"k\\=x = y\n" +
	"empty=\n" +
	"alone\n" +
	"=novalue.key\n" +
	":colon\n" +
	"ws.sep   value with   spaces   \n" +
	"ws.then.sep  =  :v\n" +
	"cr.only = a\rnext.cr = b\r" +
	"\f\tff.tab = c\n" +
	"utf8 = é ✓\n" +
	"surrogates = \\uD83D\\uDE00\n" +
	"trailing.backslash.at.eof = z\\"

func TestReadPropertiesAgreesWithJava(t *testing.T) {
	need(t, "java")
	// The others: inputs the fuzzer found (a lone backslash at the end is an
	// empty line that Java reads as the entry "" = "").
	for i, file := range []string{trickyProperties, `\`, "a=b\n  \\", "\\\n\\"} {
		p := filepath.Join(t.TempDir(), fmt.Sprintf("tricky%d.properties", i))
		writeFile(t, p, []byte(file))
		java := javaProperties(t, p, false)
		ours, err := render.ReadProperties([]byte(file))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, e := range ours {
			got[e.Key] = e.Value
		}
		if len(got) != len(java) {
			t.Errorf("%q: ReadProperties read %d keys, Java %d:\nours %q\njava %q", file, len(got), len(java), got, java)
		}
		for k, v := range java {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%q: key %q: ReadProperties %q (present %v), Java %q", file, k, g, ok, v)
			}
		}
	}
}

type iniOption struct {
	Section, Option, Raw string
	Value                *string
}

// pythonINI reads path with configparser (ini_dump.py).
func pythonINI(t *testing.T, path string) ([]iniOption, string) {
	t.Helper()
	need(t, "python3")
	out := run(t, "python3", filepath.Join(repoRoot(), "test", "python", "ini_dump.py"), path)
	var res struct {
		Error   string
		Options [][4]*string
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("ini_dump.py: %v\n%s", err, out)
	}
	var opts []iniOption
	for _, o := range res.Options {
		opts = append(opts, iniOption{*o[0], *o[1], *o[2], o[3]})
	}
	return opts, res.Error
}

// pyEdgeSpace: Python's str.strip() would remove white space at v's ends.
func pyEdgeSpace(v string) bool {
	isSpace := func(r rune) bool { return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f }
	return strings.TrimFunc(v, isSpace) != v
}

// TestINIReadByConfigparser: an INI template (cqlshrc style) rendered with
// hostile values; Python's configparser must read the same sections and
// options, and get() must return each value exactly (% survives
// interpolation). Values configparser cannot hold (line breaks) are tested
// as refusals in internal/render.
func TestINIReadByConfigparser(t *testing.T) {
	var values []string
	for _, v := range fileValues(append(append([]string{}, rendertest.Hostile...), rendertest.YAML11...)) {
		if !strings.ContainsAny(v, "\r\n") {
			values = append(values, v)
		}
	}
	var tmpl strings.Builder
	type want struct{ section, option, value string }
	var wants []want
	for i, v := range values {
		s := fmt.Sprintf("s%03d", i)
		fmt.Fprintf(&tmpl, "[%s]\nmid = x${V%03d}y\nmulti = first\n    second ${V%03d} line\n", s, i, i)
		wants = append(wants, want{s, "mid", "x" + v + "y"}, want{s, "multi", "first\nsecond " + v + " line"})
		if !pyEdgeSpace(v) {
			fmt.Fprintf(&tmpl, "whole: ${V%03d}\n", i)
			wants = append(wants, want{s, "whole", v})
		}
	}
	dir := t.TempDir()
	tp, out := filepath.Join(dir, "cqlshrc.tmpl"), filepath.Join(dir, "cqlshrc")
	writeFile(t, tp, []byte(tmpl.String()))
	if r := agent(t, nil, "render", "--template", tp, "--out", out, "--secrets-dir", secretsFor(t, values)); r.code != 0 {
		t.Fatalf("render: exit %d\n%s", r.code, r.stderr)
	}
	got, perr := pythonINI(t, out)
	if perr != "" || len(got) != len(wants) {
		t.Fatalf("configparser: %s, %d options, want %d", perr, len(got), len(wants))
	}
	for i, w := range wants {
		g := got[i]
		if g.Section != w.section || g.Option != w.option || g.Value == nil || *g.Value != w.value {
			v := "<interpolation error>"
			if g.Value != nil {
				v = *g.Value
			}
			t.Errorf("[%s] %s: configparser read %q (raw %q), want %q", w.section, w.option, v, g.Raw, w.value)
		}
	}
}

// trickyINI exercises configparser's syntax where it is subtle; ReadINI
// (the renderer's reader and check) must agree with Python.
const trickyINI = "; comment\n" +
	"[DEFAULT]\n" +
	"Shared = %(other)s/x\n" +
	"other = base\n" +
	"[s]\n" +
	"Key = value with = and : inside ; not a comment # nor this\n" +
	"colon: v2\n" +
	"  indented = not a continuation (no option above is less indented? it is)\n" +
	"multi = a\n" +
	"\tb\n" +
	"\n" +
	"   # comment inside\n" +
	"  c  \n" +
	"pct = 50%% off\n" +
	"bad.pct = 50% off\n" +
	"trail =   spaced   \n" +
	"\u3000wide = x\n" +
	"cr.only = a\rnext = b\r\n" +
	"[a]b]\n" +
	"x = 1\n" +
	"[DEFAULT]\n" +
	"late = 2\n"

func TestReadINIAgreesWithConfigparser(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tricky.ini")
	writeFile(t, p, []byte(trickyINI))
	py, perr := pythonINI(t, p)
	if perr != "" {
		t.Fatalf("configparser refuses the file: %s", perr)
	}
	ours, err := render.ReadINI([]byte(trickyINI))
	if err != nil {
		t.Fatal(err)
	}
	// Python lists DEFAULT's options first; ours are in file order.
	key := func(s, o string) string { return s + "\x00" + o }
	pm := map[string]iniOption{}
	for _, o := range py {
		pm[key(o.Section, o.Option)] = o
	}
	if len(ours) != len(py) {
		t.Errorf("ReadINI read %d options, configparser %d: %+v", len(ours), len(py), ours)
	}
	for _, e := range ours {
		o, ok := pm[key(e.Section, e.Option)]
		if !ok || o.Raw != e.Value {
			t.Errorf("[%s] %s: ReadINI %q, configparser %q (present %v)", e.Section, e.Option, e.Value, o.Raw, ok)
			continue
		}
		iv, ierr := render.Interpolate(e.Value)
		if (ierr == nil) != (o.Value != nil) || o.Value != nil && !strings.Contains(o.Raw, "%(") && iv != *o.Value {
			t.Errorf("[%s] %s: Interpolate %q (%v), configparser %v", e.Section, e.Option, iv, ierr, o.Value)
		}
	}
	for _, bad := range []string{"[s]\na = 1\nA = 2\n", "[s]\n[s]\n", "a = 1\n", "[s]\njunk\n", "[s]\n= v\n"} {
		p := filepath.Join(t.TempDir(), "bad.ini")
		writeFile(t, p, []byte(bad))
		_, perr := pythonINI(t, p)
		_, err := render.ReadINI([]byte(bad))
		if perr == "" || err == nil {
			t.Errorf("%q: configparser error %q, ReadINI error %v: both must refuse", bad, perr, err)
		}
	}
}

// TestCqlshrcReadByConfigparser: cqlsh reads cqlshrc options with
// configparser's interpolation (its sslhandling even turns an interpolation
// error into "no certfile"); paths with % must read back exactly.
func TestCqlshrcReadByConfigparser(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "cqlshrc")
	ca, cert, key := "/pem/50%/ca.crt", "/pem/%(x)s/tls.crt", "/pem/%%/tls.key"
	if r := agent(t, nil, "cqlshrc", "--out", out, "--host", "dc1-service", "--ca", ca, "--cert", cert, "--key", key); r.code != 0 {
		t.Fatalf("cqlshrc: exit %d\n%s", r.code, r.stderr)
	}
	opts, perr := pythonINI(t, out)
	if perr != "" {
		t.Fatalf("configparser: %s", perr)
	}
	want := map[string]string{"certfile": ca, "usercert": cert, "userkey": key, "hostname": "dc1-service"}
	for _, o := range opts {
		if w, ok := want[o.Option]; ok {
			if o.Value == nil || *o.Value != w {
				t.Errorf("[%s] %s: configparser get() = %v (raw %q), want %q", o.Section, o.Option, o.Value, o.Raw, w)
			}
			delete(want, o.Option)
		}
	}
	if len(want) > 0 {
		t.Errorf("options missing: %v", want)
	}
}

// randomFiles makes count files of up to maxTokens tokens drawn from
// alphabet — the characters a format gives meaning to — with a fixed seed,
// so a failure reproduces.
func randomFiles(seed uint64, count, maxTokens int, prefix string, alphabet []string) []string {
	r := rand.New(rand.NewPCG(seed, seed))
	files := make([]string, count)
	for i := range files {
		var b strings.Builder
		if r.IntN(2) == 0 {
			b.WriteString(prefix)
		}
		for n := r.IntN(maxTokens + 1); n > 0; n-- {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		files[i] = b.String()
	}
	return files
}

// TestReadPropertiesAgreesWithJavaOnRandomFiles: ReadProperties, the
// renderer's reader and check, reads 1,000 random files of properties syntax
// exactly as java.util.Properties does (or fails where Java fails).
func TestReadPropertiesAgreesWithJavaOnRandomFiles(t *testing.T) {
	need(t, "java")
	files := randomFiles(14, 1000, 40, "k=", []string{"a", "b", "k", "=", ":", " ", "\t", "\f", "\n", "\r", "\r\n", `\`, `\`, "#", "!",
		"u", "0", "F", `\u00`, `\u0041`, "é", "$", "{", "}"})
	dir := t.TempDir()
	var paths []string
	for i, f := range files {
		p := filepath.Join(dir, fmt.Sprintf("%03d.properties", i))
		writeFile(t, p, []byte(f))
		paths = append(paths, p)
	}
	out := run(t, "java", append([]string{filepath.Join(repoRoot(), "test", "java", "PropsDump.java")}, paths...)...)
	java := map[string]map[string]string{} // path → entries, nil when Java refused the file
	var cur string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "FILE "):
			cur = strings.TrimPrefix(line, "FILE ")
			java[cur] = map[string]string{}
		case strings.HasPrefix(line, "ERROR "):
			java[cur] = nil
		case line == "SAME" || line == "DIFFERENT":
		default:
			k, v, _ := strings.Cut(line, "\t")
			kb, _ := base64.StdEncoding.DecodeString(k)
			vb, _ := base64.StdEncoding.DecodeString(v)
			java[cur][string(kb)] = string(vb)
		}
	}
	for i, p := range paths {
		want, seen := java[p]
		ours, err := render.ReadProperties([]byte(files[i]))
		if !seen || (want == nil) != (err != nil) {
			t.Errorf("%q: Java refused: %v, ReadProperties error: %v", files[i], want == nil, err)
			continue
		}
		got := map[string]string{}
		for _, e := range ours {
			got[e.Key] = e.Value // the last one wins, as in Java's map
		}
		if err == nil && !maps.Equal(got, want) {
			t.Errorf("%q: ReadProperties %q, Java %q", files[i], got, want)
		}
	}
}

// randomINIFiles makes count files of up to 12 lines each: section headers,
// options, indented lines, comments and blank lines built from the
// characters configparser gives meaning to, with mixed line ends.
func randomINIFiles(seed uint64, count int) []string {
	r := rand.New(rand.NewPCG(seed, seed))
	frags := []string{"a", "b", "%", "%%", "%(a)s", "(", " ", "\t", "\u3000", "\x1c", "\x0b", "\u00a0", "=", ":", "#", ";", "[", "]"}
	text := func(n int) string {
		var b strings.Builder
		for ; n > 0; n-- {
			b.WriteString(frags[r.IntN(len(frags))])
		}
		return b.String()
	}
	ws := []string{"", " ", "  ", "\t", "\u3000"}
	files := make([]string, count)
	for i := range files {
		var b strings.Builder
		if r.IntN(4) > 0 {
			b.WriteString("[s]\n")
		}
		for n := r.IntN(13); n > 0; n-- {
			switch r.IntN(7) {
			case 0:
				b.WriteString("[" + []string{"s", "t", "DEFAULT", "u]v", text(2)}[r.IntN(5)] + "]")
			case 1, 2:
				b.WriteString(ws[r.IntN(len(ws))] + []string{"k", "K", "key", "x y", ""}[r.IntN(5)] + ws[r.IntN(len(ws))] +
					[]string{"=", ":"}[r.IntN(2)] + ws[r.IntN(len(ws))] + text(r.IntN(5)))
			case 3:
				b.WriteString(ws[1+r.IntN(len(ws)-1)] + text(1+r.IntN(4)))
			case 4:
				b.WriteString(ws[r.IntN(len(ws))] + []string{"#", ";"}[r.IntN(2)] + text(r.IntN(4)))
			case 5:
				b.WriteString(ws[r.IntN(len(ws))])
			case 6:
				b.WriteString(text(1 + r.IntN(4)))
			}
			b.WriteString([]string{"\n", "\n", "\r\n", "\r"}[r.IntN(4)])
		}
		files[i] = b.String()
	}
	return files
}

// TestReadINIAgreesWithConfigparserOnRandomFiles: ReadINI reads 2,000 random
// files of INI syntax exactly as Python's configparser does (or fails where
// it fails), and Interpolate agrees with get() where no %(name)s is involved.
func TestReadINIAgreesWithConfigparserOnRandomFiles(t *testing.T) {
	need(t, "python3")
	files := randomINIFiles(14, 2000)
	dir := t.TempDir()
	var paths []string
	for i, f := range files {
		p := filepath.Join(dir, fmt.Sprintf("%03d.ini", i))
		writeFile(t, p, []byte(f))
		paths = append(paths, p)
	}
	out := run(t, "python3", append([]string{filepath.Join(repoRoot(), "test", "python", "ini_dump.py")}, paths...)...)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != len(files) {
		t.Fatalf("ini_dump.py printed %d lines for %d files", len(lines), len(files))
	}
	for i, line := range lines {
		var res struct {
			Error   string
			Options [][4]*string
		}
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			t.Fatal(err)
		}
		ours, err := render.ReadINI([]byte(files[i]))
		if (res.Error != "") != (err != nil) {
			t.Errorf("%q: configparser error %q, ReadINI error %v", files[i], res.Error, err)
			continue
		}
		if err != nil {
			continue
		}
		py := map[[2]string][2]*string{}
		for _, o := range res.Options {
			py[[2]string{*o[0], *o[1]}] = [2]*string{o[2], o[3]}
		}
		if len(py) != len(ours) {
			t.Errorf("%q: ReadINI read %d options, configparser %d", files[i], len(ours), len(py))
			continue
		}
		for _, e := range ours {
			o, ok := py[[2]string{e.Section, e.Option}]
			if !ok || *o[0] != e.Value {
				t.Errorf("%q: [%s] %s: ReadINI %q, configparser %v", files[i], e.Section, e.Option, e.Value, o[0])
				continue
			}
			if strings.Contains(e.Value, "%(") {
				continue
			}
			iv, ierr := render.Interpolate(e.Value)
			if (ierr == nil) != (o[1] != nil) || ierr == nil && iv != *o[1] {
				t.Errorf("%q: [%s] %s: Interpolate %q (%v), configparser get() %v", files[i], e.Section, e.Option, iv, ierr, o[1])
			}
		}
	}
}
