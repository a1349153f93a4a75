package cache

import (
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestRedactValue: Badger's refusal of a value over its size limit keeps
// its sizes and loses the hex dump of the value's start.
func TestRedactValue(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithValueLogFileSize(1 << 20).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	value := []byte(`{"v":1,"users":"https://graph.example/v1.0/users/delta?$deltatoken=SECRET` + strings.Repeat("x", 2<<20) + `"}`)
	err = db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("k"), value) })
	if err == nil || !strings.Contains(err.Error(), `{"v":1,"users`) {
		t.Fatalf("Badger accepted the value or changed its refusal: %v", err)
	}
	got := redactValue(err).Error()
	if strings.Contains(got, `{"v":1`) || strings.Contains(got, "00000000") || !strings.Contains(got, "exceeded") {
		t.Errorf("redacted error %q", got)
	}
	if other := badger.ErrTxnTooBig; redactValue(other) != other {
		t.Error("an error with no dump was changed")
	}
}
