//go:build interop

package interop

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// ldapTarget is a server the OpenLDAP tools talk to, with an account that
// may read the tree.
type ldapTarget struct{ name, url, bindDN, bindPW string }

// ldapToolCase is one command line of the OpenLDAP tools. args gets the
// target's URL, bind DN and password and the base DN. The answer must
// contain want (libldap's wording of a result code) and exit with code;
// sameOnSlapd says slapd answers the command the same way, which the test
// checks too, so the expectation is that of a reference server.
type ldapToolCase struct {
	name        string
	tool        string
	args        func(tg ldapTarget, base string) []string
	want        []string
	code        int
	sameOnSlapd bool
}

func bound(tg ldapTarget, args ...string) []string {
	return append([]string{"-x", "-H", tg.url, "-D", tg.bindDN, "-w", tg.bindPW, "-o", "nettimeout=10"}, args...)
}

func anonymous(tg ldapTarget, args ...string) []string {
	return append([]string{"-x", "-H", tg.url, "-o", "nettimeout=10"}, args...)
}

// TestOpenLDAPTools runs ldapsearch, ldapwhoami, ldapcompare and ldapexop
// against dirgate in front of the test slapd (issue 13 items 1 to 5).
func TestOpenLDAPTools(t *testing.T) {
	d, e := openLDAP(t)
	base := e.Get(t, "DIRGATE_OL_BASE")
	user := "uid=user00001,ou=people," + base
	cases := []ldapToolCase{
		{name: "root DSE, anonymous simple bind (item 1)", tool: "ldapsearch",
			args: func(tg ldapTarget, base string) []string {
				return anonymous(tg, "-LLL", "-s", "base", "-b", "", "namingContexts")
			},
			want: []string{"namingContexts: " + base}, code: 0, sameOnSlapd: true},
		{name: "tree, anonymous (item 1)", tool: "ldapsearch",
			args: func(tg ldapTarget, base string) []string {
				return anonymous(tg, "-LLL", "-b", base, "(uid=user00001)", "1.1")
			},
			want: []string{"Insufficient access (50)"}, code: 50},
		{name: "whoami, unknown critical control (item 2)", tool: "ldapwhoami",
			args: func(tg ldapTarget, base string) []string { return bound(tg, "-e", "!1.2.3.4.5") },
			want: []string{"Critical extension is unavailable (12)"}, code: 1, sameOnSlapd: true},
		{name: "whoami, critical proxied authorization (item 2)", tool: "ldapwhoami",
			args: func(tg ldapTarget, base string) []string {
				return bound(tg, "-e", "!authzid=dn:uid=user00002,ou=people,"+base)
			},
			want: []string{"Critical extension is unavailable (12)"}, code: 1},
		{name: "whoami, non-critical unknown control", tool: "ldapwhoami",
			args: func(tg ldapTarget, base string) []string { return bound(tg, "-e", "1.2.3.4.5") },
			want: []string{"dn:"}, code: 0, sameOnSlapd: true},
		{name: "compare", tool: "ldapcompare",
			args: func(tg ldapTarget, base string) []string { return bound(tg, user, "uid:user00001") },
			want: []string{"TRUE"}, code: 6, sameOnSlapd: true},
		{name: "compare, unknown critical control (item 2)", tool: "ldapcompare",
			args: func(tg ldapTarget, base string) []string { return bound(tg, "-e", "!1.2.3.4.5", user, "uid:user00001") },
			want: []string{"Critical extension is unavailable (12)"}, code: 12, sameOnSlapd: true},
		{name: "unknown extended operation (item 4)", tool: "ldapexop",
			args: func(tg ldapTarget, base string) []string { return bound(tg, "1.2.3.4.5.6") },
			want: []string{"Protocol error (2)"}, code: 1, sameOnSlapd: true},
		{name: "attribute requested by OID (item 5)", tool: "ldapsearch",
			args: func(tg ldapTarget, base string) []string {
				return bound(tg, "-LLL", "-b", base, "(uid=user00001)", "2.5.4.3")
			},
			want: []string{"dn: " + user, "cn: Test User 00001"}, code: 0, sameOnSlapd: true},
		{name: ":dn: extensible match (item 3)", tool: "ldapsearch",
			args: func(tg ldapTarget, base string) []string {
				return bound(tg, "-LLL", "-b", base, "(&(uid=user0000*)(ou:dn:=people))", "1.1")
			},
			want: []string{"dn: " + user, "dn: uid=user00009,ou=people," + base}, code: 0, sameOnSlapd: true},
	}
	targets := []ldapTarget{
		{"dirgate", d.ldapURL(), serviceDN, servicePW},
		{"slapd", e.Get(t, "DIRGATE_OL_URL"), e.Get(t, "DIRGATE_OL_READER_DN"), e.Get(t, "DIRGATE_OL_READER_PW")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bin := tool(t, c.tool)
			answers := map[string]string{}
			for _, tg := range targets {
				if tg.name == "slapd" && !c.sameOnSlapd {
					continue
				}
				out, code := run(t, nil, bin, c.args(tg, base)...)
				answers[tg.name] = out
				for _, w := range c.want {
					if !strings.Contains(out, w) {
						t.Errorf("%s: %s %s: answer lacks %q (exit %d):\n%s", tg.name, c.tool, strings.Join(c.args(tg, base), " "), w, code, out)
					}
				}
				if code != c.code {
					t.Errorf("%s: %s exited %d, want %d:\n%s", tg.name, c.tool, code, c.code, out)
				}
			}
			// Where slapd answers a search the same, both list the same entries.
			if s, ok := answers["slapd"]; ok && c.tool == "ldapsearch" {
				if got, want := dnLines(answers["dirgate"]), dnLines(s); !slices.Equal(got, want) {
					t.Errorf("entries differ:\n  dirgate: %q\n  slapd:   %q", got, want)
				}
			}
		})
	}
}

// TestStartTLSWithoutTLS asks for StartTLS on a listener that has no
// certificate (item 4): a protocol error, not "unavailable", which would
// invite a retry elsewhere.
func TestStartTLSWithoutTLS(t *testing.T) {
	d, _ := openLDAP(t)
	out, code := run(t, nil, tool(t, "ldapsearch"), anonymous(ldapTarget{url: d.ldapURL()}, "-ZZ", "-LLL", "-s", "base", "-b", "", "namingContexts")...)
	if code == 0 || !strings.Contains(out, "ldap_start_tls") || !strings.Contains(out, "Protocol error (2)") {
		t.Fatalf("ldapsearch -ZZ on a listener without TLS exited %d, want a refusal with protocol error (2):\n%s", code, out)
	}
}

var dnLine = regexp.MustCompile(`(?m)^dn: ?(.*)$`)

// dnLines lists the DNs of an LDIF answer, lower-cased and sorted.
func dnLines(ldif string) []string {
	var out []string
	for _, m := range dnLine.FindAllStringSubmatch(ldif, -1) {
		out = append(out, strings.ToLower(m[1]))
	}
	slices.Sort(out)
	return out
}
