package dirtype

// Google is the `type` of a Google Workspace connector.
const Google = "google"

// GoogleTestSteps are the Test Connection steps of a Google Workspace
// connector, in the order they run (testconn names its steps alike):
// the token endpoint answers, domain-wide delegation is granted for the
// scopes dirgate asks, a sample page of users reads, groups read, and
// Google Secure LDAP checks passwords when configured.
var GoogleTestSteps = []string{"token_endpoint", "delegation", "sample", "groups", "password_check"}

// GoogleType is Google Workspace, read through the Admin SDK Directory
// API by full enumeration (it has no delta API). Its entries keep the
// Directory API's attribute names.
var GoogleType = Type{
	Name:        Google,
	DisplayName: "Google Workspace",
	Protocol:    ProtocolCloud,
	Mapping: Mapping{
		StableID: "id",
		// primaryEmail, aliases and nonEditableAliases are read for
		// addresses by the source itself, so no alias default here.
		Members: []string{"member"},
	},
	// The Directory API has no password-change time; the user's etag
	// changes with every change to the account, a password change
	// included, so a stored verifier is retired at worst too often.
	PasswordStamp: []string{"etag"},
	Disabled: func(attr func(string) string) bool {
		return attr("suspended") == "TRUE" || attr("archived") == "TRUE"
	},
	DisabledBy:     "suspended or archived is true",
	Incremental:    false, // full enumeration; etags spare unchanged groups' member lists
	TestSteps:      GoogleTestSteps,
	Sections:       []string{"google"},
	UpstreamSignIn: true,
}
