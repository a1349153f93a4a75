package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Kind tells users from groups.
type Kind uint8

// The kinds of cached objects.
const (
	KindUser Kind = iota + 1
	KindGroup
)

// String names the kind for logs and CLI output.
func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindGroup:
		return "group"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Attr is one attribute of an entry with its values, as the upstream sent it.
type Attr struct {
	Name   string
	Values []string
}

// Entry is one cached directory object. It is keyed by its connector and the
// source's immutable ID, never by DN or email: renames keep the identity.
type Entry struct {
	Connector string
	ID        string // entryUUID, objectGUID, dominoUNID...
	DN        string // as the upstream returned it
	Kind      Kind
	Disabled  bool
	// Addresses are the login/email addresses of a user, lower-cased: the
	// primary address first, then aliases. They feed the email index.
	Addresses []string
	// Members are the DNs of a group's direct members, as the upstream sent
	// them; each names whatever entry holds that DN when it is read
	// (member.go), not the one that held it when the group was synced.
	Members []string
	Attrs   []Attr // sorted by lower-cased name, for deterministic output
	// DNKey is the normalised DN (dn.Key), stored so that readers need not
	// parse the DN again; set by the cache when the entry is written.
	DNKey string

	// body and bodyHash cache the encoding computed by Hash, which a sync
	// then writes: the engine hashes every entry to diff it, and would
	// otherwise encode it twice. Normalize drops them if it reorders.
	body     []byte
	bodyHash uint64
	hashed   bool // bodyHash is set: computed, or read with the entry
	// partial marks an entry read through View.Project: it lacks the
	// attributes the reader did not want and must never be written back.
	partial bool
	// unchanged marks a stand-in made by Unchanged: an ID and a hash.
	unchanged bool
	// onPrem is the objectGUID of the on-premises AD user an Entra user
	// is a synced copy of (onprem.go); stored, so projections keep it.
	onPrem string
}

// Values returns the values of attribute name (case-insensitive).
func (e *Entry) Values(name string) []string {
	for i := range e.Attrs {
		if strings.EqualFold(e.Attrs[i].Name, name) {
			return e.Attrs[i].Values
		}
	}
	return nil
}

// First returns the first value of attribute name, or "".
func (e *Entry) First(name string) string {
	if v := e.Values(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Normalize sorts attributes by name so that the encoding, and so the
// content hash, does not depend on the order the upstream sent them in.
func (e *Entry) Normalize() {
	// Sorted already, as a source builds it or a second call finds it,
	// costs no allocation: a closure for the sort package would.
	for i := 1; i < len(e.Attrs); i++ {
		if lessFold(e.Attrs[i].Name, e.Attrs[i-1].Name) {
			slices.SortStableFunc(e.Attrs, compareFold)
			e.body, e.hashed = nil, false
			return
		}
	}
}

// compareFold orders attributes as lessFold orders their names.
func compareFold(a, b Attr) int {
	switch {
	case lessFold(a.Name, b.Name):
		return -1
	case lessFold(b.Name, a.Name):
		return 1
	}
	return 0
}

// lessFold orders attribute names as strings.ToLower(a) < strings.ToLower(b)
// does, without allocating for the ASCII names LDAP uses.
func lessFold(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca >= utf8.RuneSelf || cb >= utf8.RuneSelf {
			return strings.ToLower(a) < strings.ToLower(b)
		}
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return ca < cb
		}
	}
	return len(a) < len(b)
}

// Hash returns a content hash over everything the cache stores for the
// entry; the sync engine compares it to tell updated from unchanged entries.
//
// The encoding is kept for a following write, so an entry must not be
// changed between Hash and being written, except through Normalize.
//
// An entry read from the cache carries the hash it was stored with, so
// calling Hash on it writes nothing: entries that readers share stay
// read-only.
func (e *Entry) Hash() uint64 {
	if !e.hashed {
		e.setBody(e.encodeBody(make([]byte, 0, e.bodySize())))
	}
	return e.bodyHash
}

// setBody keeps body as the entry's encoding and hashes it.
func (e *Entry) setBody(body []byte) {
	h := fnv.New64a()
	h.Write(body)
	e.body, e.bodyHash, e.hashed = body, h.Sum64(), true
}

// encVersion 2 appends the DN key; version 1 values are still read.
const (
	encVersion   = 2
	encVersionV1 = 1
)

// errCorrupt reports a value that cannot be decoded; the cache is
// rebuildable, so callers surface it rather than guess.
var errCorrupt = errors.New("cache: corrupt entry encoding")

// encode writes the entry value: version, hash, then the body. Connector and
// ID live in the key and are not repeated.
func (e *Entry) encode() []byte {
	e.onPrem = e.onPremGUID()
	// Outside the hashed body: both are derived from it (the key from the
	// DN); the on-premises GUID only where there is one.
	tail := stringSize(e.DNKey)
	if e.onPrem != "" {
		tail += stringSize(e.onPrem)
	}
	var out []byte
	if e.body == nil {
		// Not hashed yet, or read from the cache and perhaps changed since:
		// the body is encoded in place in the value and kept from there.
		size := e.bodySize()
		out = e.encodeBody(make([]byte, 9, 9+size+tail))
		e.setBody(out[9:len(out):len(out)])
		out[0] = encVersion
		binary.BigEndian.PutUint64(out[1:9], e.bodyHash)
	} else {
		sum := e.Hash()
		out = make([]byte, 0, 9+len(e.body)+tail)
		out = append(out, encVersion)
		out = binary.BigEndian.AppendUint64(out, sum)
		out = append(out, e.body...)
	}
	out = appendString(out, e.DNKey)
	if e.onPrem != "" {
		out = appendString(out, e.onPrem)
	}
	return out
}

// bodySize is the length of encodeBody's output, so that it is written
// into one allocation of the right size.
func (e *Entry) bodySize() int {
	n := 2 + stringSize(e.DN) + stringsSize(e.Addresses) + stringsSize(e.Members) + uvarintSize(len(e.Attrs))
	for _, a := range e.Attrs {
		n += stringSize(a.Name) + stringsSize(a.Values)
	}
	return n
}

func uvarintSize(n int) int {
	size := 1
	for ; n >= 0x80; n >>= 7 {
		size++
	}
	return size
}

func stringSize(s string) int { return uvarintSize(len(s)) + len(s) }

func stringsSize(ss []string) int {
	n := uvarintSize(len(ss))
	for _, s := range ss {
		n += stringSize(s)
	}
	return n
}

func (e *Entry) encodeBody(b []byte) []byte {
	var flags byte
	if e.Disabled {
		flags |= 1
	}
	b = append(b, byte(e.Kind), flags)
	b = appendString(b, e.DN)
	b = appendStrings(b, e.Addresses)
	b = appendStrings(b, e.Members)
	b = binary.AppendUvarint(b, uint64(len(e.Attrs)))
	for _, a := range e.Attrs {
		b = appendString(b, a.Name)
		b = appendStrings(b, a.Values)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// storedHash reads the content hash of an encoded entry without decoding it.
func storedHash(v []byte) (uint64, error) {
	if len(v) < 9 || (v[0] != encVersion && v[0] != encVersionV1) {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(v[1:9]), nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[k:]
	return n
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// bytes returns the next string's bytes without copying them.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) skipStrings() {
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		d.bytes()
	}
}

// unsafeString views b as a string for a comparison that does not keep it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func (d *decoder) strings() []string {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.string()
	}
	return out
}

func decodeEntry(connector, id string, v []byte) (*Entry, error) {
	return decodeEntryKeep(connector, id, v, nil)
}

// decodeEntryKeep decodes only the attributes keep accepts (all when keep
// is nil); the values of the others are skipped without being copied.
func decodeEntryKeep(connector, id string, v []byte, keep func(name string) bool) (*Entry, error) {
	if len(v) < 11 || (v[0] != encVersion && v[0] != encVersionV1) {
		return nil, errCorrupt
	}
	e := &Entry{Connector: connector, ID: id, Kind: Kind(v[9]), Disabled: v[10]&1 != 0,
		bodyHash: binary.BigEndian.Uint64(v[1:9]), hashed: true}
	d := decoder{b: v[11:]}
	e.DN = d.string()
	e.Addresses = d.strings()
	e.Members = d.strings()
	n := d.uvarint()
	switch {
	case d.err != nil || n == 0:
	case keep == nil:
		e.Attrs = make([]Attr, n)
		for i := range e.Attrs {
			e.Attrs[i].Name = d.string()
			e.Attrs[i].Values = d.strings()
		}
	default:
		e.partial = true
		for range n {
			name := d.bytes()
			if keep(unsafeString(name)) {
				e.Attrs = append(e.Attrs, Attr{Name: string(name), Values: d.strings()})
			} else {
				d.skipStrings()
			}
		}
	}
	if v[0] == encVersion && d.err == nil {
		e.DNKey = d.string()
		if len(d.b) > 0 {
			e.onPrem = d.string()
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode entry %s/%s: %w", connector, id, d.err)
	}
	return e, nil
}
