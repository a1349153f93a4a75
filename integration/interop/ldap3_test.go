//go:build interop

package interop

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/dn"
)

// python is Debian's interpreter, where the python3-ldap3 package installs
// (another python3 on PATH may not have it).
const python = "/usr/bin/python3"

// ldap3Op is one operation of testdata/ldap3client.py.
type ldap3Op map[string]any

func ldap3Search(base, filter string, pageSize int, attrs ...string) ldap3Op {
	return ldap3Op{"op": "search", "base": base, "filter": filter, "page_size": pageSize, "attrs": attrs}
}

// ldap3Result is the script's answer to one operation.
type ldap3Result struct {
	Result  int                            `json:"result"`
	Message string                         `json:"message"`
	DNs     []string                       `json:"dns"`
	Entries map[string]map[string][]string `json:"entries"`
	Names   []string                       `json:"names"`
	Values  []string                       `json:"values"`
}

// ldap3 binds to url with Python's ldap3 and runs ops on that one
// connection; the first result is the bind's.
func ldap3(t *testing.T, url, user, password string, ops []ldap3Op) []ldap3Result {
	t.Helper()
	bin := tool(t, python)
	if out, code := run(t, nil, bin, "-c", "import ldap3"); code != 0 {
		missing(t, "python3-ldap3 (import ldap3: "+strings.TrimSpace(out)+")")
	}
	req, err := json.Marshal(map[string]any{"url": url, "user": user, "password": password, "ops": ops})
	if err != nil {
		t.Fatal(err)
	}
	out, code := run(t, req, bin, filepath.Join("testdata", "ldap3client.py"))
	var res struct{ Results []ldap3Result }
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || len(res.Results) != len(ops)+1 {
		t.Fatalf("ldap3client.py against %s exited %d (%v):\n%s", url, code, err, out)
	}
	return res.Results
}

// compareLdap3 runs ops through dirgate and directly against the upstream
// and reports every operation whose answers differ: result code, entries
// found, attribute values read.
func compareLdap3(t *testing.T, ops []ldap3Op, gate, upstream [3]string) {
	t.Helper()
	got := ldap3(t, gate[0], gate[1], gate[2], ops)
	want := ldap3(t, upstream[0], upstream[1], upstream[2], ops)
	if got[0].Result != 0 || want[0].Result != 0 {
		t.Fatalf("bind: dirgate %d %q, upstream %d %q", got[0].Result, got[0].Message, want[0].Result, want[0].Message)
	}
	for i, op := range ops {
		g, w := got[i+1], want[i+1]
		if (op["op"] == "search" && len(w.DNs) == 0) || (op["op"] == "range" && len(w.Values) == 0) {
			t.Fatalf("%v: the upstream found nothing; the comparison would prove nothing", op)
		}
		var diffs []string
		if g.Result != w.Result {
			diffs = append(diffs, fmt.Sprintf("result %d (%s), upstream %d", g.Result, g.Message, w.Result))
		}
		if len(g.DNs) != len(w.DNs) {
			diffs = append(diffs, fmt.Sprintf("%d entries, upstream %d", len(g.DNs), len(w.DNs)))
		} else if !slices.Equal(lower(g.DNs), lower(w.DNs)) {
			diffs = append(diffs, fmt.Sprintf("entries %.300q, upstream %.300q", g.DNs, w.DNs))
		}
		if attrs, _ := op["attrs"].([]string); len(attrs) > 0 {
			if gv, wv := normalize(g.Entries), normalize(w.Entries); gv != wv {
				diffs = append(diffs, fmt.Sprintf("entries read\n%.500s\nupstream\n%.500s", gv, wv))
			}
		}
		if !slices.Equal(lower(g.Names), lower(w.Names)) {
			diffs = append(diffs, fmt.Sprintf("attributes %q, upstream %q", g.Names, w.Names))
		}
		// One range request returns some values, not necessarily the same
		// ones; a complete walk returns them all.
		if gv, wv := lower(g.Values), lower(w.Values); len(gv) != len(wv) || (op["once"] == nil && !slices.Equal(gv, wv)) {
			diffs = append(diffs, fmt.Sprintf("%d values, upstream %d", len(gv), len(wv)))
		}
		if len(diffs) > 0 {
			t.Errorf("%v through dirgate: %s", op, strings.Join(diffs, "; "))
		}
	}
}

// canon maps DNs to their comparison key (servers escape the same DN
// differently) and other values to lower case.
func canon(v string) string {
	if k, err := dn.Key(v); err == nil && strings.Contains(v, "=") {
		return k
	}
	return strings.ToLower(v)
}

// lower canonicalizes and sorts values.
func lower(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = canon(v)
	}
	slices.Sort(out)
	return out
}

// normalize renders entries with DNs and attribute names lower-cased and
// values sorted, for comparison.
func normalize(entries map[string]map[string][]string) string {
	var b strings.Builder
	byKey := map[string]map[string][]string{}
	var keys []string
	for d, attrs := range entries {
		byKey[canon(d)] = attrs
		keys = append(keys, canon(d))
	}
	slices.Sort(keys)
	for _, k := range keys {
		var names []string
		attrs := map[string][]string{}
		for n, vs := range byKey[k] {
			n = strings.ToLower(n)
			names = append(names, n)
			attrs[n] = lower(vs)
		}
		slices.Sort(names)
		fmt.Fprintf(&b, "%s:", k)
		for _, n := range names {
			fmt.Fprintf(&b, " %s=%q", n, attrs[n])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestLdap3OpenLDAP: Python's ldap3 gets the same answers from dirgate as
// from the slapd behind it, on one connection: paged searches with
// Keycloak's default user filters, which match by objectClass superclass
// (issue 13 item 6), a :dn: extensible match (item 3) followed by another
// search on the same connection, and user binds.
func TestLdap3OpenLDAP(t *testing.T) {
	d, e := openLDAP(t)
	base := e.Get(t, "DIRGATE_OL_BASE")
	user := "uid=user00001,ou=people," + base
	ops := []ldap3Op{
		ldap3Search(base, "(objectClass=person)", 200),
		ldap3Search(base, "(&(objectClass=inetOrgPerson)(objectClass=organizationalPerson))", 200),
		ldap3Search(base, "(&(objectClass=organizationalPerson)(|(uid=user0001*)(uid=jdoe)))", 0, "cn"),
		ldap3Search(base, "(&(uid=user0000*)(ou:dn:=people))", 0),
		ldap3Search(base, "(uid=user00002)", 0, "cn", "mail", "2.5.4.4"),
		{"op": "bind", "user": user, "password": e.Get(t, "DIRGATE_OL_USER_PW")},
		{"op": "bind", "user": user, "password": "wrong"},
	}
	compareLdap3(t, ops,
		[3]string{d.ldapURL(), serviceDN, servicePW},
		[3]string{e.Get(t, "DIRGATE_OL_URL"), e.Get(t, "DIRGATE_OL_SYNC_DN"), e.Get(t, "DIRGATE_OL_SYNC_PW")})
}

// TestLdap3SambaAD: through dirgate in front of the Samba AD DC, ldap3
// counts as many users and groups with AD's objectCategory short names as
// Samba does (issue 13 item 7), and reads a large group's members with
// AD range retrieval (item 8).
func TestLdap3SambaAD(t *testing.T) {
	d, e := sambaAD(t)
	base := e.Get(t, "DIRGATE_AD_BASE")
	big := e.Get(t, "DIRGATE_AD_G_BIG_DN")
	ops := []ldap3Op{
		ldap3Search(base, "(&(objectCategory=person)(objectClass=user))", 500),
		ldap3Search(base, "(objectCategory=group)", 500),
		{"op": "range", "base": big, "attr": "member", "first": "0-*"},
		{"op": "range", "base": big, "attr": "member", "first": "0-1", "once": true},
		{"op": "bind", "user": e.Get(t, "DIRGATE_AD_JDOE_UPN"), "password": e.Get(t, "DIRGATE_AD_USER_PW")},
	}
	compareLdap3(t, ops,
		[3]string{d.ldapURL(), serviceDN, servicePW},
		[3]string{e.Get(t, "DIRGATE_AD_URL"), e.Get(t, "DIRGATE_AD_ADMIN_DN"), e.Get(t, "DIRGATE_AD_ADMIN_PW")})
}
