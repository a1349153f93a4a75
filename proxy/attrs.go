package proxy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jimlambrt/gldap"

	"github.com/dirgate/dirgate/filter"
)

// maxAttrDescs bounds the attribute list of one search. slapd and AD bound
// only the size of a request (slapd 4 MiB once bound, AD's
// MaxReceiveBuffer 10 MB; Samba closes the connection beyond 256 KB); no
// real client lists this many, and refusing keeps the per-entry work of a
// hostile list small.
const maxAttrDescs = 4096

// attrRequest is the parsed attribute list of a search (RFC 4511
// 4.5.1.8): which stored attributes an entry returns, and how.
type attrRequest struct {
	all, ops bool
	// types maps every lower-case spelling of a requested type (its name,
	// aliases and OID) to what is asked of that type.
	types map[string]*typeRequest
}

// typeRequest is what a search asks of one attribute type.
type typeRequest struct {
	// plain is set when the type was named without options: every stored
	// description of the type (its subtypes included) is returned.
	plain bool
	// sels are the descriptions named with options, in request order.
	sels []selector
}

// selector is an attribute description with options: a stored description
// is selected when it carries every option in opts; rng, when set, is an
// AD range option that cuts its values.
type selector struct {
	opts []string // lower case, the range option excluded
	rng  *valueRange
}

// valueRange is AD's range option "range=lo-hi" (MS-ADTS, range retrieval):
// zero-based, inclusive; hi < 0 stands for "*", the last value.
type valueRange struct{ lo, hi int }

// parseAttrRequest parses a search's attribute list, refusing more than
// limit descriptions with adminLimitExceeded. Its cost is linear in the
// length of the list.
func parseAttrRequest(attrs []string, limit int) (attrRequest, *searchError) {
	a := attrRequest{types: map[string]*typeRequest{}}
	if len(attrs) > limit {
		return a, &searchError{gldap.ResultAdminLimitExceeded,
			fmt.Sprintf("the search names %d attributes; the limit is %d", len(attrs), limit)}
	}
	if len(attrs) == 0 {
		a.all = true
	}
	seen := make(map[string]bool, len(attrs))
	for _, desc := range attrs {
		switch desc {
		case "*":
			a.all = true
			continue
		case "+":
			a.ops = true
			continue
		case "1.1":
			// RFC 4511: no attributes; ignored when listed with others.
			continue
		}
		lower := strings.ToLower(desc)
		if seen[lower] {
			continue
		}
		seen[lower] = true
		typ, opts, hasOpts := strings.Cut(lower, ";")
		base := filter.BaseType(typ)
		tr := a.types[base]
		if tr == nil {
			tr = &typeRequest{}
			for _, s := range filter.Spellings(base) {
				a.types[s] = tr
			}
		}
		if !hasOpts {
			tr.plain = true
			continue
		}
		// A malformed description selects nothing; a type named only
		// so stays in types, which is harmless.
		if sel, ok := parseOptions(opts); ok {
			tr.sels = append(tr.sels, sel)
		}
	}
	return a, nil
}

// parseOptions parses the lower-cased options of a description.
func parseOptions(opts string) (selector, bool) {
	var sel selector
	for opt := range strings.SplitSeq(opts, ";") {
		if r, ok := strings.CutPrefix(opt, "range="); ok {
			rng, ok := parseRange(r)
			if !ok || sel.rng != nil {
				return sel, false
			}
			sel.rng = &rng
			continue
		}
		if opt == "" {
			return sel, false
		}
		if slices.ContainsFunc(sel.opts, func(o string) bool { return strings.EqualFold(o, opt) }) {
			continue
		}
		// No stored attribute carries this many options, so such a
		// description selects nothing; the cap keeps hasOptions, run for
		// every entry, from costing the length of the request.
		if len(sel.opts) == maxOptions {
			return sel, false
		}
		sel.opts = append(sel.opts, opt)
	}
	return sel, true
}

// maxOptions bounds the distinct options of one attribute description.
const maxOptions = 16

// parseRange parses "lo-hi" or "lo-*"; a range that ends before it starts
// selects nothing, as in Samba.
func parseRange(s string) (valueRange, bool) {
	l, h, _ := strings.Cut(s, "-")
	lo, ok := parseIndex(l)
	if !ok {
		return valueRange{}, false
	}
	if h == "*" {
		return valueRange{lo: lo, hi: -1}, true
	}
	hi, ok := parseIndex(h)
	if !ok || hi < lo {
		return valueRange{}, false
	}
	return valueRange{lo: lo, hi: hi}, true
}

// parseIndex parses a range bound: decimal digits only.
func parseIndex(s string) (int, bool) {
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// cut returns the values in the range and the description they are
// returned under: desc with the range whose upper bound is the last value
// returned, or "*" when that is the entry's last. A range that starts past
// the last value returns "lo-*" with no values, as Samba does (AD answers
// operationsError unless the request carries the
// LDAP_SERVER_RANGE_RETRIEVAL_NOERR control); clients stop at "*" either
// way.
func (r valueRange) cut(desc string, values []string) (string, []string) {
	end, hi := len(values), "*"
	if r.hi >= 0 && r.hi < len(values)-1 {
		end, hi = r.hi+1, strconv.Itoa(r.hi)
	}
	return desc + ";range=" + strconv.Itoa(r.lo) + "-" + hi, values[min(r.lo, end):end]
}

// lookup returns what is asked of the attribute type typ, nil if it is not
// named. It does not allocate for types of up to 64 bytes.
func (a *attrRequest) lookup(typ string) *typeRequest {
	var buf [64]byte
	return a.types[string(appendLower(buf[:0], typ))]
}

// pick reports whether the stored attribute desc is returned, and the
// range to cut its values to, if any. A range wins over the plain type and
// "*", as in AD and Samba.
func (a *attrRequest) pick(desc string) (rng *valueRange, ok bool) {
	typ, opts, _ := strings.Cut(desc, ";")
	if tr := a.lookup(typ); tr != nil {
		if rng, ok := tr.pick(opts); ok {
			return rng, true
		}
	}
	if isOperational(typ) {
		return nil, a.ops
	}
	return nil, a.all
}

// named reports whether the type of desc is requested by name (for the
// root DSE, where "*" returns only objectClass).
func (a *attrRequest) named(desc string) bool {
	tr := a.lookup(desc)
	return tr != nil && tr.plain
}

func (tr *typeRequest) pick(opts string) (*valueRange, bool) {
	ok := tr.plain
	for _, s := range tr.sels {
		if !hasOptions(opts, s.opts) {
			continue
		}
		if s.rng != nil {
			return s.rng, true
		}
		ok = true
	}
	return nil, ok
}

// hasOptions reports whether the ';'-separated options of a stored
// description include every one of want (lower case).
func hasOptions(opts string, want []string) bool {
	for _, w := range want {
		found := false
		for o := range strings.SplitSeq(opts, ";") {
			if strings.EqualFold(o, w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// operational attributes are returned only when asked for by name or with
// "+", as directory servers do.
var operational = map[string]bool{
	"entryuuid": true, "entrycsn": true, "entrydn": true, "createtimestamp": true, "modifytimestamp": true,
	"creatorsname": true, "modifiersname": true, "pwdaccountlockedtime": true, "pwdchangedtime": true,
	"pwdfailuretime": true, "structuralobjectclass": true, "subschemasubentry": true, "hassubordinates": true,
	"memberof": true, "contextcsn": true,
}

func isOperational(typ string) bool {
	var buf [64]byte
	return operational[string(appendLower(buf[:0], typ))]
}

// appendLower appends s with ASCII letters lower-cased: attribute types are
// ASCII (RFC 4512 1.4).
func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// projection returns which stored attributes the search needs decoded: the
// ones its filter reads and the ones it returns; nil (all) when it asks for
// every user or operational attribute, or when the filter may read any.
func (q *query) projection() func(name string) bool {
	if q.attrs.all || q.attrs.ops {
		return nil
	}
	keep := map[string]bool{} // every spelling of every type needed
	add := func(base string) {
		for _, s := range filter.Spellings(base) {
			keep[s] = true
		}
	}
	for _, a := range q.filter.Attributes() {
		if a == "*" {
			return nil
		}
		add(filter.BaseType(a))
	}
	for s := range q.attrs.types {
		keep[s] = true
	}
	return func(desc string) bool {
		t, _, _ := strings.Cut(desc, ";")
		var buf [64]byte
		return keep[string(appendLower(buf[:0], t))]
	}
}
