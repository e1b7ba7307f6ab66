package config

import (
	"strings"
	"testing"
)

func TestBootstrapForms(t *testing.T) {
	const wait = "wait: {hosts: [h:1]}\n"
	c, err := Parse([]byte(wait+"bootstrap: [CREATE KEYSPACE IF NOT EXISTS a, CREATE TABLE IF NOT EXISTS a.t (k int PRIMARY KEY)]\n"), "list", nil)
	if err != nil || len(c.Bootstrap.Statements) != 2 || len(c.Bootstrap.Identities) != 0 {
		t.Fatalf("the list form: %v %+v", err, c)
	}
	c, err = Parse([]byte(wait+`bootstrap:
  statements: [CREATE KEYSPACE IF NOT EXISTS a]
  identities:
    - {identity: "spiffe://cluster.local/ns/apps/sa/reaper", role: reaper, createRole: true}
    - {identity: "CN=orders,O=Example", role: orders}
`), "structured", nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := c.Bootstrap.Identities
	if len(c.Bootstrap.Statements) != 1 || len(ids) != 2 || ids[0].Role != "reaper" || !bool(ids[0].CreateRole) || bool(ids[1].CreateRole) {
		t.Errorf("structured form: %+v", c.Bootstrap)
	}
}

func TestIdentityErrors(t *testing.T) {
	const head = "wait: {hosts: [h:1]}\nbootstrap:\n  identities:\n"
	for _, tc := range []struct{ entry, want string }{
		{`    - {role: r}`, "bootstrap.identities[0].identity: is required"},
		{`    - {identity: "spiffe://td/a"}`, "bootstrap.identities[0].role is required"},
		{`    - {identity: "SPIFFE://td/a", role: r}`, "starts with spiffe://"},
		{`    - {identity: "spiffe:///a", role: r}`, "needs a trust domain"},
		{`    - {identity: "spiffe://Cluster.local/a", role: r}`, "only lower-case letters"},
		{`    - {identity: "spiffe://td:443/a", role: r}`, "no port"},
		{`    - {identity: "spiffe://td/a//b", role: r}`, "no empty segments"},
		{`    - {identity: "spiffe://td/a/", role: r}`, "no empty segments"},
		{`    - {identity: "spiffe://td/a/../b", role: r}`, "no '.' or '..'"},
		{`    - {identity: "spiffe://td/a?x=1", role: r}`, "no query or fragment"},
		{`    - {identity: "spiffe://td/a", role: r, createRole: maybe}`, "not true or false"},
		{`    - {identity: "spiffe://td/a", role: r, createrole: true}`, "field createrole not found"},
		{"    - {identity: \"spiffe://td/a\", role: r}\n    - {identity: \"spiffe://td/a\", role: s}", `also mapped to role "r"`},
	} {
		_, err := Parse([]byte(head+tc.entry+"\n"), "c.yaml", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.entry, err, tc.want)
		}
	}
	if _, err := Parse([]byte("wait: {hosts: [h:1]}\nbootstrap: {statement: [x]}\n"), "c.yaml", nil); err == nil || !strings.Contains(err.Error(), "field statement not found") {
		t.Errorf("a typo in bootstrap: %v", err)
	}
	for _, ok := range []string{"spiffe://cluster.local/ns/apps/sa/reaper", "spiffe://td", "spiffe://example.org/a_b-c.d", "CN=x,O=y"} {
		if err := CheckIdentity(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
