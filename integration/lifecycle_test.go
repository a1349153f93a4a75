package integration

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
)

// adminConn binds to the primary test slapd as its rootdn, to change the
// upstream between syncs.
func adminConn(t *testing.T, e env) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(e.Get(t, "DIRGATE_OL_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(e.Get(t, "DIRGATE_OL_ADMIN_DN"), e.Get(t, "DIRGATE_OL_ADMIN_PW")); err != nil {
		t.Fatal(err)
	}
	return c
}

func addUser(t *testing.T, c *ldap.Conn, dnStr, uid, mail, pw string) {
	t.Helper()
	req := ldap.NewAddRequest(dnStr, nil)
	req.Attribute("objectClass", []string{"inetOrgPerson"})
	req.Attribute("uid", []string{uid})
	req.Attribute("cn", []string{uid})
	req.Attribute("sn", []string{uid})
	req.Attribute("mail", []string{mail})
	req.Attribute("userPassword", []string{pw})
	if err := c.Add(req); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
		t.Fatalf("add %s: %v", dnStr, err)
	}
}

func del(c *ldap.Conn, dnStr string) { _ = c.Del(ldap.NewDelRequest(dnStr, nil)) }

// TestSyncChanges changes the upstream between two syncs (add, modify,
// rename, delete) and checks the plan, the stable IDs and what is served.
func TestSyncChanges(t *testing.T) {
	e := loadEnv(t)
	base := e.Get(t, "DIRGATE_OL_BASE")
	people := "ou=people," + base
	admin := adminConn(t, e)
	pw := "It-Passw0rd!"
	for _, d := range []string{"uid=it-gone", "uid=it-mod", "uid=it-renamed", "uid=it-new", "uid=it-old"} {
		del(admin, d+","+people)
	}
	addUser(t, admin, "uid=it-gone,"+people, "it-gone", "it-gone@example.test", pw)
	addUser(t, admin, "uid=it-mod,"+people, "it-mod", "it-mod@example.test", pw)
	addUser(t, admin, "uid=it-old,"+people, "it-old", "it-old@example.test", pw)
	t.Cleanup(func() {
		for _, d := range []string{"uid=it-mod", "uid=it-renamed", "uid=it-new", "uid=it-old", "uid=it-gone"} {
			del(admin, d+","+people)
		}
	})

	gw := startGateway(t, parseConfig(t, connectorYAML(t, e, "corp", e.Get(t, "DIRGATE_OL_HOST"), "")))
	if _, err := gw.sync(t, "corp", dirsync.Options{}); err != nil {
		t.Fatal(err)
	}
	idOf := func(dnStr string) string {
		var id string
		_ = gw.store.View(t.Context(), func(v *cache.View) error {
			en, err := v.ByDN(dnStr)
			if err == nil {
				id = en.ID
			}
			return nil
		})
		return id
	}
	oldID := idOf("uid=it-old," + people)
	if oldID == "" {
		t.Fatal("it-old not synced")
	}

	addUser(t, admin, "uid=it-new,"+people, "it-new", "it-new@example.test", pw)
	mod := ldap.NewModifyRequest("uid=it-mod,"+people, nil)
	mod.Replace("mail", []string{"it-mod-changed@example.test"})
	if err := admin.Modify(mod); err != nil {
		t.Fatal(err)
	}
	if err := admin.ModifyDN(ldap.NewModifyDNRequest("uid=it-old,"+people, "uid=it-renamed", true, "")); err != nil {
		t.Fatal(err)
	}
	del(admin, "uid=it-gone,"+people)

	dry, err := gw.sync(t, "corp", dirsync.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Added != 1 || dry.Updated != 2 || dry.Deleted != 1 {
		t.Fatalf("dry run plan: %d added %d updated %d deleted, want 1/2/1", dry.Added, dry.Updated, dry.Deleted)
	}
	if idOf("uid=it-gone,"+people) == "" {
		t.Fatal("a dry run changed the cache")
	}
	if len(dry.Plan.Deletes) != 1 || !strings.HasPrefix(dry.Plan.Deletes[0].DN, "uid=it-gone") {
		t.Fatalf("plan deletes = %+v", dry.Plan.Deletes)
	}

	if dry.Mode != dirsync.ModeIncremental {
		t.Fatalf("second run mode %q, want incremental", dry.Mode)
	}
	res, err := gw.sync(t, "corp", dirsync.Options{})
	if err != nil || res.Added != 1 || res.Updated != 2 || res.Deleted != 1 {
		t.Fatalf("sync: %+v %v", res.Run, err)
	}
	// The incremental run reads the changed entries, not the directory.
	if res.Mode != dirsync.ModeIncremental || res.Method != "syncrepl" || res.Read > 3 {
		t.Fatalf("incremental run: mode %q via %q read %d entries", res.Mode, res.Method, res.Read)
	}
	t.Logf("incremental syncrepl run: read %d entries in %v", res.Read, res.Duration)
	full, err := gw.sync(t, "corp", dirsync.Options{Mode: dirsync.ModeFull})
	if err != nil || full.Added+full.Updated+full.Deleted != 0 {
		t.Fatalf("a full run after the incremental one must find nothing to change: %+v %v", full.Run, err)
	}
	t.Logf("full run: read %d entries in %v", full.Read, full.Duration)
	if idOf("uid=it-renamed,"+people) != oldID {
		t.Fatal("a renamed entry must keep its stable ID")
	}
	if idOf("uid=it-gone,"+people) != "" || idOf("uid=it-old,"+people) != "" {
		t.Fatal("deleted or renamed-away DN still served")
	}
	c := gw.dial(t)
	if err := c.Bind("it-mod-changed@example.test", pw); err != nil {
		t.Fatalf("bind with the changed address: %v", err)
	}
	if err := c.Bind("it-mod@example.test", pw); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("the old address must no longer resolve: %v", err)
	}
	runs, _ := gw.store.Runs(t.Context(), "corp", 10)
	if len(runs) != 4 || !runs[2].DryRun {
		t.Fatalf("sync history = %+v", runs)
	}
}

// TestSafetyBlocksMassDeletion scopes a connector down so most entries
// disappear: the run must be blocked and change nothing until forced.
func TestSafetyBlocksMassDeletion(t *testing.T) {
	e := loadEnv(t)
	gw := startGateway(t, parseConfig(t, connectorYAML(t, e, "corp", e.Get(t, "DIRGATE_OL_HOST"), "")))
	if _, err := gw.sync(t, "corp", dirsync.Options{}); err != nil {
		t.Fatal(err)
	}
	c, _ := gw.cfg.Connector("corp")
	c.UserFilter = "(&(objectClass=inetOrgPerson)(uid=user0000*))"
	c.Safety.MaxDeletes, c.Safety.MaxDeletePercent = 500, 10
	res, err := gw.sync(t, "corp", dirsync.Options{})
	var blocked *dirsync.BlockedError
	if !errors.As(err, &blocked) || res.Deleted < 500 {
		t.Fatalf("mass deletion not blocked: %v %+v", err, res.Run)
	}
	var users int
	_ = gw.store.View(t.Context(), func(v *cache.View) error { users, _, _ = v.Counts("corp"); return nil })
	if users < 2000 {
		t.Fatalf("a blocked run deleted entries: %d users left", users)
	}
	if _, err = gw.sync(t, "corp", dirsync.Options{Force: true}); err != nil {
		t.Fatalf("forced run: %v", err)
	}
	_ = gw.store.View(t.Context(), func(v *cache.View) error { users, _, _ = v.Counts("corp"); return nil })
	if users != 9 {
		t.Fatalf("after the forced run %d users are served, want 9", users)
	}
}

// TestFailover points the connector at a dead primary and the second test
// slapd as alternate: sync and binds must use the alternate.
func TestFailover(t *testing.T) {
	e := loadEnv(t)
	alt := e.Get(t, "DIRGATE_OL2_HOST")
	if e.Get(t, "DIRGATE_OL2_LDAPS_PORT") != e.Get(t, "DIRGATE_OL_LDAPS_PORT") {
		t.Fatal("the failover test needs both instances on one port (scripts/testenv/up.sh)")
	}
	dead := "127.0.0.3"
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(dead, e.Get(t, "DIRGATE_OL_LDAPS_PORT")), time.Second); err == nil {
		c.Close()
		t.Fatalf("%s unexpectedly answers", dead)
	}
	gw := startGateway(t, parseConfig(t, connectorYAML(t, e, "corp", dead, alt)))
	res, err := gw.sync(t, "corp", dirsync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Host != alt {
		t.Fatalf("synced from %q, want the alternate %s", res.Host, alt)
	}
	c := gw.dial(t)
	if err := c.Bind("user00001@example.test", e.Get(t, "DIRGATE_OL_USER_PW")); err != nil {
		t.Fatalf("bind through the alternate: %v", err)
	}

	// Primary up: it is preferred.
	gw2 := startGateway(t, parseConfig(t, connectorYAML(t, e, "corp", e.Get(t, "DIRGATE_OL_HOST"), alt)))
	if res, err := gw2.sync(t, "corp", dirsync.Options{}); err != nil || res.Host != e.Get(t, "DIRGATE_OL_HOST") {
		t.Fatalf("with the primary up: host %q, %v", res.Host, err)
	}

	// Both down: a clear unavailable error and the cache keeps serving.
	gw3 := startGateway(t, parseConfig(t, connectorYAML(t, e, "corp", dead, "127.0.0.4")))
	if _, err := gw3.sync(t, "corp", dirsync.Options{}); err == nil || !strings.Contains(err.Error(), "no upstream host reachable") {
		t.Fatalf("both hosts down: %v", err)
	}
	if err := gw.dial(t).Bind("user00001@example.test", "whatever"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("wrong password via alternate: %v", err)
	}
}

// TestEmailDomainFilter syncs only users with an address in the filter's
// domains; only those addresses resolve logins.
func TestEmailDomainFilter(t *testing.T) {
	e := loadEnv(t)
	gw := startGateway(t, parseConfig(t, connectorYAML(t, e, "corp", e.Get(t, "DIRGATE_OL_HOST"), "", "email_domains: other.test")))
	if _, err := gw.sync(t, "corp", dirsync.Options{}); err != nil {
		t.Fatal(err)
	}
	var users int
	_ = gw.store.View(t.Context(), func(v *cache.View) error { users, _, _ = v.Counts("corp"); return nil })
	if users != 2000/7 {
		t.Fatalf("%d users synced, want %d (those with an other.test address)", users, 2000/7)
	}
	pw := e.Get(t, "DIRGATE_OL_USER_PW")
	if err := gw.dial(t).Bind("user00007@other.test", pw); err != nil {
		t.Fatalf("bind with the in-domain address: %v", err)
	}
	if err := gw.dial(t).Bind("user00007@example.test", pw); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("an address outside the domain filter must not resolve: %v", err)
	}
}

// TestTLSModes checks strict mode against the wrong CA and relaxed mode
// without a CA, and StartTLS.
func TestTLSModes(t *testing.T) {
	e := loadEnv(t)
	host := e.Get(t, "DIRGATE_OL_HOST")
	cases := []struct {
		name  string
		extra []string
		want  string // "" = success, else error substring
	}{
		{"strict wrong CA", []string{"ca_file: " + e.Get(t, "DIRGATE_OL_WRONG_CA")}, "unknown CA"},
		{"relaxed", []string{"encryption: relaxed"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			y := connectorYAML(t, e, "corp", host, "")
			for _, x := range c.extra {
				key := strings.SplitN(x, ":", 2)[0]
				y = replaceLine(y, key, x)
			}
			if strings.Contains(y, "encryption: relaxed") {
				y = replaceLine(y, "ca_file", "")
			}
			gw := startGateway(t, parseConfig(t, y))
			_, err := gw.sync(t, "corp", dirsync.Options{})
			switch {
			case c.want == "" && err != nil:
				t.Fatal(err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want an error mentioning %q", err, c.want)
			}
		})
	}
	t.Run("starttls strict", func(t *testing.T) {
		y := connectorYAML(t, e, "corp", host, "")
		y = replaceLine(y, "port", "port: "+e.Get(t, "DIRGATE_OL_PORT"))
		y = replaceLine(y, "tls_mode", "tls_mode: starttls")
		gw := startGateway(t, parseConfig(t, y))
		if _, err := gw.sync(t, "corp", dirsync.Options{}); err != nil {
			t.Fatal(err)
		}
	})
}

// replaceLine swaps the connector line starting with key (4-space indent).
func replaceLine(y, key, line string) string {
	var out []string
	for _, l := range strings.Split(y, "\n") {
		if strings.HasPrefix(l, "    "+key+":") {
			if line == "" {
				continue
			}
			l = "    " + line
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
