package entra

import (
	"errors"
	"fmt"
	"strings"

	// The v1 API of the JSON v2 experiment: encoding/json's behaviour
	// (case-insensitive names, invalid UTF-8 replaced, the last of
	// duplicate names), decoded in one pass at over twice the speed. A
	// full sync decodes every user of the tenant.
	json "github.com/go-json-experiment/json/v1"
)

// The properties dirgate asks Graph to track. $select goes on the first
// request of a round only; a change to a property not listed here would
// not be reported, so every mapped property is listed.
const (
	userSelect  = "id,userPrincipalName,mail,proxyAddresses,otherMails,accountEnabled,displayName,givenName,surname,userType,mailNickname,onPremisesSyncEnabled,onPremisesImmutableId,lastPasswordChangeDateTime"
	groupSelect = "id,displayName,description,mail,mailEnabled,securityEnabled,groupTypes,proxyAddresses,onPremisesSyncEnabled,members"
)

// DeltaQueries returns the first requests of a full round against the
// Graph base graphURL: users, then groups. The benchmark's reference
// reader pages through the same rounds.
func DeltaQueries(graphURL string) (users, groups string) {
	return graphURL + "/v1.0/users/delta?$select=" + userSelect, graphURL + "/v1.0/groups/delta?$select=" + groupSelect
}

// page is one page of a users or groups delta round.
type page struct {
	NextLink  string   `json:"@odata.nextLink"`
	DeltaLink string   `json:"@odata.deltaLink"`
	Value     []object `json:"value"`
}

// removal is Graph's @removed annotation: "changed" for an object moved
// to the recycle bin (or out of scope), "deleted" for one deleted for good.
type removal struct {
	Reason string `json:"reason"`
}

// removedDeleted is the removal reason of an object deleted for good.
const removedDeleted = "deleted"

// object is a user or a group as a delta page carries it. A property
// that is absent or null is empty: each object replaces the selected
// properties of the previous version whole.
type object struct {
	ID      string   `json:"id"`
	Removed *removal `json:"@removed,omitempty"`

	UserPrincipalName     string   `json:"userPrincipalName,omitempty"`
	Mail                  string   `json:"mail,omitempty"`
	ProxyAddresses        []string `json:"proxyAddresses,omitempty"`
	OtherMails            []string `json:"otherMails,omitempty"`
	AccountEnabled        *bool    `json:"accountEnabled,omitempty"`
	DisplayName           string   `json:"displayName,omitempty"`
	GivenName             string   `json:"givenName,omitempty"`
	Surname               string   `json:"surname,omitempty"`
	UserType              string   `json:"userType,omitempty"`
	MailNickname          string   `json:"mailNickname,omitempty"`
	OnPremisesSyncEnabled *bool    `json:"onPremisesSyncEnabled,omitempty"`
	OnPremisesImmutableID string   `json:"onPremisesImmutableId,omitempty"`
	// LastPasswordChangeDateTime is the password stamp (dirtype's
	// PasswordStamp): a change retires cached authentication and the
	// offline verifier, as AD's pwdLastSet does.
	LastPasswordChangeDateTime string `json:"lastPasswordChangeDateTime,omitempty"`

	Description     string   `json:"description,omitempty"`
	MailEnabled     *bool    `json:"mailEnabled,omitempty"`
	SecurityEnabled *bool    `json:"securityEnabled,omitempty"`
	GroupTypes      []string `json:"groupTypes,omitempty"`

	MembersDelta []memberRef `json:"members@delta,omitempty"`
}

// memberRef is one entry of a group's members@delta.
type memberRef struct {
	Type    string   `json:"@odata.type"`
	ID      string   `json:"id"`
	Removed *removal `json:"@removed,omitempty"`
}

// Kinds of member dirgate serves; devices, service principals and
// contacts are not directory entries of dirgate's.
const (
	memberUser  = "#microsoft.graph.user"
	memberGroup = "#microsoft.graph.group"
)

// errPage marks a page that is valid JSON but not a delta page.
var errPage = errors.New("not a Graph delta page")

// decodePage reads one delta page and checks its shape: exactly one of
// nextLink and deltaLink, and an ID on every object and member. Graph
// object IDs are GUIDs, compared case-insensitively: they are lower-cased.
// size is the objects expected (the last page's): room for them is made
// at once, where growing the slice while decoding copied it over and over.
func decodePage(body []byte, size int) (*page, error) {
	p := page{Value: make([]object, 0, size)}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, err
	}
	if (p.NextLink == "") == (p.DeltaLink == "") {
		return nil, fmt.Errorf("%w: it must carry exactly one of @odata.nextLink and @odata.deltaLink", errPage)
	}
	for i := range p.Value {
		o := &p.Value[i]
		if o.ID = normID(o.ID); o.ID == "" {
			return nil, fmt.Errorf("%w: value[%d] has no id", errPage, i)
		}
		for j := range o.MembersDelta {
			m := &o.MembersDelta[j]
			if m.ID = normID(m.ID); m.ID == "" {
				return nil, fmt.Errorf("%w: value[%d] (%s): members@delta[%d] has no id", errPage, i, o.ID, j)
			}
		}
	}
	return &p, nil
}

func normID(id string) string { return strings.ToLower(strings.TrimSpace(id)) }
