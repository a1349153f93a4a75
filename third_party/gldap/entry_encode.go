// SPDX-License-Identifier: MIT

package gldap

// dirgate patches 11 and 13: this file is dirgate's; upstream gldap has no such file.

// Search result entries are most of what a server writes, and building a
// ber.Packet tree for each (with description strings, and appending every
// child's bytes to its parent's buffer) cost more than the search itself.
// This encodes a SearchResultEntry straight to BER, two passes (sizes, then
// bytes), one allocation. The output is byte-for-byte what packet() gives
// (entry_encode_test.go checks that). The same goes for the results that
// end most requests: SearchResultDone and BindResponse without controls.

// berLenSize is the size of a BER length field for n.
func berLenSize(n int) int {
	if n < 0x80 {
		return 1
	}
	s := 1
	for v := n; v > 0; v >>= 8 {
		s++
	}
	return s
}

func appendBERLen(b []byte, n int) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	var tmp [8]byte
	i := len(tmp)
	for v := n; v > 0; v >>= 8 {
		i--
		tmp[i] = byte(v)
	}
	b = append(b, 0x80|byte(len(tmp)-i))
	return append(b, tmp[i:]...)
}

// tlvSize is the size of a whole TLV whose content is n bytes.
func tlvSize(n int) int { return 1 + berLenSize(n) + n }

// berIntBytes is the minimal two's-complement encoding of v, as
// go-asn1-ber writes it.
func berIntBytes(v int64) []byte {
	n := 1
	for x := v; x > 127 || x < -128; x >>= 8 {
		n++
	}
	out := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		out[i] = byte(v)
		v >>= 8
	}
	return out
}

func encodeSearchEntry(messageID int64, e *Entry) []byte {
	// Pass 1: sizes.
	attrsLen := 0
	setLens := make([]int, len(e.Attributes))
	for i, a := range e.Attributes {
		set := 0
		for _, v := range a.Values {
			set += tlvSize(len(v))
		}
		setLens[i] = set
		attrsLen += tlvSize(tlvSize(len(a.Name)) + tlvSize(set))
	}
	entryLen := tlvSize(len(e.DN)) + tlvSize(attrsLen)
	id := berIntBytes(messageID)
	msgLen := tlvSize(len(id)) + tlvSize(entryLen)

	// Pass 2: bytes.
	b := make([]byte, 0, tlvSize(msgLen))
	b = append(b, 0x30) // LDAPMessage SEQUENCE
	b = appendBERLen(b, msgLen)
	b = append(b, 0x02) // messageID INTEGER
	b = appendBERLen(b, len(id))
	b = append(b, id...)
	b = append(b, 0x64) // [APPLICATION 4] SearchResultEntry
	b = appendBERLen(b, entryLen)
	b = append(b, 0x04) // objectName
	b = appendBERLen(b, len(e.DN))
	b = append(b, e.DN...)
	b = append(b, 0x30) // attributes
	b = appendBERLen(b, attrsLen)
	for i, a := range e.Attributes {
		b = append(b, 0x30)
		b = appendBERLen(b, tlvSize(len(a.Name))+tlvSize(setLens[i]))
		b = append(b, 0x04)
		b = appendBERLen(b, len(a.Name))
		b = append(b, a.Name...)
		b = append(b, 0x31) // SET OF values
		b = appendBERLen(b, setLens[i])
		for _, v := range a.Values {
			b = append(b, 0x04)
			b = appendBERLen(b, len(v))
			b = append(b, v...)
		}
	}
	return b
}

// encodeResult encodes an LDAPMessage whose protocol op is the LDAPResult
// r with application tag tag (RFC 4511 4.1.9), without referral or
// controls.
func encodeResult(r *baseResponse, tag int) []byte {
	id, code := berIntBytes(r.messageID), berIntBytes(int64(r.code))
	resLen := tlvSize(len(code)) + tlvSize(len(r.matchedDN)) + tlvSize(len(r.diagMessage))
	msgLen := tlvSize(len(id)) + tlvSize(resLen)
	b := make([]byte, 0, tlvSize(msgLen))
	b = append(b, 0x30) // LDAPMessage SEQUENCE
	b = appendBERLen(b, msgLen)
	b = append(b, 0x02) // messageID INTEGER
	b = appendBERLen(b, len(id))
	b = append(b, id...)
	b = append(b, 0x60|byte(tag)) // [APPLICATION tag], constructed
	b = appendBERLen(b, resLen)
	b = append(b, 0x0a) // resultCode ENUMERATED
	b = appendBERLen(b, len(code))
	b = append(b, code...)
	b = append(b, 0x04) // matchedDN
	b = appendBERLen(b, len(r.matchedDN))
	b = append(b, r.matchedDN...)
	b = append(b, 0x04) // diagnosticMessage
	b = appendBERLen(b, len(r.diagMessage))
	return append(b, r.diagMessage...)
}
