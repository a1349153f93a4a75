package entra

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// FailureClass is what a refusal of the Microsoft identity platform's
// token endpoint means for dirgate: a refused password (authn maps the
// classes to its Reasons) or a problem an administrator fixes.
type FailureClass int

// The failure classes. FailureUnknown is a code dirgate does not know and
// an OAuth error that says nothing more.
const (
	FailureUnknown FailureClass = iota
	FailureInvalidCredentials
	FailureUnknownUser
	FailureDisabled
	FailureLocked
	FailurePasswordExpired
	// FailureInteractionRequired: the user must do more than type a
	// password (MFA, MFA registration), which the password grant cannot.
	FailureInteractionRequired
	// FailureBlocked: Conditional Access, security defaults or a tenant
	// policy refuse the sign-in.
	FailureBlocked
	FailureConsentMissing
	FailureAppMisconfigured
	FailureTenantNotFound
	// FailureUnavailable: the service is down, throttling, or detected a
	// loop of identical requests (50196); try again later.
	FailureUnavailable
)

var classNames = map[FailureClass]string{
	FailureUnknown:             "unknown",
	FailureInvalidCredentials:  "invalid_credentials",
	FailureUnknownUser:         "unknown_user",
	FailureDisabled:            "account_disabled",
	FailureLocked:              "account_locked",
	FailurePasswordExpired:     "password_expired",
	FailureInteractionRequired: "interaction_required",
	FailureBlocked:             "blocked_by_policy",
	FailureConsentMissing:      "consent_missing",
	FailureAppMisconfigured:    "app_misconfigured",
	FailureTenantNotFound:      "tenant_not_found",
	FailureUnavailable:         "unavailable",
}

// String is the stable name used in logs.
func (c FailureClass) String() string {
	if s, ok := classNames[c]; ok {
		return s
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// code is what dirgate knows about one AADSTS code.
type code struct {
	class FailureClass
	// verified: Entra reports the code only after the password was
	// checked and found right (the refusal comes from a later stage:
	// expiry, MFA, Conditional Access, consent).
	verified  bool
	what, fix string
}

// Fixes shared by several codes.
const (
	fixSecret = "check the connector's client secret (client_secret_env or client_secret_file): it must be the secret's " +
		"Value (not its ID) of a secret of this app registration that has not expired; create a new one under " +
		"Certificates & secrets if needed, then run Test Connection"
	fixCert = "check certificate_file and private_key_file: the certificate must be uploaded to the app registration " +
		"(Certificates & secrets) and the key must be its private key; then run Test Connection"
	fixConsent = "an administrator of the tenant must grant admin consent to the app: use \"Connect Entra ID\" in the " +
		"console, or API permissions > Grant admin consent in the app registration; then run Test Connection"
	fixMFA = "the password grant cannot do MFA: exclude the account from the MFA requirement for this app (a Conditional " +
		"Access exclusion) or have the client sign in through dirgate's OIDC login (\"Sign in with Microsoft\"), " +
		"which Microsoft authenticates with MFA"
	fixPolicy = "Conditional Access, security defaults or a tenant policy block the password grant for this account: " +
		"check the user's sign-in log in the Entra admin center (the trace ID finds the attempt) and exclude the app " +
		"or the account from the policy, or use dirgate's OIDC login instead"
	fixExpired = "the user must set a new password at Microsoft (https://myaccount.microsoft.com, or an administrator " +
		"resets it), then bind again"
	fixAppID = "check client_id (the app registration's Application (client) ID) and tenant: the app must be registered " +
		"in, or consented to by, this tenant; then run Test Connection"
	fixUnavailable = "Microsoft's sign-in service refused for now (outage, throttling, or too many identical requests); " +
		"dirgate reports the account as unavailable; the next attempt after a pause normally works, check the connector's " +
		"status if it persists"
)

// codes holds the AADSTS codes dirgate decodes (Microsoft's error-code
// reference; cloud.md §1.6, §1.7). Any other code falls back to the OAuth
// error (classOfOAuth).
var codes = map[int]code{
	50126: {class: FailureInvalidCredentials, what: "invalid username or password"},
	50056: {class: FailureInvalidCredentials, what: "invalid or missing password"},
	50173: {class: FailureInvalidCredentials, what: "the grant was revoked (the password changed)"},
	50132: {class: FailureInvalidCredentials, what: "the session was revoked (the password changed)"},
	50034: {class: FailureUnknownUser, what: "the account does not exist in the tenant",
		fix: "the account is in dirgate's cache but not in the tenant: it was deleted or renamed since the last sync; " +
			"the next sync corrects the cache"},
	50057: {class: FailureDisabled, what: "the account is disabled in Entra ID",
		fix: "enable the account in the Entra admin center (Block sign in: No) if it should sign in"},
	50053: {class: FailureLocked, what: "the account is locked (Entra smart lockout, or sign-in from a blocked address)",
		fix: "wait for the lockout to end, or unlock the account in the Entra admin center; repeated wrong passwords " +
			"from one client usually cause it"},
	50055:   {class: FailurePasswordExpired, verified: true, what: "the password has expired", fix: fixExpired},
	50144:   {class: FailurePasswordExpired, verified: true, what: "the on-premises Active Directory password has expired", fix: fixExpired},
	50076:   {class: FailureInteractionRequired, verified: true, what: "multi-factor authentication is required", fix: fixMFA},
	50079:   {class: FailureInteractionRequired, verified: true, what: "the account must register for multi-factor authentication", fix: fixMFA},
	50074:   {class: FailureInteractionRequired, verified: true, what: "strong authentication is required", fix: fixMFA},
	50072:   {class: FailureInteractionRequired, verified: true, what: "the account must enrol in multi-factor authentication", fix: fixMFA},
	53003:   {class: FailureBlocked, verified: true, what: "blocked by Conditional Access", fix: fixPolicy},
	530035:  {class: FailureBlocked, verified: true, what: "blocked by security defaults (legacy or unsafe sign-in)", fix: fixPolicy},
	530032:  {class: FailureBlocked, verified: true, what: "blocked by a tenant security policy", fix: fixPolicy},
	65001:   {class: FailureConsentMissing, what: "the app has no consent for the requested permissions", fix: fixConsent},
	65004:   {class: FailureConsentMissing, what: "an administrator declined consent for the app", fix: "sign in as a Global or Privileged Role Administrator of the tenant and accept the permissions (\"Connect Entra ID\" again)"},
	7000215: {class: FailureAppMisconfigured, what: "the client secret is wrong", fix: fixSecret},
	7000222: {class: FailureAppMisconfigured, what: "the client secret has expired", fix: fixSecret},
	700016:  {class: FailureAppMisconfigured, what: "the app (client_id) is not found in the tenant", fix: fixAppID},
	7000218: {class: FailureAppMisconfigured, what: "the request needs a client secret or certificate: the app does not allow public client flows",
		fix: "configure a client secret or certificate on the connector, or enable \"Allow public client flows\" in the app " +
			"registration (Authentication) if the connector is meant to use none"},
	700025: {class: FailureAppMisconfigured, what: "the app is a public client and must not send a credential",
		fix: "disable \"Allow public client flows\" in the app registration (Authentication), so that the connector's " +
			"secret or certificate is used"},
	700027: {class: FailureAppMisconfigured, what: "the client assertion's signature did not validate", fix: fixCert},
	50012:  {class: FailureAppMisconfigured, what: "the client assertion (certificate) was refused", fix: fixCert},
	70011: {class: FailureAppMisconfigured, what: "the requested scope is not valid",
		fix: "this is a dirgate bug or a wrong authority_url: the scope dirgate sends is fixed; report it"},
	9001023: {class: FailureAppMisconfigured, what: "the tenant \"common\" or \"consumers\" cannot be used for this grant",
		fix: "set tenant to the tenant's ID (a GUID) or a verified domain, not common, organizations or consumers"},
	90002: {class: FailureTenantNotFound, what: "the tenant does not exist",
		fix: "check tenant (the Directory (tenant) ID or a verified domain of the tenant) and cloud (global or usgov): " +
			"a tenant of the US Government cloud is not found in the global cloud and the other way round"},
	50196: {class: FailureUnavailable, what: "loop detected: too many identical requests", fix: fixUnavailable},
}

// STSError is a refusal of the token endpoint, decoded from its error body.
// Decoders branch on Code (the first of error_codes) and on the OAuth
// error, never on the description's text, as Microsoft asks.
type STSError struct {
	// Status is the HTTP status of the answer.
	Status int
	// OAuthError is the body's "error" (e.g. "invalid_grant").
	OAuthError string
	// Code is the AADSTS code, e.g. 50126; 0 when the body has none.
	Code int
	// Description is the body's error_description, for the admin's log.
	Description string
	// TraceID and CorrelationID find the attempt in the tenant's
	// sign-in logs.
	TraceID, CorrelationID string

	Class FailureClass
	// PasswordVerified is true when the code is one Entra reports only
	// after checking the password and finding it right.
	PasswordVerified bool
	// What says what happened and Fix what an administrator can do, in
	// plain language. Fix is "" when there is nothing to fix (a wrong
	// password).
	What, Fix string
}

// Error is one line for logs: code, class, meaning and trace ID. It
// leaves out the description, which the log line does not need.
func (e *STSError) Error() string {
	var b strings.Builder
	b.WriteString("entra sign-in refused")
	if e.Code != 0 {
		fmt.Fprintf(&b, ": AADSTS%d", e.Code)
	}
	if e.OAuthError != "" {
		fmt.Fprintf(&b, " (%s)", e.OAuthError)
	}
	fmt.Fprintf(&b, ": %s", e.What)
	if e.TraceID != "" {
		fmt.Fprintf(&b, " [trace ID %s]", e.TraceID)
	}
	return b.String()
}

// Label names the failure in reports, e.g. "AADSTS50126" or
// "invalid_client".
func (e *STSError) Label() string {
	if e.Code != 0 {
		return "AADSTS" + strconv.Itoa(e.Code)
	}
	if e.OAuthError != "" {
		return e.OAuthError
	}
	return "HTTP " + strconv.Itoa(e.Status)
}

// stsBody is the token endpoint's error body (cloud.md §1.6).
type stsBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
}

// maxDescription bounds the description kept from a body.
const maxDescription = 1024

// DecodeSTSError decodes an error answer of the token endpoint (any
// status). A body that is not the documented JSON still gives an error,
// classed by its status.
func DecodeSTSError(status int, body []byte) *STSError {
	var b stsBody
	_ = json.Unmarshal(body, &b) // a garbled body is classed by its status
	return decodeSTS(status, b)
}

// DecodeAuthorizeError decodes an error Microsoft sent back to a redirect
// URI (the authorize and admin-consent endpoints put `error` and
// `error_description` in the query) like a token endpoint's 400.
func DecodeAuthorizeError(code, desc string) *STSError {
	return decodeSTS(400, stsBody{Error: code, ErrorDescription: desc})
}

func decodeSTS(status int, b stsBody) *STSError {
	e := &STSError{
		Status:        status,
		OAuthError:    b.Error,
		Description:   truncate(b.ErrorDescription, maxDescription),
		TraceID:       truncate(b.TraceID, 64),
		CorrelationID: truncate(b.CorrelationID, 64),
	}
	if len(b.ErrorCodes) > 0 {
		e.Code = b.ErrorCodes[0]
	} else {
		e.Code = codeInDescription(b.ErrorDescription)
	}
	if c, ok := codes[e.Code]; ok {
		e.Class, e.PasswordVerified, e.What, e.Fix = c.class, c.verified, c.what, c.fix
		return e
	}
	e.Class = classOf(status, b.Error)
	e.What = fallbackWhat(e)
	e.Fix = fallbackFixes[e.Class]
	return e
}

// codeInDescription extracts nnnnn from a description starting
// "AADSTSnnnnn:", for bodies without error_codes; 0 when there is none.
func codeInDescription(desc string) int {
	rest, ok := strings.CutPrefix(strings.TrimSpace(desc), "AADSTS")
	if !ok {
		return 0
	}
	end := 0
	for end < len(rest) && end < 9 && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil {
		return 0
	}
	return n
}

// classOf classes an answer whose code dirgate does not know, by the
// OAuth error (RFC 6749 5.2, OpenID Connect 3.1.2.6) and the status.
func classOf(status int, oauthErr string) FailureClass {
	switch oauthErr {
	case "invalid_grant":
		return FailureInvalidCredentials
	case "interaction_required", "login_required":
		return FailureInteractionRequired
	case "consent_required":
		return FailureConsentMissing
	case "invalid_client", "unauthorized_client", "invalid_request", "invalid_scope", "unsupported_grant_type":
		return FailureAppMisconfigured
	case "temporarily_unavailable", "server_error":
		return FailureUnavailable
	}
	if status == http.StatusTooManyRequests || status >= 500 {
		return FailureUnavailable
	}
	return FailureUnknown
}

func fallbackWhat(e *STSError) string {
	switch {
	case e.Code != 0 && e.OAuthError != "":
		return fmt.Sprintf("Microsoft answered %s with code AADSTS%d, which dirgate does not know", e.OAuthError, e.Code)
	case e.OAuthError != "":
		return "Microsoft answered " + e.OAuthError
	case e.Code != 0:
		return fmt.Sprintf("Microsoft answered code AADSTS%d, which dirgate does not know", e.Code)
	}
	return fmt.Sprintf("the token endpoint answered HTTP %d without a readable error", e.Status)
}

var fallbackFixes = map[FailureClass]string{
	FailureInteractionRequired: fixMFA,
	FailureConsentMissing:      fixConsent,
	FailureAppMisconfigured:    "check tenant, client_id and the connector's secret or certificate against the app registration; then run Test Connection",
	FailureUnavailable:         fixUnavailable,
	FailureUnknown: "look the code up on Microsoft's error page (https://login.microsoftonline.com/error) and check the " +
		"sign-in log in the Entra admin center with the trace ID",
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
