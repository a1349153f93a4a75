package sources

import (
	"io"
	"log/slog"
	"testing"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
)

// TestEveryTypeOpens: every type of the registry has an opener, and the
// opener accepts a connector of that type with the type's defaults.
func TestEveryTypeOpens(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, typ := range dirtype.All() {
		c := &config.Connector{Name: "c", Type: typ.Name, Host: "127.0.0.1", Port: 389, Encryption: config.EncryptionNone,
			RootDN: "dc=example,dc=com", UserFilter: typ.UserFilter, GroupFilter: typ.GroupFilter, MailAttribute: "mail"}
		if _, ok := openers[typ.Name]; !ok {
			t.Errorf("type %s: no opener", typ.Name)
			continue
		}
		if _, err := New(c, log); err != nil {
			t.Errorf("type %s: %v", typ.Name, err)
		}
	}
	if len(openers) != len(dirtype.All()) {
		t.Errorf("%d openers for %d types: an opener names a type the registry does not have", len(openers), len(dirtype.All()))
	}
}

func TestUnknownType(t *testing.T) {
	if _, err := New(&config.Connector{Name: "c", Type: "x500"}, slog.Default()); err == nil {
		t.Fatal("a connector of an unknown type opened")
	}
}
