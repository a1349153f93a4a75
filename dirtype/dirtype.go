// Package dirtype is the registry of directory types: everything dirgate
// knows about a kind of upstream directory that more than one package needs
// (its display name, default filters and attribute mapping, which
// attributes change with a password, how a disabled account shows, how a
// failed bind is worded, whether it syncs incrementally, whether it keeps
// member references intact, which Test Connection steps apply, which
// type-specific configuration sections it accepts).
//
// It holds plain facts and functions of strings only, and imports nothing
// of dirgate, so that config (validation and defaults), authn, testconn,
// admin and the sync sources can all read it. It does not read directories:
// the code that does lives in the source packages under sync/, which the
// sources package maps from type names.
//
// The types are listed explicitly in registry.go, as Dex lists its
// connectors in one map, rather than registered from init functions: the
// table is then complete whatever a program imports, and its order (the
// order of error messages and listings) is written down in one place.
package dirtype

import "slices"

// Protocol is how dirgate reads a type's directory and checks passwords.
type Protocol string

// ProtocolLDAP reads over LDAP and checks passwords with an LDAP simple
// bind; the connector's host, port, encryption, bind_dn and filters apply.
const ProtocolLDAP Protocol = "ldap"

// Type is what dirgate knows about one kind of directory.
type Type struct {
	// Name is the connector's `type` value in the configuration file.
	Name string
	// DisplayName is the product's name for people (admin console).
	DisplayName string
	Protocol    Protocol

	// UserFilter and GroupFilter are the default user_filter and
	// group_filter (ProtocolLDAP).
	UserFilter, GroupFilter string
	// RootDNRequired makes root_dn a required key; a type whose objects
	// sit at the directory root (Domino's flat groups) leaves it optional.
	RootDNRequired bool
	// Mapping names the attributes that carry identity and membership.
	Mapping Mapping

	// PasswordStamp lists the attributes whose value changes when the
	// account's password changes, most precise first. A stored verifier of
	// a password (offline verifier, cached authentication) is valid only
	// while the first of them the entry holds keeps its value.
	PasswordStamp []string
	// Disabled reports whether an account is disabled, from its attribute
	// values (attr returns the first value of a name, or ""). A type that
	// has no such attribute returns false and says why in DisabledBy.
	Disabled func(attr func(name string) string) bool
	// DisabledBy says in words how a disabled account is recognised.
	DisabledBy string
	// DecodeBindFailure recognises the type's own wording of a refused
	// password check in the diagnostic text of the upstream's answer. ok
	// is false when the text is not in the type's format; nil when the
	// type has no such wording.
	DecodeBindFailure func(diagnostic string) (f BindFailure, ok bool)

	// Incremental is true when the type's source can read only what
	// changed since a cursor.
	Incremental bool
	// MemberIntegrity is true when the directory itself keeps member
	// references intact: renaming an entry rewrites the member values
	// naming it in every group, deleting it removes them. An incremental
	// sync of such a type rewrites the cached groups alike, since the
	// directory may not report the groups as changed (Active Directory
	// does not raise their uSNChanged). Without it a member value keeps
	// the DN it was given and names whatever entry holds that DN later.
	MemberIntegrity bool
	// TestSteps lists the Test Connection steps (testconn's step names)
	// that apply to the type, in the order they run.
	TestSteps []string
	// Sections are the type-specific configuration sections a connector of
	// this type accepts (e.g. "domino"); other types refuse them.
	Sections []string
	// UpstreamSignIn is true when the directory is also an OpenID provider
	// that dirgate's login page can send users to (auth.profiles[].sign_in).
	UpstreamSignIn bool
}

// Mapping names the attributes a type keeps identity and membership in.
type Mapping struct {
	// StableID is the immutable ID attribute that keys a cached object.
	StableID string
	// Members are the attributes that list a group's members.
	Members []string
	// MemberOf are the back-link attributes in which the directory itself
	// lists the groups an entry is a direct member of (AD's memberOf), as
	// the source stores them with the entry. With MemberIntegrity, an
	// incremental sync keeps them in step with the groups it changes.
	MemberOf []string
	// Addresses are always read as alias addresses, besides the
	// connector's mail and alias attributes.
	Addresses []string
	// Aliases is the default of alias_attributes.
	Aliases []string
}

// Condition is what a decoded bind failure says about the account.
type Condition int

// Conditions a directory reports about an account when it refuses a bind.
const (
	InvalidCredentials Condition = iota + 1
	UnknownUser
	Restricted // logon hours or workstation restrictions
	PasswordExpired
	Disabled
	AccountExpired
	MustChangePassword
	Locked
)

// BindFailure is a refused bind as the directory worded it.
type BindFailure struct {
	// Label names the failure in reports, e.g. "AD error 52e".
	Label string
	// Condition is 0 when the directory's code is not one dirgate knows.
	Condition Condition
	// PasswordVerified is true when the directory reports the condition
	// only after checking the password: the password was right.
	PasswordVerified bool
	// What says what happened and Fix what to do, for an administrator
	// testing a connector's service account. In Fix, {password} stands for
	// where the connector's password comes from and {dn-escaping} for the
	// rules of escaping a DN; both are "" when the code is not known.
	What, Fix string
}

// HasStep reports whether the Test Connection step applies to t.
func (t *Type) HasStep(step string) bool { return slices.Contains(t.TestSteps, step) }

// HasSection reports whether a connector of type t accepts the section.
func (t *Type) HasSection(section string) bool { return slices.Contains(t.Sections, section) }
