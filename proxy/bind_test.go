package proxy

import (
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/demodir"
	"github.com/dirgate/dirgate/metrics"
)

// TestAnonymousBind: the anonymous simple bind that `ldapsearch -x` and
// HAProxy's ldap-check send succeeds as "no identity" (RFC 4513 5.1.1);
// with allow_anonymous off (startDemo's default) such a session reads the
// root DSE and nothing else.
func TestAnonymousBind(t *testing.T) {
	addr := startDemo(t)
	c := dial(t, addr)
	before := anonymousBinds(t)
	if err := c.UnauthenticatedBind(""); err != nil {
		t.Fatalf("anonymous bind: %v", err)
	}
	if got := anonymousBinds(t) - before; got != 1 {
		t.Errorf("anonymous binds counted: %v, want 1", got)
	}
	if who, err := c.WhoAmI(nil); err != nil || who.AuthzID != "" {
		t.Errorf("WhoAmI after an anonymous bind: %+v %v", who, err)
	}
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"namingContexts"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("namingContexts") != demodir.Base {
		t.Fatalf("root DSE after an anonymous bind: %v %+v", err, res)
	}
	_, err = c.Search(ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(uid=alice)", nil, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Errorf("anonymous search: %v, want insufficientAccessRights", err)
	}
	_, err = c.Compare("uid=bob,ou=people,dc=demo,dc=dirgate", "title", "site reliability engineer")
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Errorf("anonymous compare: %v, want insufficientAccessRights", err)
	}
	// An anonymous bind drops what an earlier bind established.
	if err := c.Bind(appDN, appPW); err != nil {
		t.Fatal(err)
	}
	if err := c.UnauthenticatedBind(""); err != nil {
		t.Fatalf("anonymous bind after a service bind: %v", err)
	}
	_, err = c.Search(ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(uid=alice)", nil, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Errorf("search after binding anonymously again: %v, want insufficientAccessRights", err)
	}
}

// TestServiceAccountBindThrottled: a wrong service-account password goes
// through authn's pipeline: it is counted as an LDAP auth attempt, and the
// answer waits for the throttle delay (startDemo keeps the default
// auth.throttle: 200ms, then 400ms) instead of coming back as soon as the
// hash is checked.
func TestServiceAccountBindThrottled(t *testing.T) {
	addr := startDemo(t)
	before := authCount(t, "invalid_credentials")
	start := time.Now()
	for range 2 {
		if err := dial(t, addr).Bind(appDN, "wrong"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Fatalf("wrong service-account password: %v", err)
		}
	}
	// A lower bound only: it holds however loaded the machine is.
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("two wrong service-account passwords answered in %v, want at least 200ms+400ms", d)
	}
	if got := authCount(t, "invalid_credentials") - before; got != 2 {
		t.Errorf("%v failed service-account binds counted, want 2", got)
	}
	// The right password still works from the same address (the account is
	// not locked), and counts as a success.
	ok := authCount(t, "success")
	if err := dial(t, addr).Bind(appDN, appPW); err != nil {
		t.Fatalf("right service-account password: %v", err)
	}
	if got := authCount(t, "success") - ok; got != 1 {
		t.Errorf("%v successful service-account binds counted, want 1", got)
	}
}

// authCount is dirgate_auth_attempts_total for LDAP and result.
func authCount(t *testing.T, result string) float64 {
	return counterValue(t, "dirgate_auth_attempts_total", map[string]string{"protocol": "ldap", "result": result})
}

// anonymousBinds is dirgate_ldap_operations_total for anonymous binds,
// whatever their result.
func anonymousBinds(t *testing.T) float64 {
	return counterValue(t, "dirgate_ldap_operations_total", map[string]string{"op": "bind_anonymous"})
}

// counterValue is the sum of the counters of the metrics registry named
// name whose labels include labels.
func counterValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
