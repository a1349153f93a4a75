package dirtype

// Entra is the `type` of a Microsoft Entra ID (Azure AD) connector.
const Entra = "entra"

// ProtocolCloud reads a cloud directory's HTTPS API with an OAuth client;
// the LDAP connection keys (host, port, encryption, bind_dn, filters) do
// not apply, and the type's own configuration section says how to reach
// and authenticate to the API.
const ProtocolCloud Protocol = "cloud"

// EntraTestSteps are the Test Connection steps of an Entra ID connector,
// in the order they run (testconn names its steps alike).
var EntraTestSteps = []string{"authority", "credentials", "permissions", "sample", "delta", "password_check"}

// EntraType is Microsoft Entra ID, read through Microsoft Graph's delta
// queries. Its entries keep Graph's attribute names.
var EntraType = Type{
	Name:        Entra,
	DisplayName: "Microsoft Entra ID",
	Protocol:    ProtocolCloud,
	Mapping: Mapping{
		StableID: "id",
		// proxyAddresses is read for addresses by the source itself
		// (SMTP: primary, smtp: aliases), so no alias default here.
		Members: []string{"member"},
	},
	// The user's lastPasswordChangeDateTime, read with User.Read.All.
	PasswordStamp: []string{"lastPasswordChangeDateTime"},
	Disabled:      func(attr func(string) string) bool { return attr("accountEnabled") == "FALSE" },
	DisabledBy:    "accountEnabled is false",
	Incremental:   true, // Graph delta queries
	// Entra keeps member references by object ID: a deleted user leaves
	// every group, although groups/delta does not always report it.
	MemberIntegrity: true,
	TestSteps:       EntraTestSteps,
	Sections:        []string{"entra"},
	UpstreamSignIn:  true,
}
