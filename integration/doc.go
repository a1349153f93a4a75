// Package integration holds end-to-end tests against real upstream servers
// started by scripts/testenv/up.sh. The tests read the environment file that
// script writes (DIRGATE_TESTENV); without it they skip, unless
// DIRGATE_REQUIRE_UPSTREAMS=1 (as `make test` sets), where they fail.
package integration
