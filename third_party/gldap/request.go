// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"crypto/tls"
	"errors"
	"fmt"
	// dirgate patch 2
	"net"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// ExtendedOperationName is an extended operation request/response name
type ExtendedOperationName string

// Extended operation response/request names
const (
	// dirgate patch 4: the full OID.
	ExtendedOperationDisconnection   ExtendedOperationName = "1.3.6.1.4.1.1466.20036" // RFC 4511 4.4.1 (upstream had a truncated OID)
	ExtendedOperationCancel          ExtendedOperationName = "1.3.6.1.1.8"
	ExtendedOperationStartTLS        ExtendedOperationName = "1.3.6.1.4.1.1466.20037"
	ExtendedOperationWhoAmI          ExtendedOperationName = "1.3.6.1.4.1.4203.1.11.3"
	ExtendedOperationGetConnectionID ExtendedOperationName = "1.3.6.1.4.1.26027.1.6.2"
	ExtendedOperationPasswordModify  ExtendedOperationName = "1.3.6.1.4.1.4203.1.11.1"
	ExtendedOperationUnknown         ExtendedOperationName = "Unknown"
)

// Request represents an ldap request
type Request struct {
	// ID is the request number for a specific connection.  Every connection has
	// its own request counter which starts at 1.
	ID int

	// conn is needed this for cancellation among other things.
	conn         *conn
	message      Message
	routeOp      routeOperation
	extendedName ExtendedOperationName
	critical     []string // dirgate patch 15
}

// dirgate patch 8: decoding panics are protocol errors.
func newRequest(id int, c *conn, p *packet) (_ *Request, retErr error) {
	const op = "gldap.newRequest"
	// Decoding walks a client-supplied BER tree and some decoders (notably
	// decodeControl) use unchecked type assertions and indexes: a malformed
	// request must fail as a protocol error, not panic.
	defer func() {
		if v := recover(); v != nil {
			retErr = fmt.Errorf("%s: malformed request %d: %v: %w", op, id, v, ErrInvalidParameter)
		}
	}()
	if c == nil {
		return nil, fmt.Errorf("%s: missing connection: %w", op, ErrInvalidParameter)
	}
	if p == nil {
		return nil, fmt.Errorf("%s: missing packet: %w", op, ErrInvalidParameter)
	}

	m, err := newMessage(p)
	if err != nil {
		return nil, fmt.Errorf("%s: unable to build message for request %d: %w", op, id, err)
	}
	var extendedName ExtendedOperationName
	var routeOp routeOperation
	switch v := m.(type) {
	case *SimpleBindMessage:
		routeOp = bindRouteOperation
	case *SearchMessage:
		routeOp = searchRouteOperation
	case *ExtendedOperationMessage:
		routeOp = extendedRouteOperation
		extendedName = v.Name
	case *ModifyMessage:
		routeOp = modifyRouteOperation
	case *AddMessage:
		routeOp = addRouteOperation
	case *DeleteMessage:
		routeOp = deleteRouteOperation
	case *UnbindMessage:
		routeOp = unbindRouteOperation
	// dirgate patch 4: compare, modify DN and abandon.
	case *CompareMessage:
		routeOp = compareRouteOperation
	case *ModifyDNMessage:
		routeOp = modifyDNRouteOperation
	case *abandonMessage:
		routeOp = abandonRouteOperation
	default:
		// this should be unreachable, since newMessage defaults to returning an
		// *ExtendedOperationMessage
		return nil, fmt.Errorf("%s: %v is an unsupported route operation: %w", op, v, ErrInternal)
	}

	// dirgate patch 15
	critical, err := p.criticalControls()
	if err != nil {
		return nil, fmt.Errorf("%s: request %d: %w", op, id, err)
	}
	r := &Request{
		ID:           id,
		conn:         c,
		message:      m,
		routeOp:      routeOp,
		extendedName: extendedName,
		critical:     critical,
	}
	return r, nil
}

// ConnectionID returns the request's connection ID which enables you to know
// "who" (i.e. which connection) made a request. Using the connection ID you
// can do things like ensure a connection performing a search operation has
// successfully authenticated (a.k.a. performed a successful bind operation).
func (r *Request) ConnectionID() int {
	return r.conn.connID
}

// Operation names the request's operation: "bind", "search", "modify",
// "add", "delete", "modifyDN", "compare", "extendedOperation" or "unbind".
// dirgate patch 15: Operation, ExtendedName and CriticalControls.
func (r *Request) Operation() string {
	return string(r.routeOp)
}

// ExtendedName is the requestName of an extended operation, empty for other
// operations.
func (r *Request) ExtendedName() ExtendedOperationName {
	return r.extendedName
}

// CriticalControls returns the controlType of every control of the request
// marked critical, whatever the operation (extended operations included) and
// whether or not gldap knows the control.  A server must refuse a request
// with a critical control it does not implement (RFC 4511 section 4.1.11).
func (r *Request) CriticalControls() []string {
	return r.critical
}

// RemoteAddr returns the network address of the client that sent the request.
// dirgate patch 2: RemoteAddr and IsTLS.
func (r *Request) RemoteAddr() net.Addr {
	return r.conn.remoteAddr
}

// IsTLS reports whether the request arrived over TLS: on a connection accepted
// from a crypto/tls listener (LDAPS, e.g. Run with WithTLSConfig) or after a
// successful StartTLS on this connection.
func (r *Request) IsTLS() bool {
	return r.conn.isTLS.Load()
}

// MarkEstablished tells the server that the request's connection has
// established itself, e.g. with a successful bind: from its next wait for a
// request on, it waits under Limits.IdleTimeout instead of the shorter
// Limits.FirstRequestTimeout.  It cannot be undone.
// dirgate patch 17
func (r *Request) MarkEstablished() {
	r.conn.established.Store(true)
}

// NewModifyResponse creates a modify response
// Supported options: WithResponseCode, WithDiagnosticMessage, WithMatchedDN
func (r *Request) NewModifyResponse(opt ...Option) *ModifyResponse {
	opts := getResponseOpts(opt...)
	return &ModifyResponse{
		GeneralResponse: r.NewResponse(
			WithApplicationCode(ApplicationModifyResponse),
			WithResponseCode(*opts.withResponseCode),
			WithDiagnosticMessage(opts.withDiagnosticMessage),
			WithMatchedDN(opts.withMatchedDN),
		),
	}
}

// StartTLS will start a TLS connection using the Message's existing connection
func (r *Request) StartTLS(tlsconfig *tls.Config) error {
	const op = "gldap.(Message).StartTLS"
	if tlsconfig == nil {
		return fmt.Errorf("%s: missing tls configuration: %w", op, ErrInvalidParameter)
	}
	// dirgate patch 2: the conn records that it is TLS now.
	if err := r.conn.startTLS(tlsconfig); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// NewResponse creates a general response (not necessarily to any specific
// request because you can set WithApplicationCode).  Without
// WithApplicationCode the response is of the type that answers the request's
// operation (e.g. SearchResultDone for a search, CompareResponse for a
// compare), so it's a valid final response to any request.
// Supported options: WithResponseCode, WithApplicationCode,
// WithDiagnosticMessage, WithMatchedDN
func (r *Request) NewResponse(opt ...Option) *GeneralResponse {
	const op = "gldap.NewResponse" // nolint:unused
	opts := getResponseOpts(opt...)
	if opts.withResponseCode == nil {
		opts.withResponseCode = intPtr(ResultUnwillingToPerform)
	}
	if opts.withApplicationCode == nil {
		// dirgate patch 4: the response type that answers the request.
		opts.withApplicationCode = intPtr(r.responseApplicationCode())
	}
	return &GeneralResponse{
		baseResponse: &baseResponse{
			messageID:   r.message.GetID(),
			code:        int16(*opts.withResponseCode),
			diagMessage: opts.withDiagnosticMessage,
			matchedDN:   opts.withMatchedDN,
		},
		applicationCode: *opts.withApplicationCode,
	}
}

// NewExtendedResponse creates a new extended response.
// Supported options: WithResponseCode
func (r *Request) NewExtendedResponse(opt ...Option) *ExtendedResponse {
	const op = "gldap.NewExtendedResponse" // nolint:unused
	opts := getResponseOpts(opt...)
	resp := &ExtendedResponse{
		baseResponse: &baseResponse{
			messageID: r.message.GetID(),
		},
	}
	if opts.withResponseCode != nil {
		resp.code = int16(*opts.withResponseCode)
	}
	return resp
}

// NewBindResponse creates a new bind response.
// Supported options: WithResponseCode
func (r *Request) NewBindResponse(opt ...Option) *BindResponse {
	const op = "gldap.NewBindResponse" // nolint:unused
	opts := getResponseOpts(opt...)
	resp := &BindResponse{
		baseResponse: &baseResponse{
			messageID: r.message.GetID(),
		},
	}
	if opts.withResponseCode != nil {
		resp.code = int16(*opts.withResponseCode)
	}
	return resp
}

// GetSimpleBindMessage retrieves the SimpleBindMessage from the request, which
// allows you handle the request based on the message attributes.
func (r *Request) GetSimpleBindMessage() (*SimpleBindMessage, error) {
	const op = "gldap.(Request).GetSimpleBindMessage"
	s, ok := r.message.(*SimpleBindMessage)
	if !ok {
		return nil, fmt.Errorf("%s: %T not a simple bind request: %w", op, r.message, ErrInvalidParameter)
	}
	return s, nil
}

// NewSearchDoneResponse creates a new search done response.  If there are no
// results found, then set the response code by adding the option
// WithResponseCode(ResultNoSuchObject)
//
// Supported options: WithResponseCode
func (r *Request) NewSearchDoneResponse(opt ...Option) *SearchResponseDone {
	const op = "gldap.(Request).NewSearchDoneResponse" // nolint:unused
	opts := getResponseOpts(opt...)
	resp := &SearchResponseDone{
		baseResponse: &baseResponse{
			messageID: r.message.GetID(),
		},
	}
	if opts.withResponseCode != nil {
		resp.code = int16(*opts.withResponseCode)
	}
	return resp
}

// GetSearchMessage retrieves the SearchMessage from the request, which
// allows you handle the request based on the message attributes.
func (r *Request) GetSearchMessage() (*SearchMessage, error) {
	const op = "gldap.(Request).GetSearchMessage"
	m, ok := r.message.(*SearchMessage)
	if !ok {
		return nil, fmt.Errorf("%s: %T not a search request: %w", op, r.message, ErrInvalidParameter)
	}
	return m, nil
}

// NewSearchResponseEntry is a search response entry.
// Supported options: WithAttributes
func (r *Request) NewSearchResponseEntry(entryDN string, opt ...Option) *SearchResponseEntry {
	opts := getResponseOpts(opt...)
	newAttrs := make([]*EntryAttribute, 0, len(opts.withAttributes))
	for name, values := range opts.withAttributes {
		newAttrs = append(newAttrs, NewEntryAttribute(name, values))
	}
	return &SearchResponseEntry{
		baseResponse: &baseResponse{
			messageID: r.message.GetID(),
		},
		entry: Entry{
			DN:         entryDN,
			Attributes: newAttrs,
		},
	}
}

// responseApplicationCode returns the protocolOp tag of the response that
// answers the request's operation.
// dirgate patch 4: responseApplicationCode, GetCompareMessage and GetModifyDNMessage.
func (r *Request) responseApplicationCode() int {
	switch r.routeOp {
	case bindRouteOperation:
		return ApplicationBindResponse
	case searchRouteOperation:
		return ApplicationSearchResultDone
	case modifyRouteOperation:
		return ApplicationModifyResponse
	case addRouteOperation:
		return ApplicationAddResponse
	case deleteRouteOperation:
		return ApplicationDelResponse
	case modifyDNRouteOperation:
		return ApplicationModifyDNResponse
	case compareRouteOperation:
		return ApplicationCompareResponse
	default:
		return ApplicationExtendedResponse
	}
}

// GetCompareMessage retrieves the CompareMessage from the request, which
// allows you handle the request based on the message attributes.  Answer it
// with NewResponse(WithResponseCode(ResultCompareTrue)) (or
// ResultCompareFalse, or an error code).
func (r *Request) GetCompareMessage() (*CompareMessage, error) {
	const op = "gldap.(Request).GetCompareMessage"
	m, ok := r.message.(*CompareMessage)
	if !ok {
		return nil, fmt.Errorf("%s: %T not a compare request: %w", op, r.message, ErrInvalidParameter)
	}
	return m, nil
}

// GetModifyDNMessage retrieves the ModifyDNMessage from the request, which
// allows you handle the request based on the message attributes.
func (r *Request) GetModifyDNMessage() (*ModifyDNMessage, error) {
	const op = "gldap.(Request).GetModifyDNMessage"
	m, ok := r.message.(*ModifyDNMessage)
	if !ok {
		return nil, fmt.Errorf("%s: %T not a modify DN request: %w", op, r.message, ErrInvalidParameter)
	}
	return m, nil
}

// GetModifyMessage retrieves the ModifyMessage from the request, which
// allows you handle the request based on the message attributes.
func (r *Request) GetModifyMessage() (*ModifyMessage, error) {
	const op = "gldap.(Request).GetModifyMessage"
	m, ok := r.message.(*ModifyMessage)
	if !ok {
		return nil, fmt.Errorf("%s: %T not a modify request: %w", op, r.message, ErrInvalidParameter)
	}
	return m, nil
}

// GetAddMessage retrieves the AddMessage from the request, which
// allows you handle the request based on the message attributes.
func (r *Request) GetAddMessage() (*AddMessage, error) {
	const op = "gldap.(Request).GetAddMessage"
	m, ok := r.message.(*AddMessage)
	if !ok {
		return nil, fmt.Errorf("%s: %T not a add request: %w", op, r.message, ErrInvalidParameter)
	}
	return m, nil
}

// GetDeleteMessage retrieves the DeleteMessage from the request, which
// allows you handle the request based on the message attributes.
func (r *Request) GetDeleteMessage() (*DeleteMessage, error) {
	const op = "gldap.(Request).GetDeleteMessage"
	m, ok := r.message.(*DeleteMessage)
	if !ok {
		return nil, fmt.Errorf("%s: %T not a delete request: %w", op, r.message, ErrInvalidParameter)
	}
	return m, nil
}

// GetUnbindMessage retrieves the UnbindMessage from the request, which
// allows you handle the request based on the message attributes.
func (r *Request) GetUnbindMessage() (*UnbindMessage, error) {
	const op = "gldap.(Request).GetUnbindMessage"
	m, ok := r.message.(*UnbindMessage)
	if !ok {
		return nil, fmt.Errorf("%s: %T not an unbind request: %w", op, r.message, ErrInvalidParameter)
	}
	return m, nil
}

// ConvertString will convert an ASN1 BER Octet string into a "native" go
// string.  Support ber string encoding types: OctetString, GeneralString and
// all other types will return an error.
func ConvertString(octetString ...string) ([]string, error) {
	const (
		op             = "gldap.ConvertOctetString"
		berTagIdx      = 0
		startOfDataIdx = 1
	)

	converted := make([]string, 0, len(octetString))

	for _, s := range octetString {
		data := []byte(s)

		switch {
		case
			ber.Tag(data[berTagIdx]) == ber.TagOctetString,
			ber.Tag(data[berTagIdx]) == ber.TagGeneralString:
			_, strDataLen, err := readLength(data[startOfDataIdx:])
			if err != nil {
				return nil, err
			}
			converted = append(converted, string(data[(startOfDataIdx+strDataLen):]))

		default:
			return nil, fmt.Errorf("%s: unsupported ber encoding type %s: %w", op, string(data[berTagIdx]), ErrInvalidParameter)
		}
	}

	return converted, nil
}

// readLength(...)
// jimlambrt: 2/2023
// copied directly from github.com/go-asn1-ber/asn1-ber@v1.5.4/length.go
// it has an MIT license: https://github.com/go-asn1-ber/asn1-ber/blob/master/LICENSE
func readLength(bytes []byte) (length int, read int, err error) {
	// length byte
	b := bytes[0]
	read++

	switch {
	case b == 0xFF:
		// Invalid 0xFF (x.600, 8.1.3.5.c)
		return 0, read, errors.New("invalid length byte 0xff")

	case b == ber.LengthLongFormBitmask:
		// Indefinite form, we have to decode packets until we encounter an EOC packet (x.600, 8.1.3.6)
		length = ber.LengthIndefinite

	case b&ber.LengthLongFormBitmask == 0:
		// Short definite form, extract the length from the bottom 7 bits (x.600, 8.1.3.4)
		length = int(b) & ber.LengthValueBitmask

	case b&ber.LengthLongFormBitmask != 0:
		// Long definite form, extract the number of length bytes to follow from the bottom 7 bits (x.600, 8.1.3.5.b)
		lengthBytes := int(b) & ber.LengthValueBitmask
		// Protect against overflow
		// TODO: support big int length?
		if lengthBytes > 8 {
			return 0, read, errors.New("long-form length overflow")
		}

		// Accumulate into a 64-bit variable
		var length64 int64
		for i := 0; i < lengthBytes; i++ {
			b = bytes[read]
			read++

			// x.600, 8.1.3.5
			length64 <<= 8
			length64 |= int64(b)
		}

		// Cast to a platform-specific integer
		length = int(length64)
		// Ensure we didn't overflow
		if int64(length) != length64 {
			return 0, read, errors.New("long-form length overflow")
		}

	default:
		return 0, read, errors.New("invalid length byte")
	}

	return length, read, nil
}

func intPtr(i int) *int {
	return &i
}
