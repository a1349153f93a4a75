// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"bytes"
	"strings"
	"testing"
)

func TestEncodeSearchEntryMatchesPacket(t *testing.T) {
	long := strings.Repeat("x", 70000) // a long-form length of 3 bytes
	cases := []struct {
		id int64
		e  Entry
	}{
		{0, Entry{DN: ""}},
		{1, Entry{DN: "cn=a,dc=x", Attributes: []*EntryAttribute{{Name: "cn", Values: []string{"a"}}}}},
		{127, Entry{DN: "cn=a,dc=x", Attributes: []*EntryAttribute{{Name: "empty"}}}},
		{128, Entry{DN: "cn=Jürgen,dc=x", Attributes: []*EntryAttribute{{Name: "mail", Values: []string{"a@x", "b@x"}}, {Name: "cn", Values: []string{"Jürgen"}}}}},
		{255, Entry{DN: strings.Repeat("y", 200), Attributes: []*EntryAttribute{{Name: "description", Values: []string{strings.Repeat("z", 300)}}}}},
		{65536, Entry{DN: "cn=big", Attributes: []*EntryAttribute{{Name: "jpegPhoto", Values: []string{long, "\x00\x01\xff"}}}}},
		{1<<31 - 1, Entry{DN: "cn=max", Attributes: []*EntryAttribute{{Name: "a", Values: []string{""}}}}},
	}
	for _, c := range cases {
		r := &SearchResponseEntry{baseResponse: &baseResponse{messageID: c.id}, entry: c.e}
		want := r.packet().Bytes()
		got := encodeSearchEntry(c.id, &c.e)
		if !bytes.Equal(got, want) {
			t.Errorf("message %d, DN %.20q: encodings differ\n got %x\nwant %x", c.id, c.e.DN, got[:min(len(got), 64)], want[:min(len(want), 64)])
		}
	}
}

func TestEncodeResultMatchesPacket(t *testing.T) {
	long := strings.Repeat("d", 300) // a long-form length
	cases := []baseResponse{
		{messageID: 1},
		{messageID: 0, code: ResultInvalidCredentials, diagMessage: "invalid credentials"},
		{messageID: 128, code: ResultNoSuchObject, matchedDN: "dc=example,dc=test", diagMessage: long},
		{messageID: 1<<31 - 1, code: ResultUnavailable, diagMessage: "Jürgen"},
		{messageID: 70000, code: ResultSizeLimitExceeded},
	}
	for _, c := range cases {
		done := &SearchResponseDone{baseResponse: &c}
		bind := &BindResponse{baseResponse: &c}
		for _, x := range []struct {
			want []byte
			tag  int
		}{{done.packet().Bytes(), ApplicationSearchResultDone}, {bind.packet().Bytes(), ApplicationBindResponse}} {
			if got := encodeResult(&c, x.tag); !bytes.Equal(got, x.want) {
				t.Errorf("message %d, code %d, tag %d: encodings differ\n got %x\nwant %x", c.messageID, c.code, x.tag, got[:min(len(got), 64)], x.want[:min(len(x.want), 64)])
			}
		}
	}
}
