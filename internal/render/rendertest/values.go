// Package rendertest holds the value tables the render tests and the
// end-to-end tests (SnakeYAML, java.util.Properties, Python's configparser)
// share, so the real readers judge the same values the unit tests use.
package rendertest

import "strings"

// YAML11 are strings that a YAML 1.1 reader (SnakeYAML, PyYAML) or a YAML
// 1.2 reader would take for another type when written plain.
var YAML11 = []string{
	"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
	"true", "True", "TRUE", "false", "False", "FALSE",
	"~", "null", "Null", "NULL",
	"0b1010", "0b1_0", "-0b1", "017", "0o17", "0x1F", "0x_1F", "-0x1F", "1_000", "+12", "-12", "0",
	"190:20:30", "1:00", "-1:30", "190:20:30.15",
	"1.5", "1e3", "1.0e+3", ".5", "-.5", "+1.5", "1_000.5", "6.8523015e+5", "685.230_15e+03",
	".inf", "-.inf", "+.inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN",
	"2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-12-15T02:59:43.1Z",
	"<<", "=",
}

// Hostile are values that try to change a file's structure in some format:
// quotes, separators, comment and escape characters, line breaks of every
// kind, white space at the ends, non-ASCII text and control characters.
var Hostile = []string{
	`p"ss`, `a: b`, `x # not a comment`, "#start", "!start", ";start", "[section]", "line1\nline2",
	"cr\rlf", "crlf\r\nx", "trailing newline\n", "vt\vff\f", "nel\u0085ls\u2028ps\u2029", "fs\x1cgs\x1drs\x1eus\x1f",
	`${OTHER}`, `$${OTHER}`, `$OTHER`, `{}`, `[1, 2]`, `*alias`, `&anchor`, `- item`, `'single'`, `key: {nested: map}`,
	`%TAG`, `%(name)s`, `100%`, `%%`, `!!binary`, `@at`, "`backtick", `|`, `>`, `---`, `...`,
	" leading space", "trailing space ", "\tleading tab", "trailing tab\t", "  ", "tab\there",
	`\backslash`, `trailing backslash\`, `\\`, `\u0041`, `\n`, `c:\dir\new`,
	`key=value`, `key:value`, `=start`, `:start`, `a=b=c`,
	"é unicode ✓", "emoji 😀", "\ufeffbom", "esc\x1b[0m", "del\x7f", "nul\x00byte", "\x01\x02",
	strings.Repeat("long value ", 30),
}
