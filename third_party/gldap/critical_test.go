// SPDX-License-Identifier: MIT

package gldap

import (
	"slices"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// TestCriticalControls: every operation reports the controls marked
// critical, those of extended operations and of control types gldap decodes
// into types without a criticality (paging) included.
func TestCriticalControls(t *testing.T) {
	ctrl := func(oid string, critical ...bool) *ber.Packet {
		c := control(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oid, "Type"), nil)
		for _, b := range critical {
			c.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, b, "Criticality"))
		}
		return c
	}
	paging := ctrl(ControlTypePaging, true)
	pagingValue := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Paging")
	pagingValue.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 10, "Size"))
	pagingValue.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "Cookie"))
	paging.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(pagingValue.Bytes()), "Value"))
	whoAmI := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationExtendedRequest, nil, "Extended Request")
	whoAmI.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, string(ExtendedOperationWhoAmI), "Name"))

	type seen struct {
		op, name string
		critical []string
	}
	got := make(chan seen, 1)
	record := func(w *ResponseWriter, r *Request) {
		got <- seen{r.Operation(), string(r.ExtendedName()), r.CriticalControls()}
		_ = w.Write(r.NewResponse(WithResponseCode(ResultSuccess)))
	}
	mux := newTestMux(t)
	must(t, mux.Bind(record))
	must(t, mux.Search(record))
	must(t, mux.ExtendedOperation(record, ExtendedOperationWhoAmI))
	_, addr := startServer(t, mux)
	c := dialRaw(t, addr)

	tests := []struct {
		name     string
		op       *ber.Packet
		controls []*ber.Packet
		want     seen
	}{
		{"bind", simpleBindOp(), []*ber.Packet{ctrl("1.2.3.4.5", true)}, seen{"bind", "", []string{"1.2.3.4.5"}}},
		{"bind, not critical", simpleBindOp(), []*ber.Packet{ctrl("1.2.3.4.5", false), ctrl("1.2.3.4.6")}, seen{"bind", "", nil}},
		{"extended", whoAmI, []*ber.Packet{ctrl("2.16.840.1.113730.3.4.18", true), ctrl("1.2.3")}, seen{"extendedOperation", string(ExtendedOperationWhoAmI), []string{"2.16.840.1.113730.3.4.18"}}},
		{"search with paging", searchOp(t, "dc=x"), []*ber.Packet{paging, ctrl("1.2.3.4.5", true)}, seen{"search", "", []string{ControlTypePaging, "1.2.3.4.5"}}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.send(int64(i+1), tc.op, tc.controls...)
			s := <-got
			c.mustRead()
			if s.op != tc.want.op || s.name != tc.want.name || !slices.Equal(s.critical, tc.want.critical) {
				t.Fatalf("got %+v, want %+v", s, tc.want)
			}
		})
	}
}
