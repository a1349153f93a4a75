package dirtype

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// builtin is the list of directory types this build knows, in the order
// messages and listings name them. Adding a type is one line here (its
// Type value lives beside the code that reads it) and one line in the
// sources package that opens it.
var builtin = []*Type{&OpenLDAPType, &ActiveDirectoryType, &DominoType, &EntraType, &GoogleType}

var (
	mu    sync.RWMutex
	types = slices.Clone(builtin)
)

// Lookup returns the type named name (a connector's `type` value).
func Lookup(name string) (*Type, bool) {
	mu.RLock()
	defer mu.RUnlock()
	for _, t := range types {
		if t.Name == name {
			return t, true
		}
	}
	return nil, false
}

// All returns every type, in registry order.
func All() []*Type {
	mu.RLock()
	defer mu.RUnlock()
	return slices.Clone(types)
}

// Names returns the name of every type, in registry order.
func Names() []string {
	all := All()
	names := make([]string, len(all))
	for i, t := range all {
		names[i] = t.Name
	}
	return names
}

// Sections returns every type-specific configuration section some type
// accepts, in registry order, without duplicates.
func Sections() []string {
	var out []string
	for _, t := range All() {
		for _, s := range t.Sections {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// Register adds t to the registry after the built-in types and returns a
// function that removes it again. It is for tests and for programs that
// build dirgate with a type of their own; this build's types are the
// builtin list above.
func Register(t *Type) (remove func(), err error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	if slices.ContainsFunc(types, func(o *Type) bool { return o.Name == t.Name }) {
		return nil, fmt.Errorf("dirtype: type %q is already registered", t.Name)
	}
	types = append(slices.Clone(types), t)
	return func() {
		mu.Lock()
		defer mu.Unlock()
		types = slices.DeleteFunc(slices.Clone(types), func(o *Type) bool { return o == t })
	}, nil
}

// Check reports what t lacks that config, authn, testconn, admin or the
// sources rely on.
func (t *Type) Check() error {
	var errs []error
	missing := func(what string) { errs = append(errs, fmt.Errorf("dirtype %q: %s is not set", t.Name, what)) }
	if t.Name == "" {
		missing("Name")
	}
	if t.DisplayName == "" {
		missing("DisplayName")
	}
	if t.Protocol == "" {
		missing("Protocol")
	}
	if t.Protocol == ProtocolLDAP {
		if t.UserFilter == "" {
			missing("UserFilter")
		}
		if t.GroupFilter == "" {
			missing("GroupFilter")
		}
	}
	if t.Mapping.StableID == "" {
		missing("Mapping.StableID")
	}
	if len(t.PasswordStamp) == 0 {
		missing("PasswordStamp")
	}
	if t.Disabled == nil {
		missing("Disabled")
	}
	if t.DisabledBy == "" {
		missing("DisabledBy")
	}
	if len(t.TestSteps) == 0 {
		missing("TestSteps")
	}
	return errors.Join(errs...)
}

// PasswordStamp returns the password-stamp attributes of the type named
// name; for a name no type has (an entry of a connector no longer
// configured) it returns the password-policy attributes of OpenLDAP, the
// most common ones.
func PasswordStamp(name string) []string {
	if t, ok := Lookup(name); ok {
		return t.PasswordStamp
	}
	return OpenLDAPType.PasswordStamp
}

// DecodeBindFailure decodes a bind diagnostic with every type's decoder,
// in registry order, and returns the first that recognises it. The
// wording identifies the directory product by itself, so it is decoded
// whatever type the connector is configured with: a connector set to the
// wrong type still gets the precise reason.
func DecodeBindFailure(diagnostic string) (BindFailure, bool) {
	for _, t := range All() {
		if t.DecodeBindFailure == nil {
			continue
		}
		if f, ok := t.DecodeBindFailure(diagnostic); ok {
			return f, true
		}
	}
	return BindFailure{}, false
}
