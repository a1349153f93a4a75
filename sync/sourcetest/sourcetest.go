// Package sourcetest is the contract every dirsync.Source must meet, as a
// test suite: Run drives the real sync engine and a real cache against an
// upstream the harness lets it change, and checks what the cache ends up
// holding. A source package runs it against its upstream (a real server in
// the integration tests, a fake where none can run) through a Harness.
//
// The contract: each object keeps its stable ID across resyncs and renames;
// additions, changes and deletions reach the cache in full and incremental
// runs, and so do renamed containers' entries; DNs with special characters and UTF-8 round-trip, member values
// included; a run killed before it commits loses nothing (the next run,
// in a new process, resumes from the last committed cursor); an empty or
// sharply shrunken upstream is blocked by the safety rules, and a blocked
// incremental run leaves its cursor where it was.
package sourcetest

import (
	"testing"

	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
)

// Capabilities tell the suite which parts of the contract a source claims.
type Capabilities struct {
	// Incremental: the source is a dirsync.IncrementalSource whose full
	// listings carry a cursor.
	Incremental bool
	// IncrementalDeletes: incremental runs report deletions.
	IncrementalDeletes bool
	// Rename: the upstream can rename an entry in place, keeping its ID.
	Rename bool
	// MemberIntegrity: the upstream keeps member references intact, as
	// Active Directory does: a group's member values follow a renamed
	// member to its new DN and lose a deleted one. Without it the values
	// keep the DN they were given (OpenLDAP without the refint overlay),
	// and name whatever entry holds it later.
	MemberIntegrity bool
	// MemberOf: the source stores the back-links in which its upstream
	// lists the groups an entry is a direct member of (Active Directory's
	// memberOf), and they must name exactly the groups that list the entry,
	// after incremental runs too.
	MemberOf bool
	// ContainerRename: the harness's scopes implement Containers.
	ContainerRename bool
	// KnownDefects skips the named subtests (the names Run gives them),
	// each with the reason: an open defect of the source, reported, so
	// that the rest of the contract keeps guarding it meanwhile.
	KnownDefects map[string]string
}

// Harness gives the suite an upstream.
type Harness interface {
	Capabilities() Capabilities
	// Scope prepares an empty part of the upstream (an OU of its own) for
	// one subtest; t.Cleanup removes it.
	Scope(t *testing.T) Scope
}

// Scope is a part of the upstream the suite may change at will. Names are
// common names as a person would type them (commas, plus signs, quotes,
// UTF-8...): the scope escapes them into DNs. Every method fails t on
// error.
type Scope interface {
	// Connector describes the scope as a connector. The suite runs the
	// engine with a copy, adjusting its name and safety limits.
	Connector(t *testing.T) *config.Connector
	// Source builds a source for c, as a fresh process would.
	Source(t *testing.T, c *config.Connector) dirsync.Source
	// AddUser adds a user with a login address and returns its DN.
	AddUser(t *testing.T, name, mail string) string
	// AddGroup adds a group with the given member DNs (at least one) and
	// returns its DN.
	AddGroup(t *testing.T, name string, members ...string) string
	// SetMail replaces a user's address.
	SetMail(t *testing.T, dn, mail string)
	// Rename gives the entry dn a new common name in the same container,
	// keeping its ID, and returns the new DN. Only called when the harness
	// declares Rename.
	Rename(t *testing.T, dn, name string) string
	// Delete removes the entry dn.
	Delete(t *testing.T, dn string)
}

// Containers is implemented by a Scope whose upstream can hold entries in
// containers (OUs) and rename a container with everything in it.
type Containers interface {
	// AddContainer adds an empty container named name at the scope's root
	// and returns its DN, and a Scope that adds its users and groups in
	// it, each with a DN that is a relative name, a comma and the
	// container's DN as returned (the connector stays the scope's).
	AddContainer(t *testing.T, name string) (string, Scope)
	// RenameContainer gives the container dn a new name in the same
	// parent, with everything in it, and returns its new DN.
	RenameContainer(t *testing.T, dn, name string) string
}

// SpecialNames are common names with every character RFC 4514 escapes
// somewhere in the value, and UTF-8. Harnesses whose upstream restricts
// names may check theirs against this list.
var SpecialNames = []string{
	`Doe, John`,
	`R&D/Ops + Sales`,
	`#hash "quoted" <x> ; a=b\`,
	`Jürgen Müller-Ωμέγα`,
}
