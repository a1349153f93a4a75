package entra

import (
	"errors"
	"testing"
)

func TestDecodePage(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"next", `{"@odata.nextLink":"https://g/v1.0/users/delta?$skiptoken=A","value":[]}`, true},
		{"delta with members", `{"@odata.deltaLink":"https://g/d","value":[{"id":"G1","members@delta":[{"@odata.type":"#microsoft.graph.user","id":"U1","@removed":{"reason":"deleted"}}]}]}`, true},
		{"both links", `{"@odata.nextLink":"a","@odata.deltaLink":"b","value":[]}`, false},
		{"no link", `{"value":[]}`, false},
		{"object without id", `{"@odata.deltaLink":"b","value":[{"displayName":"x"}]}`, false},
		{"member without id", `{"@odata.deltaLink":"b","value":[{"id":"g","members@delta":[{"@odata.type":"#microsoft.graph.user"}]}]}`, false},
		{"garbage", `{"value": [`, false},
		{"wrong type", `{"@odata.deltaLink":"b","value":{"id":"x"}}`, false},
	} {
		p, err := decodePage([]byte(tc.body), 0)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok %v", tc.name, err, tc.ok)
		}
		if tc.name == "delta with members" && err == nil {
			if p.Value[0].ID != "g1" || p.Value[0].MembersDelta[0].ID != "u1" || p.Value[0].MembersDelta[0].Removed == nil {
				t.Errorf("decoded %+v", p.Value[0])
			}
		}
		if tc.name == "both links" && !errors.Is(err, errPage) {
			t.Errorf("both links: %v, want errPage", err)
		}
	}
}

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"@odata.deltaLink":"https://g/d","value":[{"id":"G1","displayName":"Sales","members@delta":[{"@odata.type":"#microsoft.graph.group","id":"g2"}]},{"id":"u9","@removed":{"reason":"changed"}}]}`))
	f.Add([]byte(`{"@odata.nextLink":"x","value":[{"id":"u1","accountEnabled":false,"proxyAddresses":["SMTP:a@b.c",null]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePage(b, 1)
		if err != nil {
			return
		}
		if (p.NextLink == "") == (p.DeltaLink == "") {
			t.Fatal("a page with neither or both links was accepted")
		}
		for _, o := range p.Value {
			if o.ID == "" {
				t.Fatal("an object without an ID was accepted")
			}
		}
	})
}
