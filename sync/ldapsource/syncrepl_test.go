package ldapsource

import (
	"maps"
	"strings"
	"testing"
)

func TestCookieCSNs(t *testing.T) {
	const (
		a = "20261206205121.261320Z#000000#000#000000"
		b = "20261206205124.476939Z#000000#001#000000"
		c = "20261206205130.000001Z#000002#001#000000" // newer, same server as b
	)
	cases := []struct {
		name   string
		cookie string
		want   map[string]string
	}{
		{"one server", "rid=000,csn=" + a, map[string]string{"000": a}},
		{"server ID and two providers", "rid=001,sid=002,csn=" + a + ";" + b, map[string]string{"000": a, "001": b}},
		{"newest per server", "rid=001,csn=" + c + ";" + b, map[string]string{"001": c}},
		{"before 2.3", "rid=000,csn=20040101000000Z#000001#00#000000", map[string]string{"00": "20040101000000Z#000001#00#000000"}},
		{"delcsn is not the state", "rid=000,delcsn=" + b + ",csn=" + a, map[string]string{"000": a}},
		{"no csn", "rid=000", nil},
		{"empty csn", "rid=000,csn=", nil},
		{"empty", "", nil},
		{"not a CSN", "rid=000,csn=20261206205121Z)(objectClass=*", nil},
		{"one bad of two", "rid=000,csn=" + a + ";x#1#2#3", nil},
		{"three fields", "rid=000,csn=20261206205121.261320Z#000000#000", nil},
		{"long fraction", "rid=000,csn=20261206205121.2613201Z#000000#000#000000", nil},
		{"short time", "rid=000,csn=202612062051.261320Z#000000#000#000000", nil},
		{"no Z", "rid=000,csn=20261206205121.261320#000000#000#000000", nil},
		{"non-hex field", "rid=000,csn=20261206205121.261320Z#00000g#000#000000", nil},
		{"empty field", "rid=000,csn=20261206205121.261320Z##000#000000", nil},
	}
	for _, tc := range cases {
		got, ok := cookieCSNs([]byte(tc.cookie))
		if ok != (tc.want != nil) || !maps.Equal(got, tc.want) {
			t.Errorf("%s: cookieCSNs(%q) = %v, %v; want %v", tc.name, tc.cookie, got, ok, tc.want)
		}
	}
}

func TestCSNAfter(t *testing.T) {
	cookie := map[string]string{"000": "20261206205121.261320Z#000000#000#000000", "001": "20261206205124.476939Z#000000#001#000000"}
	cases := []struct {
		csn  string
		want bool
	}{
		{"20261206205121.261320Z#000000#000#000000", false}, // the cookie's own: already seen
		{"20261206205121.261319Z#000000#000#000000", false},
		{"20261206205121.261320Z#000001#000#000000", true}, // same time, later count
		// Held against the CSN of the server that made it, not the others'.
		{"20261206205122.000000Z#000000#000#000000", true},
		{"20261206205122.000000Z#000000#001#000000", false},
		{"20261206205125.000000Z#000000#001#000000", true},
		{"20200101000000.000000Z#000000#002#000000", true}, // a server the cookie does not know
		{"", true},
		{"garbage", true},
	}
	for _, tc := range cases {
		if got := csnAfter(tc.csn, cookie); got != tc.want {
			t.Errorf("csnAfter(%q) = %v, want %v", tc.csn, got, tc.want)
		}
	}
}

func TestSyncreplMovedContainers(t *testing.T) {
	q := syncreplMovedContainers(map[string]string{"000": "20261206205121.261320Z#000000#000#000000", "001": "20261206205124.476939Z#000000#001#000000"})
	// The server is asked from the oldest CSN of all servers.
	if want := "(&(hasSubordinates=TRUE)(entryCSN>=20261206205121.261320Z#000000#000#000000))"; q.filter != want {
		t.Errorf("filter %q, want %q", q.filter, want)
	}
	if len(q.attrs) != 1 || !strings.EqualFold(q.attrs[0], "entryCSN") || q.moved == nil {
		t.Errorf("attrs %v, moved set %v; want entryCSN and a check of it", q.attrs, q.moved != nil)
	}
}

func TestNamingContextOf(t *testing.T) {
	ncs := []string{"dc=example,dc=test", "ou=branch,dc=example,dc=test", "o=other", ""}
	cases := []struct{ root, want string }{
		{"ou=people,dc=example,dc=test", "dc=example,dc=test"},
		{"OU=People,DC=Example,DC=Test", "dc=example,dc=test"},
		{"ou=x,ou=Branch,dc=example,dc=test", "ou=branch,dc=example,dc=test"}, // the longest that holds it
		{"dc=example,dc=test", "dc=example,dc=test"},
		{"cn=elsewhere", ""}, // only the null suffix holds it
		{"not a DN", "not a DN"},
	}
	for _, tc := range cases {
		if got := namingContextOf(tc.root, ncs); got != tc.want {
			t.Errorf("namingContextOf(%q) = %q, want %q", tc.root, got, tc.want)
		}
	}
	if got := namingContextOf("ou=people,dc=example,dc=test", nil); got != "ou=people,dc=example,dc=test" {
		t.Errorf("without naming contexts: %q, want the root DN", got)
	}
}

func FuzzCookieCSNs(f *testing.F) {
	f.Add([]byte("rid=000,csn=20261206205121.261320Z#000000#000#000000"))
	f.Add([]byte("rid=001,sid=002,csn=20261206205121.261320Z#000000#000#000000;20261206205124.476939Z#000000#001#000000"))
	f.Add([]byte("rid=000,csn=20040101000000Z#000001#00#000000"))
	f.Fuzz(func(t *testing.T, cookie []byte) {
		csns, ok := cookieCSNs(cookie)
		if ok != (len(csns) > 0) {
			t.Fatalf("ok %v with %d CSNs", ok, len(csns))
		}
		for sid, c := range csns {
			// What goes into the filter is a CSN: no filter syntax in it.
			if strings.ContainsAny(c, `()*\`+"\x00") {
				t.Fatalf("CSN %q of %q carries filter syntax", c, sid)
			}
			if got, ok := csnSID(c); !ok || got != sid {
				t.Fatalf("CSN %q filed under %q, parses to %q, %v", c, sid, got, ok)
			}
			if csnAfter(c, csns) {
				t.Fatalf("the cookie's own CSN %q counts as newer", c)
			}
		}
	})
}
