package wire

import (
	"context"
	"errors"
	"strings"

	"github.com/dirgate/dirgate/authn"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/upstream"
)

// Error kinds.
const (
	ErrKindUnreachable   = "unreachable"    // no directory host answered: upstream.ErrUnreachable
	ErrKindCursorInvalid = "cursor_invalid" // dirsync.ErrCursorInvalid
	ErrKindAuth          = "auth"           // a typed *authn.Error
	ErrKindCanceled      = "canceled"       // the request was canceled or its deadline passed
	ErrKindInternal      = "internal"       // anything else
)

// WireError is a failure on the wire. As an error (on the receiving side)
// it matches, through errors.Is, the sentinel its kind names, so callers
// branch on it as on a local failure.
type WireError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	// Reason and PasswordVerified are those of an authn.Error (kind auth);
	// Unreachable says that its cause was upstream.ErrUnreachable, which
	// lets the hub's offline verifier answer.
	Reason           string `json:"reason,omitempty"`
	PasswordVerified bool   `json:"password_verified,omitempty"`
	Unreachable      bool   `json:"unreachable,omitempty"`
}

func (e *WireError) Error() string { return "agent: " + e.Kind + ": " + e.Message }

// Is matches the sentinel of e's kind.
func (e *WireError) Is(target error) bool {
	switch target {
	case upstream.ErrUnreachable:
		return e.Kind == ErrKindUnreachable || e.Unreachable
	case dirsync.ErrCursorInvalid:
		return e.Kind == ErrKindCursorInvalid
	case context.Canceled:
		return e.Kind == ErrKindCanceled
	}
	return false
}

// ToWire maps err to its form on the wire; nil stays nil.
func ToWire(err error) *WireError {
	if err == nil {
		return nil
	}
	var ae *authn.Error
	if errors.As(err, &ae) {
		msg := ae.Reason.String()
		if ae.Err != nil {
			msg = ae.Err.Error()
		}
		return &WireError{Kind: ErrKindAuth, Message: msg, Reason: ae.Reason.String(),
			PasswordVerified: ae.PasswordVerified, Unreachable: errors.Is(ae.Err, upstream.ErrUnreachable)}
	}
	w := &WireError{Kind: ErrKindInternal, Message: err.Error()}
	switch {
	case errors.Is(err, dirsync.ErrCursorInvalid):
		w.Kind = ErrKindCursorInvalid
	case errors.Is(err, upstream.ErrUnreachable):
		w.Kind = ErrKindUnreachable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		w.Kind = ErrKindCanceled
	}
	return w
}

// Err returns the error e stands for on the side that receives it: a
// typed *authn.Error of connector for kind auth (its cause e itself),
// else e.
func (e *WireError) Err(connector string) error {
	if e.Kind != ErrKindAuth {
		return e
	}
	return &authn.Error{Reason: reasonNamed(e.Reason), Connector: connector, Err: e, PasswordVerified: e.PasswordVerified}
}

// reasonNamed parses a Reason's name; an unknown one (an agent of a newer
// version) counts as the upstream being unavailable, which refuses the
// attempt without blaming the user.
func reasonNamed(name string) authn.Reason {
	for r := authn.ReasonInvalidCredentials; ; r++ {
		switch s := r.String(); {
		case s == name:
			return r
		case strings.HasPrefix(s, "reason("): // past the last one
			return authn.ReasonUnavailable
		}
	}
}
