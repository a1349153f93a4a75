package cache

import (
	"errors"
	"strings"
)

// redactValue drops what Badger appends to its refusal of a key or value
// over its size limit: a hex dump of the first KB, which for a cursor or
// an entry holds upstream state (a delta link's token, addresses) that
// must not reach a run's error, the status page or the log.
func redactValue(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	i := strings.Index(msg, " limit. ")
	if i < 0 || !strings.Contains(msg[i:], ":\n") {
		return err
	}
	return errors.New(msg[:i+len(" limit.")] + " (its content is not shown)")
}
