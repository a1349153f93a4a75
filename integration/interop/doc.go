// Package interop drives a real dirgate (the built binary, on loopback
// ports) with real client programs instead of the Go client: the OpenLDAP
// command-line tools, Python's ldap3, HAProxy's ldap-check and Node's
// openid-client, and compares their answers with those of the upstream
// servers dirgate sits in front of.
//
// The tests carry the build tag "interop" and run with `make test-interop`
// (and so `make test`) against the environment of scripts/testenv/up.sh;
// `scripts/testenv/install.sh interop` installs the clients. Without the
// environment they skip; with DIRGATE_REQUIRE_UPSTREAMS=1 a missing
// environment or client fails them.
package interop
