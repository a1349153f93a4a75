package dirtype

import (
	"strconv"
	"strings"
)

// Names of the LDAP directory types, as written in a connector's `type`.
const (
	OpenLDAP        = "openldap"
	ActiveDirectory = "ad"
	Domino          = "domino"
)

// ldapTestSteps are the Test Connection steps of an LDAP directory (tls
// and starttls are alternatives: the connector's tls_mode picks one).
var ldapTestSteps = []string{"dns", "tcp", "tls", "starttls", "bind", "root_dn", "search", "paging"}

// OpenLDAPType is OpenLDAP and other directories that follow the usual
// LDAP schemas (inetOrgPerson, groupOfNames, the password policy overlay).
var OpenLDAPType = Type{
	Name:           OpenLDAP,
	DisplayName:    "OpenLDAP",
	Protocol:       ProtocolLDAP,
	UserFilter:     "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))",
	GroupFilter:    "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))",
	RootDNRequired: true,
	Mapping:        Mapping{StableID: "entryUUID", Members: []string{"member", "uniqueMember"}},
	PasswordStamp:  []string{"pwdChangedTime", "modifyTimestamp"},
	// ppolicy's pwdAccountLockedTime locks the account: "000001010000Z"
	// permanently (an admin lock), any other time until pwdLockoutDuration.
	Disabled:    func(attr func(string) string) bool { return attr("pwdAccountLockedTime") != "" },
	DisabledBy:  "pwdAccountLockedTime is set (password policy lock)",
	Incremental: true, // syncrepl (RFC 4533)
	// No MemberIntegrity: the refint overlay that keeps member values
	// intact is optional, and where it runs it modifies the groups, whose
	// new entryCSN makes syncrepl send them anyway.
	TestSteps: ldapTestSteps,
}

// uacAccountDisable is the ACCOUNTDISABLE bit of userAccountControl.
const uacAccountDisable = 0x2

// ActiveDirectoryType is Microsoft Active Directory (and Samba AD) over LDAP.
var ActiveDirectoryType = Type{
	Name:           ActiveDirectory,
	DisplayName:    "Active Directory",
	Protocol:       ProtocolLDAP,
	UserFilter:     "(&(objectCategory=person)(objectClass=user))",
	GroupFilter:    "(objectClass=group)",
	RootDNRequired: true,
	Mapping:        Mapping{StableID: "objectGUID", Members: []string{"member"}, MemberOf: []string{"memberOf"}, Aliases: []string{"proxyAddresses"}},
	PasswordStamp:  []string{"pwdLastSet"},
	Disabled: func(attr func(string) string) bool {
		uac, err := strconv.ParseInt(attr("userAccountControl"), 10, 64)
		return err == nil && uac&uacAccountDisable != 0
	},
	DisabledBy:        "userAccountControl has the ACCOUNTDISABLE bit (0x2)",
	DecodeBindFailure: decodeADBind,
	Incremental:       true, // DirSync, or uSNChanged polling
	// member is a linked attribute: its values follow the object they
	// name, and a deleted object leaves every group.
	MemberIntegrity: true,
	TestSteps:       ldapTestSteps,
}

// DominoType is HCL Domino's directory over LDAP.
var DominoType = Type{
	Name:          Domino,
	DisplayName:   "HCL Domino",
	Protocol:      ProtocolLDAP,
	UserFilter:    "(objectClass=dominoPerson)",
	GroupFilter:   "(objectClass=dominoGroup)",
	Mapping:       Mapping{StableID: "dominoUNID", Members: []string{"member"}, Addresses: []string{"internetAddress"}},
	PasswordStamp: []string{"HTTPPasswordChangeDate", "modifyTimestamp"},
	Disabled:      func(func(string) string) bool { return false },
	DisabledBy:    "Domino has no disabled flag: members of the connector's deny groups count as disabled",
	// No MemberIntegrity: the administration process renames and removes
	// people in group documents later, as ordinary changes of the groups;
	// the source syncs in full only anyway.
	TestSteps: ldapTestSteps,
	Sections:  []string{"domino"},
}

// adBind words AD's "data XXX" sub-codes of invalidCredentials (49): the
// Win32 error behind the refusal, and whether AD reports it only after
// checking the password.
var adBind = map[string]BindFailure{
	"52e": {Condition: InvalidCredentials, What: "wrong password",
		Fix: "check the password in {password}; if it holds special characters ($ \\ \" ' ` and spaces are " +
			"common victims), make sure the shell or service manager passed it unchanged and that no quotes or trailing newline were added"},
	"525": {Condition: UnknownUser, What: "no such user",
		Fix: "bind_dn names no account: check bind_dn (AD also accepts user@domain or DOMAIN\\user); {dn-escaping}"},
	"530": {Condition: Restricted, PasswordVerified: true, What: "not permitted to log on at this time",
		Fix: "remove the logon-hours restriction of the service account"},
	"531": {Condition: Restricted, PasswordVerified: true, What: "not permitted to log on from this workstation",
		Fix: "allow the service account to log on from this machine (Log On To...)"},
	"532": {Condition: PasswordExpired, PasswordVerified: true, What: "password expired",
		Fix: "set a new password for the service account (and consider \"Password never expires\" for it); then update {password}"},
	"533": {Condition: Disabled, PasswordVerified: true, What: "account disabled",
		Fix: "enable the service account in Active Directory"},
	"701": {Condition: AccountExpired, PasswordVerified: true, What: "account expired",
		Fix: "extend or remove the expiry date of the service account"},
	"773": {Condition: MustChangePassword, PasswordVerified: true, What: "user must change password",
		Fix: "set a new password for the service account and clear \"User must change password at next logon\"; then update {password}"},
	"775": {Condition: Locked, What: "account locked",
		Fix: "unlock the service account; it was locked after too many wrong passwords: look for a system still using an old password"},
}

// decodeADBind reads the sub-code of an AD bind error text such as
// "80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error,
// data 52e, v4563". A code dirgate does not know is still AD's wording: it
// is returned with its label and no condition.
func decodeADBind(diagnostic string) (BindFailure, bool) {
	i := strings.Index(diagnostic, "data ")
	if i < 0 {
		return BindFailure{}, false
	}
	code := diagnostic[i+5:]
	if j := strings.IndexAny(code, ", "); j >= 0 {
		code = code[:j]
	}
	code = strings.ToLower(code)
	if code == "" {
		return BindFailure{}, false
	}
	f := adBind[code]
	f.Label = "AD error " + code
	return f, true
}
