package render

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// dollarCases: only ${NAME} and ${NAME:-default} are placeholders, $${ is
// a literal ${, and every other $ is left exactly as it is.
var dollarCases = []struct{ in, want string }{
	{`p$$w`, `p$$w`},
	{`$$`, `$$`},
	{`$HOME/x`, `$HOME/x`},
	{`Outer$Inner`, `Outer$Inner`},
	{`$`, `$`},
	{`a$`, `a$`},
	{`$1`, `$1`},
	{`${1}`, `${1}`},
	{`${}`, `${}`},
	{`${ X}`, `${ X}`},
	{`${cassandra.logdir}/x`, `${cassandra.logdir}/x`},
	{`$$X${X}`, `$$Xx-value`},
	{`${X}`, `x-value`},
	{`pre${X}post`, `prex-valuepost`},
	{`${UNSET:-de$fault}`, `de$fault`},
	{`${UNSET:-a $$ b {c}`, `a $$ b {c`},
	{`${EMPTY:-d}`, `d`},
	{`${X:-d}`, `x-value`},
	{`$${X}`, `${X}`},
	{`$${X:-d}`, `${X:-d}`},
	{`$${a.b}`, `${a.b}`},
	{`$$${X}`, `$${X}`},
	{`$${X}${X}`, `${X}x-value`},
	// A value is inserted as it is, never expanded or unescaped again.
	{`${TRICKY}`, `$${X} ${X} $X $$`},
}

var dollarVars = Vars{"X": "x-value", "EMPTY": "", "TRICKY": `$${X} ${X} $X $$`, "HOME": "/root", "Inner": "in", "HOME_": "h"}

func TestDollarIsLiteralText(t *testing.T) {
	for _, tc := range dollarCases {
		out, err := Bytes([]byte("k="+tc.in+"\n"), "t.txt", dollarVars, Text)
		if err != nil || string(out) != "k="+tc.want+"\n" {
			t.Errorf("text %q: got %q, %v; want %q", tc.in, out, err, tc.want)
		}
	}
}

func TestDollarIsLiteralYAML(t *testing.T) {
	for _, tc := range dollarCases {
		for _, quote := range []string{"", `'`} {
			tmpl := "k: " + quote + tc.in + quote + "\n"
			out, err := Bytes([]byte(tmpl), "t.yaml", dollarVars, YAML)
			if err != nil {
				t.Errorf("yaml %q: %v", tmpl, err)
				continue
			}
			var got map[string]string
			if err := yaml.Unmarshal(out, &got); err != nil || got["k"] != tc.want {
				t.Errorf("yaml %q: got %q (%v), want %q\n%s", tmpl, got["k"], err, tc.want, out)
			}
		}
	}
}

// TestEscapeInYAMLKey: $${ in a key is the escape, not a placeholder.
func TestEscapeInYAMLKey(t *testing.T) {
	out, err := Bytes([]byte("$${K}: v\n"), "t.yaml", Vars{}, YAML)
	var got map[string]string
	if err != nil || yaml.Unmarshal(out, &got) != nil || got["${K}"] != "v" {
		t.Fatalf("got %q, %v", out, err)
	}
}

// TestDollarUnsupportedForms: shell forms this syntax does not have, and
// unclosed placeholders, are errors naming the file, line and variable —
// leaving them as text would ship the placeholder as a value.
func TestDollarUnsupportedForms(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`${PW:=x}`, "${PW:=…} is not supported"},
		{`${PW-x}`, "${PW-…} is not supported"},
		{`${PW=x}`, "${PW=…} is not supported"},
		{`${PW+x}`, "${PW+…} is not supported"},
		{`${PW:+x}`, "${PW:+…} is not supported"},
		{`${PW?x}`, "${PW?…} is not supported"},
		{`${PW:?x}`, "${PW:?…} is not supported"},
		{`${PW:1:2}`, "${PW:…} is not supported"},
		{`${PW`, "${PW is not closed"},
		{`${PW:-abc`, "${PW:-… is not closed"},
		{`${PW:-${OTHER}}`, "the default of ${PW:-…} contains ${: nested placeholders are not supported"},
	} {
		for _, f := range []Format{Text, YAML} {
			tmpl := "a: 1\nk: " + tc.in + "\n"
			_, err := Bytes([]byte(tmpl), "t.conf", Vars{"PW": "s3cr3t-pw", "OTHER": "o"}, f)
			if err == nil || !strings.Contains(err.Error(), "t.conf:2: "+tc.want) {
				t.Errorf("%s %q: err = %v, want t.conf:2: %q", f, tc.in, err, tc.want)
			} else if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("%s %q: the error prints a value: %v", f, tc.in, err)
			}
		}
	}
}

// TestInPlaceKeepsDollars: rendering an existing file in place leaves every
// $ that is not a placeholder alone (the corruption this syntax prevents).
func TestInPlaceKeepsDollars(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "jvm.options")
	const file = "-Dpw=p$$w0rd\n-Dhome=$HOME\n-Dx=Outer$Inner\n-Dks=${KS}\n"
	os.WriteFile(p, []byte(file), 0o600)
	if _, err := File(p, p, Vars{"KS": "ks", "HOME": "/root", "Inner": "in"}, Text, 0); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if want := "-Dpw=p$$w0rd\n-Dhome=$HOME\n-Dx=Outer$Inner\n-Dks=ks\n"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestRenderReportsUsedNames(t *testing.T) {
	_, used, err := Render([]byte("a: ${A}\nb: ${B:-x}\nc: $C $${D}\n"), "t.yaml", Vars{"A": "a"}, YAML)
	if err != nil || !reflect.DeepEqual(used, []string{"A", "B"}) {
		t.Fatalf("used = %v, %v", used, err)
	}
}
