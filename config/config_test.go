package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/passwd"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.golden from the current output")

const (
	exampleEnv      = "DIRGATE_EXAMPLE_AD_PASSWORD"
	exampleEnvValue = "example-env-password"
	fileValue       = "example-file-password"
)

// minimal is the smallest valid configuration; tests append to it.
const minimal = `
connectors:
  - name: corp
    type: openldap
    host: ldap.example.com
    root_dn: dc=example,dc=com
`

func mustParse(t *testing.T, yml string) *Config {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

func parseErr(t *testing.T, yml string) string {
	t.Helper()
	_, err := Parse("test.yaml", []byte(yml))
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Parse returned %v (%T), want *Error", err, err)
	}
	return err.Error()
}

func TestValidExample(t *testing.T) {
	t.Setenv(exampleEnv, exampleEnvValue)
	t.Setenv("DIRGATE_EXAMPLE_ADMIN_TOKEN", "an-example-admin-token-0123456789")
	cfg, err := Load("testdata/valid.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := cfg.Cache.Dir, filepath.Join("testdata", "data"); got != want {
		t.Errorf("Cache.Dir = %q, want %q", got, want)
	}
	if got, want := cfg.LDAP.TLS.CertFile, filepath.Join("testdata", "cert.pem"); got != want {
		t.Errorf("TLS.CertFile = %q, want %q", got, want)
	}
	if len(cfg.ServiceAccounts) != 2 || len(cfg.Connectors) != 3 {
		t.Fatalf("got %d service accounts and %d connectors", len(cfg.ServiceAccounts), len(cfg.Connectors))
	}

	corp, ok := cfg.Connector("corp-ldap")
	if !ok {
		t.Fatal(`Connector("corp-ldap") not found`)
	}
	if corp.BindPassword.Reveal() != fileValue {
		t.Errorf("corp-ldap password from file = %q", corp.BindPassword.Reveal())
	}
	if corp.CAFile != filepath.Join("testdata", "ca.pem") {
		t.Errorf("CAFile = %q", corp.CAFile)
	}
	if got := corp.URLs(); !reflect.DeepEqual(got, []string{"ldaps://ldap1.example.com:636", "ldaps://ldap2.example.com:636"}) {
		t.Errorf("URLs = %v", got)
	}

	ad, _ := cfg.Connector("branch-ad")
	if ad.BindPassword.Reveal() != exampleEnvValue {
		t.Errorf("branch-ad password from env = %q", ad.BindPassword.Reveal())
	}
	if want := []string{"branch.example.com", "example.net"}; !reflect.DeepEqual(ad.EmailDomains, want) {
		t.Errorf("EmailDomains = %q, want %q", ad.EmailDomains, want)
	}
	if want := []string{"proxyAddresses"}; !reflect.DeepEqual(ad.AliasAttributes, want) {
		t.Errorf("AD AliasAttributes = %q, want %q", ad.AliasAttributes, want)
	}
	if got := ad.URLs(); !reflect.DeepEqual(got, []string{"ldap://192.0.2.10:389"}) {
		t.Errorf("URLs = %v", got)
	}

	notes, _ := cfg.Connector("notes")
	if got := notes.URLs(); !reflect.DeepEqual(got, []string{"ldap://[2001:db8::25]:389"}) {
		t.Errorf("URLs = %v", got)
	}
	if !notes.Domino.HonorAvailableForDirSync || len(notes.Domino.DenyGroups) != 2 {
		t.Errorf("Domino = %+v", notes.Domino)
	}
	if notes.BindPassword != "" || notes.RootDN != "" {
		t.Errorf("anonymous domino connector got password or root DN")
	}
	if _, ok := cfg.Connector("missing"); ok {
		t.Error(`Connector("missing") found something`)
	}

	wantProfiles := []AuthProfile{
		{Domains: []string{"example.com", "example.org"}, Connector: "corp-ldap"},
		{Domains: []string{"branch.example.com", "example.net"}, Connector: "branch-ad"},
		{Domains: []string{"*"}, Connector: "notes"},
	}
	if !reflect.DeepEqual(cfg.Auth.Profiles, wantProfiles) {
		t.Errorf("Auth.Profiles = %+v\nwant %+v", cfg.Auth.Profiles, wantProfiles)
	}
	if cfg.Auth.Throttle != defaultThrottle || cfg.Auth.PoolSize != 4 || cfg.Auth.BindTimeout.Std() != 15*time.Second ||
		cfg.Auth.OfflineVerifier != (OfflineVerifier{MaxAge: Duration(168 * time.Hour)}) {
		t.Errorf("Auth = %+v", cfg.Auth)
	}
	o := cfg.OIDC
	if o == nil {
		t.Fatal("OIDC is nil")
	}
	if o.Issuer != "https://login.example.com" || o.TLS == nil || o.TLS.KeyFile != filepath.Join("testdata", "key.pem") ||
		len(o.Clients) != 2 || o.CodeTTL.Std() != time.Minute {
		t.Errorf("OIDC = %+v", o)
	}
	if wiki := o.Clients[0]; wiki.Public || !wiki.VerifySecret("correct horse") || wiki.VerifySecret("correct horsE") {
		t.Errorf("confidential client %+v does not verify its secret", wiki)
	}
	if app := o.Clients[1]; !app.Public || app.Name != "Expenses" || len(app.RedirectURIs) != 2 || app.VerifySecret("") {
		t.Errorf("public client %+v", app)
	}
}

var defaultThrottle = Throttle{
	AccountFailures: 5,
	AddressFailures: 20,
	Window:          Duration(15 * time.Minute),
	Lockout:         Duration(15 * time.Minute),
	BaseDelay:       Duration(200 * time.Millisecond),
}

// TestInvalidGolden loads each testdata/invalid/*.yaml and compares the
// error with the .golden file beside it. Run with -update to rewrite them.
func TestInvalidGolden(t *testing.T) {
	t.Setenv("DIRGATE_TEST_PASSWORD", "unused")
	t.Setenv("DIRGATE_TEST_UNSET_PASSWORD", "")
	os.Unsetenv("DIRGATE_TEST_UNSET_PASSWORD")
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid examples: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			_, err := Load(file)
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load returned %v (%T), want *Error", err, err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("error text differs from %s (run go test -update to accept)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			for _, p := range cerr.Problems {
				if p.File != file || p.Line < 1 || p.Message == "" {
					t.Errorf("incomplete problem %+v", p)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load = %v, want a not-exist error", err)
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, minimal+`
  - name: ad
    type: ad
    host: dc.example.com
    root_dn: dc=example,dc=com
  - name: notes
    type: domino
    host: notes.example.com
    encryption: none
  - name: starttls
    type: openldap
    host: ldap.example.com
    root_dn: dc=example,dc=com
    tls_mode: starttls
`)
	if cfg.Path != "test.yaml" || cfg.Cache.Dir != "data" {
		t.Errorf("Path = %q, Cache.Dir = %q", cfg.Path, cfg.Cache.Dir)
	}
	wantLDAP := LDAPListener{
		Listen:         "127.0.0.1:3890",
		SizeLimit:      1000,
		MaxPageSize:    1000,
		IdleTimeout:    Duration(15 * time.Minute),
		MaxConnections: 1024,
		// issue 13's connection limits
		MaxConnectionsPerAddress: 256,
		FirstRequestTimeout:      Duration(10 * time.Second),
		ReadTimeout:              Duration(30 * time.Second),
	}
	if !reflect.DeepEqual(cfg.LDAP, wantLDAP) {
		t.Errorf("LDAP = %+v\nwant %+v", cfg.LDAP, wantLDAP)
	}
	if cfg.Log != (Log{Level: "info", Format: "json"}) {
		t.Errorf("Log = %+v", cfg.Log)
	}
	wantAuth := Auth{
		Throttle:        defaultThrottle,
		OfflineVerifier: OfflineVerifier{Enabled: false, MaxAge: Duration(168 * time.Hour)},
		PoolSize:        16,
		BindTimeout:     Duration(15 * time.Second),
	}
	if !reflect.DeepEqual(cfg.Auth, wantAuth) {
		t.Errorf("Auth = %+v\nwant %+v", cfg.Auth, wantAuth)
	}
	if cfg.OIDC != nil {
		t.Errorf("OIDC = %+v without an oidc section, want nil", cfg.OIDC)
	}
	wantCorp := Connector{
		Name:                        "corp",
		Type:                        TypeOpenLDAP,
		Host:                        "ldap.example.com",
		Port:                        636,
		Encryption:                  EncryptionStrict,
		TLSMode:                     TLSModeLDAPS,
		RootDN:                      "dc=example,dc=com",
		UserFilter:                  "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))",
		GroupFilter:                 "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))",
		AcknowledgeDisabledAccounts: true,
		MailAttribute:               "mail",
		PageSize:                    500,
		Timeout:                     Duration(10 * time.Second),
		FullSyncInterval:            Duration(24 * time.Hour),
		Safety:                      Safety{MaxDeletes: 500, MaxDeletePercent: 10},
	}
	if !reflect.DeepEqual(cfg.Connectors[0], wantCorp) {
		t.Errorf("openldap connector = %+v\nwant %+v", cfg.Connectors[0], wantCorp)
	}
	ad := cfg.Connectors[1]
	if ad.UserFilter != "(&(objectCategory=person)(objectClass=user))" || ad.GroupFilter != "(objectClass=group)" ||
		!reflect.DeepEqual(ad.AliasAttributes, []string{"proxyAddresses"}) {
		t.Errorf("ad defaults: %+v", ad)
	}
	notes := cfg.Connectors[2]
	if notes.UserFilter != "(objectClass=dominoPerson)" || notes.GroupFilter != "(objectClass=dominoGroup)" ||
		notes.Port != 389 || notes.TLSMode != "" || notes.AliasAttributes != nil {
		t.Errorf("domino defaults: %+v", notes)
	}
	if st := cfg.Connectors[3]; st.Port != 389 || st.URLs()[0] != "ldap://ldap.example.com:389" {
		t.Errorf("starttls connector: port %d, URLs %v", st.Port, st.URLs())
	}
}

func TestExplicitValuesOverrideDefaults(t *testing.T) {
	cfg := mustParse(t, `
ldap:
  tls: {cert_file: testdata/cert.pem, key_file: testdata/key.pem}
  starttls: false
`+minimal+`
    acknowledge_disabled_accounts: false
    alias_attributes: []
    safety: {max_deletes: 0, max_delete_percent: 0}
  - name: ad
    type: ad
    host: dc.example.com
    root_dn: dc=example,dc=com
    alias_attributes: []
`)
	if cfg.LDAP.StartTLS {
		t.Error("explicit starttls: false was overridden")
	}
	c := cfg.Connectors[0]
	if c.AcknowledgeDisabledAccounts || c.Safety != (Safety{}) {
		t.Errorf("explicit false/0 overridden: %+v", c)
	}
	if len(cfg.Connectors[1].AliasAttributes) != 0 {
		t.Errorf("explicit empty alias_attributes overridden: %q", cfg.Connectors[1].AliasAttributes)
	}

	cfg = mustParse(t, "ldap:\n  tls: {cert_file: testdata/cert.pem, key_file: testdata/key.pem}\n"+minimal)
	if !cfg.LDAP.StartTLS {
		t.Error("starttls does not default to true with tls")
	}
}

func TestMergeKeys(t *testing.T) {
	cfg := mustParse(t, `
x-common: &common
  type: openldap
  root_dn: dc=example,dc=com
  port: 10636
connectors:
  - <<: *common
    name: a
    host: a.example.com
  - <<: *common
    name: b
    host: b.example.com
    port: 20636
`)
	if a, b := cfg.Connectors[0], cfg.Connectors[1]; a.Port != 10636 || b.Port != 20636 || b.Type != TypeOpenLDAP {
		t.Errorf("merge: a=%+v b=%+v", a, b)
	}
}

func TestSecretFromEnv(t *testing.T) {
	t.Setenv("DIRGATE_TEST_PW", "s3cret")
	cfg := mustParse(t, minimal+`
    bind_dn: cn=dirgate,dc=example,dc=com
    bind_password_env: DIRGATE_TEST_PW
`)
	if got := cfg.Connectors[0].BindPassword.Reveal(); got != "s3cret" {
		t.Errorf("BindPassword = %q", got)
	}
}

func TestSecretEnvMissing(t *testing.T) {
	for _, val := range []string{"", "unset"} {
		if val == "" {
			t.Setenv("DIRGATE_TEST_PW", "")
		} else {
			os.Unsetenv("DIRGATE_TEST_PW")
		}
		msg := parseErr(t, minimal+`
    bind_dn: cn=dirgate,dc=example,dc=com
    bind_password_env: DIRGATE_TEST_PW
`)
		want := "test.yaml:9: connectors[0].bind_password_env: environment variable DIRGATE_TEST_PW is not set or is empty; export it before starting dirgate"
		if msg != want {
			t.Errorf("got  %s\nwant %s", msg, want)
		}
	}
}

func TestSecretFromFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw.txt"), []byte("file s3cret\r\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := minimal + `
    bind_dn: cn=dirgate,dc=example,dc=com
    bind_password_file: pw.txt
`
	path := filepath.Join(dir, "dirgate.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Connectors[0]
	if got := c.BindPassword.Reveal(); got != "file s3cret" {
		t.Errorf("BindPassword = %q", got)
	}
	if c.BindPasswordFile != filepath.Join(dir, "pw.txt") {
		t.Errorf("BindPasswordFile = %q, want it resolved against the config directory", c.BindPasswordFile)
	}

	if err := os.Chmod(filepath.Join(dir, "pw.txt"), 0); err != nil {
		t.Fatal(err)
	}
	if f, err := os.Open(filepath.Join(dir, "pw.txt")); err == nil {
		f.Close()
		t.Skip("running as a user who can read mode-0 files")
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "bind_password_file: cannot read") ||
		strings.Contains(err.Error(), "s3cret") {
		t.Errorf("unreadable file: %v", err)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	const pw = "hunter2-do-not-print"
	s := Secret(pw)
	c := Connector{Name: "corp", BindPassword: s}
	cfg := &Config{Connectors: []Connector{c}}

	var out []string
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s"} {
		out = append(out, fmt.Sprintf(format, s), fmt.Sprintf(format, c), fmt.Sprintf(format, cfg), fmt.Sprintf(format, &c))
	}
	out = append(out, fmt.Sprint(s), fmt.Sprintln(c))

	var logBuf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logBuf, nil))
	log.Info("loaded", "password", s, "connector", c, "config", cfg)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("loaded", "password", s, slog.Any("connector", c))
	out = append(out, logBuf.String())

	for _, v := range []any{s, c, cfg} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(j))
	}
	txt, _ := s.MarshalText()
	out = append(out, string(txt))

	for _, o := range out {
		if strings.Contains(o, pw) {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if !strings.Contains(logBuf.String(), `"password":"[redacted]"`) {
		t.Errorf("slog JSON does not show [redacted]: %s", logBuf.String())
	}
	if j, _ := json.Marshal(c); !strings.Contains(string(j), `"BindPassword":"[redacted]"`) {
		t.Errorf("json.Marshal: %s", j)
	}
	if s.Reveal() != pw {
		t.Error("Reveal does not return the secret")
	}
}

func TestEmailDomains(t *testing.T) {
	list := mustParse(t, minimal+"    email_domains: [Example.COM, example.org, example.com.]\n")
	csv := mustParse(t, minimal+"    email_domains: \" Example.COM ,example.org,, example.com\"\n")
	block := mustParse(t, minimal+"    email_domains:\n      - Example.COM\n      - example.org\n")
	want := []string{"example.com", "example.org"}
	for name, cfg := range map[string]*Config{"list": list, "csv": csv, "block": block} {
		if got := cfg.Connectors[0].EmailDomains; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: EmailDomains = %q, want %q", name, got, want)
		}
	}
	if got := mustParse(t, minimal+"    email_domains: \"\"\n").Connectors[0].EmailDomains; got != nil {
		t.Errorf("empty string: EmailDomains = %q, want nil (all domains)", got)
	}
	msg := parseErr(t, minimal+"    email_domains: example.com, not_a domain\n")
	if want := `test.yaml:7: connectors[0].email_domains[1]: "not_a domain" is not a domain name such as example.com`; msg != want {
		t.Errorf("got  %s\nwant %s", msg, want)
	}
}

func TestDurations(t *testing.T) {
	cfg := mustParse(t, minimal+"    timeout: 1m30s\n")
	if got := cfg.Connectors[0].Timeout.Std(); got != 90*time.Second {
		t.Errorf("Timeout = %v", got)
	}
	msg := parseErr(t, minimal+"    timeout: 30\n")
	if want := `test.yaml:7: connectors[0].timeout: 30 has no unit; write it with one, e.g. "30s" for seconds or "30m" for minutes`; msg != want {
		t.Errorf("got  %s\nwant %s", msg, want)
	}
	if j, _ := json.Marshal(cfg.Connectors[0].Timeout); string(j) != `"1m30s"` {
		t.Errorf("json = %s", j)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"name", "host", "port", "encryption", "bind_password_env", "bind_password_file"}
	for key, want := range map[string]string{
		"prot":             "port",
		"Port":             "port",
		"encrpytion":       "encryption",
		"bind_passwrd_env": "bind_password_env",
		"hostname":         "",
		"favourite_colour": "",
		"x":                "",
	} {
		if got := suggest(key, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
	msg := parseErr(t, minimal+"    prot: 636\n")
	if want := `test.yaml:7: connectors[0].prot: unknown key (did you mean "port"?)`; msg != want {
		t.Errorf("got  %s\nwant %s", msg, want)
	}
}

func TestDuplicateNames(t *testing.T) {
	msg := parseErr(t, minimal+`
  - name: corp
    type: ad
    host: dc.example.com
    root_dn: dc=example,dc=com
`)
	if want := `test.yaml:8: connectors[1].name: "corp" is already used by connectors[0]; connector names must be unique`; msg != want {
		t.Errorf("got  %s\nwant %s", msg, want)
	}
}

func TestParseDN(t *testing.T) {
	for dn, valid := range map[string]bool{
		`cn=a\,b,dc=example,dc=com`:  true,
		`cn=a\;b,dc=example,dc=com`:  true,
		`cn=Smith\2C John,dc=x`:      true,
		`CN=Users, DC=example`:       true,
		`cn=a+uid=b,dc=example`:      true,
		`2.5.4.3=x,dc=example`:       true,
		`cn=foo;bar`:                 false,
		`cn=foo;dc=bar`:              false,
		`foo`:                        false,
		`cn=`:                        false,
		`c n=x`:                      false,
		`cn=x,,dc=y`:                 false,
		`cn=a"b`:                     false,
		`   `:                        false,
		`cn=trailing\`:               false,
		`cn=é,dc=example,dc=com`:     true,
		`uid=jdoe,ou=people,dc=corp`: true,
	} {
		_, err := parseDN(dn)
		if (err == nil) != valid {
			t.Errorf("parseDN(%q) error = %v, want valid=%v", dn, err, valid)
		}
	}
}

func TestCheckHost(t *testing.T) {
	for host, valid := range map[string]bool{
		"ldap.example.com":  true,
		"ldap":              true,
		"dc_1.corp.local":   true,
		"192.0.2.1":         true,
		"2001:db8::1":       true,
		"ldap.example.com.": true,
		"[2001:db8::1]":     false,
		"fe80::1%eth0":      false,
		"ldap://x":          false,
		"x:389":             false,
		"10.0.0.256":        false,
		"-bad.example.com":  false,
		"has space":         false,
		"":                  false,
	} {
		if err := checkHost(host); (err == nil) != valid {
			t.Errorf("checkHost(%q) = %v, want valid=%v", host, err, valid)
		}
	}
}

func TestProblemFormat(t *testing.T) {
	e := &Error{Problems: []Problem{
		{File: "a.yaml", Line: 3, Path: "connectors[0].port", Message: "bad"},
		{File: "a.yaml", Line: 1, Message: "syntax"},
		{File: "a.yaml", Path: "x", Message: "no line"},
	}}
	want := "a.yaml:3: connectors[0].port: bad\na.yaml:1: syntax\na.yaml: x: no line"
	if e.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", e.Error(), want)
	}
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if got := (Log{Level: level}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%q) = %v", level, got)
		}
	}
}

func TestAuthExplicitValues(t *testing.T) {
	cfg := mustParse(t, minimal+`
auth:
  profiles:
    - {domains: "Example.COM, example.com., *", connector: corp}
  throttle: {account_failures: 3, address_failures: 1, window: 1h, lockout: 2m, base_delay: 0s}
  offline_verifier: {enabled: true, max_age: 24h}
  pool_size: 0
  bind_timeout: 2s
`)
	want := Auth{
		Profiles:        []AuthProfile{{Domains: []string{"example.com", "*"}, Connector: "corp"}},
		Throttle:        Throttle{AccountFailures: 3, AddressFailures: 1, Window: Duration(time.Hour), Lockout: Duration(2 * time.Minute)},
		OfflineVerifier: OfflineVerifier{Enabled: true, MaxAge: Duration(24 * time.Hour)},
		PoolSize:        0,
		BindTimeout:     Duration(2 * time.Second),
	}
	if !reflect.DeepEqual(cfg.Auth, want) {
		t.Errorf("Auth = %+v\nwant %+v", cfg.Auth, want)
	}
}

func TestOIDCDefaults(t *testing.T) {
	hash, err := passwd.Hash("rp-secret")
	if err != nil {
		t.Fatal(err)
	}
	cfg := mustParse(t, minimal+`
oidc:
  issuer: http://127.0.0.1:9000/sso
  clients:
    - id: rp
      secret_hash: "`+hash+`"
      redirect_uris: [http://localhost:3000/cb]
`)
	want := &OIDC{
		Issuer:          "http://127.0.0.1:9000/sso",
		Listen:          "127.0.0.1:8080",
		KeyRotation:     Duration(24 * time.Hour),
		IDTokenTTL:      Duration(time.Hour),
		AccessTokenTTL:  Duration(time.Hour),
		RefreshTokenTTL: Duration(720 * time.Hour),
		CodeTTL:         Duration(time.Minute),
		Clients:         []OIDCClient{{ID: "rp", Name: "rp", SecretHash: hash, RedirectURIs: []string{"http://localhost:3000/cb"}}},
	}
	if !reflect.DeepEqual(cfg.OIDC, want) {
		t.Errorf("OIDC = %+v\nwant %+v", cfg.OIDC, want)
	}
	c := cfg.OIDC.Clients[0]
	if !c.VerifySecret("rp-secret") || c.VerifySecret("rp-secret ") || c.VerifySecret("") {
		t.Error("VerifySecret round trip failed")
	}
	if (OIDCClient{Public: true, SecretHash: hash}).VerifySecret("rp-secret") {
		t.Error("a public client verified a secret")
	}
	if cfg := mustParse(t, minimal+"oidc:\n"); cfg.OIDC != nil {
		t.Errorf("an empty oidc key made a provider: %+v", cfg.OIDC)
	}
	msg := parseErr(t, minimal+"oidc:\n  clients:\n    - id: rp\n      public: true\n      secret: hunter2\n      redirect_uris: [https://rp.example.com/cb]\n")
	if strings.Contains(msg, "hunter2") || !strings.Contains(msg, "oidc.clients[0].secret: plaintext client secrets are not allowed") {
		t.Errorf("inline secret: %s", msg)
	}
}

func TestIssuer(t *testing.T) {
	for issuer, wantErr := range map[string]string{
		"https://login.example.com":         "",
		"https://example.com/sso/":          "",
		"http://127.0.0.1:8080":             "",
		"http://127.1.2.3":                  "",
		"http://[::1]:8080/x":               "",
		"http://localhost:8080":             "",
		"http://LOCALHOST":                  "",
		"http://login.example.com":          "uses http on login.example.com, which is not a loopback host",
		"http://10.0.0.1":                   "not a loopback host",
		"http://[::ffff:192.0.2.1]":         "not a loopback host",
		"http://localhost.example.com":      "not a loopback host",
		"https://login.example.com?tenant=": "has a query",
		"https://login.example.com?":        "has a query",
		"https://login.example.com#top":     "has a fragment",
		"https://user:pw@login.example.com": "contains a user name or password",
		"login.example.com":                 "is not an absolute URL",
		"/sso":                              "is not an absolute URL",
		"ftp://login.example.com":           "is not an https URL",
		"https://":                          "is not an absolute URL",
	} {
		cfg := minimal + "oidc:\n  issuer: \"" + issuer + "\"\n  clients: [{id: rp, public: true, redirect_uris: [\"https://rp.example.com/cb\"]}]\n"
		_, err := Parse("test.yaml", []byte(cfg))
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("issuer %q refused: %v", issuer, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), "oidc.issuer: ") || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("issuer %q: %v, want an error containing %q", issuer, err, wantErr)
		}
	}
}

func TestRedirectURIs(t *testing.T) {
	tests := []struct {
		uri     string
		public  bool
		wantErr string
	}{
		{"https://app.example.com/cb", false, ""},
		{"https://app.example.com/cb?x=1", false, ""},
		{"http://127.0.0.1:8765/cb", false, ""},
		{"http://[::1]/cb", true, ""},
		{"http://localhost/cb", true, ""},
		{"com.example.app:/callback", true, ""},
		{"com.example.app:/callback", false, "private-use schemes are for public clients"},
		{"myapp:/callback", true, "scheme \"myapp\" is not allowed"},
		{"javascript:alert(1)", true, "is not allowed"},
		{"https://app.example.com/cb#frag", false, "has a fragment"},
		{"https://app.example.com/cb#", false, "has a fragment"},
		{"http://app.example.com/cb", false, "not a loopback host"},
		{"/cb", false, "is not an absolute URL"},
		{"https:///cb", false, "has no host"},
		{"https://u:p@app.example.com/cb", false, "user name or password"},
	}
	for _, tt := range tests {
		err := checkRedirectURI(tt.uri, tt.public)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q (public %v) refused: %v", tt.uri, tt.public, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q (public %v): %v, want an error containing %q", tt.uri, tt.public, err, tt.wantErr)
		}
	}
}

func TestVerifyDelegates(t *testing.T) {
	// Service accounts and OIDC clients check through passwd, so they cannot
	// disagree about what a hash means.
	h, err := passwd.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	sa := ServiceAccount{PasswordHash: h}
	cl := OIDCClient{SecretHash: h}
	for _, pw := range []string{"correct horse", "correct horsE", ""} {
		want := pw == "correct horse"
		if sa.Verify(pw) != want || cl.VerifySecret(pw) != want {
			t.Errorf("%q: service account %v, client %v, want %v", pw, sa.Verify(pw), cl.VerifySecret(pw), want)
		}
	}
	if (OIDCClient{SecretHash: h, Public: true}).VerifySecret("correct horse") {
		t.Error("a public client verified a secret")
	}
}
