package config

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dirgate/dirgate/schedule"
)

// Schedule sets when connectors sync by default.
type Schedule struct {
	// TimeZone is the IANA zone of the default sync times (08:00, 13:00
	// and 23:00) and of connectors' cron expressions. Default UTC.
	TimeZone string `yaml:"time_zone"`
}

// Admin configures the admin HTTP API, the web console, /metrics,
// /healthz and /readyz. Nil (the key left out) serves none of them.
type Admin struct {
	// Listen is the admin listener's address. Default 127.0.0.1:8081.
	Listen string `yaml:"listen"`
	// TLS serves the admin listener over HTTPS.
	TLS *TLSFiles `yaml:"tls"`
	// TokenEnv or TokenFile give the bearer token the API and the console
	// require (one of them is required). /metrics, /healthz and /readyz
	// are open.
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`
	// Token is the resolved secret.
	Token Secret `yaml:"-"`
	// MaxCacheAge makes /readyz fail when a connector's last successful
	// sync is older than this. Default 26h (a day plus margin).
	MaxCacheAge Duration `yaml:"max_cache_age"`
	// PublicURL is the console's address as administrators' browsers
	// reach it (behind a reverse proxy, the proxy's). It names the
	// redirect URIs registered with upstreams, such as Entra ID's admin
	// consent; without it they are built from each request's Host.
	PublicURL string `yaml:"public_url"`
}

func (v *validator) operations(c *Config) {
	zone := c.Schedule.TimeZone
	if _, err := schedule.New(zone, nil); err != nil {
		v.errorf("schedule.time_zone", "%v; use an IANA name such as Europe/Berlin or America/New_York", err)
		zone = "UTC" // report cron errors on their own
	}
	for i := range c.Connectors {
		conn := &c.Connectors[i]
		p := fmt.Sprintf("connectors[%d]", i)
		if _, err := schedule.New(zone, conn.Schedule); err != nil && len(conn.Schedule) > 0 {
			v.errorf(p+".schedule", "%v; use 5-field cron expressions such as \"0 8 * * 1-5\"", err)
		}
		if v.has(p+".incremental_interval") && conn.IncrementalInterval.Std() < time.Minute && conn.IncrementalInterval != 0 {
			v.errorf(p+".incremental_interval", "must be 0 (off) or at least 1m, got %s", conn.IncrementalInterval)
		}
	}
	if c.Admin == nil {
		return
	}
	a := c.Admin
	const p = "admin"
	if !v.has(p + ".listen") {
		a.Listen = "127.0.0.1:8081"
	}
	v.listenAddr(p+".listen", a.Listen, "8081")
	if a.TLS != nil {
		v.tlsFiles(a.TLS, p+".tls")
	}
	v.positiveDuration(p+".max_cache_age", &a.MaxCacheAge, 26*time.Hour)
	a.PublicURL = v.apiURL(p+".public_url", a.PublicURL, "")
	switch {
	case a.TokenEnv != "" && a.TokenFile != "":
		v.errorf(p+".token_file", "token_env is set too; keep only one of them")
	case a.TokenEnv == "" && a.TokenFile == "":
		v.errorf(p, "needs an API token; set token_env to the name of an environment variable holding it, or token_file to a file containing it")
	case a.TokenEnv != "":
		if !envName.MatchString(a.TokenEnv) {
			v.errorf(p+".token_env", "is not an environment variable name; give the variable's name, not the token")
			return
		}
		a.Token = Secret(os.Getenv(a.TokenEnv))
		if a.Token == "" {
			v.errorf(p+".token_env", "environment variable %s is not set or is empty; export it before starting dirgate", a.TokenEnv)
		}
	default:
		a.TokenFile = v.resolvePath(a.TokenFile)
		b, err := os.ReadFile(a.TokenFile)
		if err != nil {
			v.errorf(p+".token_file", "cannot read: %v", err)
			return
		}
		a.Token = Secret(strings.TrimRight(string(b), "\r\n"))
	}
	if a.Token != "" && len(a.Token) < 16 {
		v.errorf(p, "the API token is shorter than 16 characters; use a long random value (e.g. openssl rand -hex 32)")
	}
}
