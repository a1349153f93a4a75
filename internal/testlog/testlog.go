// Package testlog is a log destination for tests that read what a server
// logged while its goroutines may still be writing.
package testlog

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer collects writes; it is safe for concurrent writers and readers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Count returns how many times s was written so far.
func (l *Buffer) Count(s string) int { return strings.Count(l.String(), s) }
