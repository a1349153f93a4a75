// Package require is package assert's assertions that stop the test
// (t.FailNow) when they fail, standing in for testify's require in
// upstream gldap's tests.
package require

import "github.com/jimlambrt/gldap/internal/assert"

// TestingT is the part of *testing.T the assertions need.
type TestingT interface {
	assert.TestingT
	FailNow()
}

type helper interface {
	Helper()
}

// must stops the test if an assertion did not hold.
func must(t TestingT, held bool) {
	if h, ok := t.(helper); ok {
		h.Helper()
	}
	if !held {
		t.FailNow()
	}
}

// Equal is assert.Equal, stopping the test on failure.
func Equal(t TestingT, expected, actual any, msgAndArgs ...any) {
	must(t, assert.Equal(t, expected, actual, msgAndArgs...))
}

// Nil is assert.Nil, stopping the test on failure.
func Nil(t TestingT, v any, msgAndArgs ...any) { must(t, assert.Nil(t, v, msgAndArgs...)) }

// NotNil is assert.NotNil, stopping the test on failure.
func NotNil(t TestingT, v any, msgAndArgs ...any) { must(t, assert.NotNil(t, v, msgAndArgs...)) }

// Len is assert.Len, stopping the test on failure.
func Len(t TestingT, v any, n int, msgAndArgs ...any) { must(t, assert.Len(t, v, n, msgAndArgs...)) }

// True is assert.True, stopping the test on failure.
func True(t TestingT, v bool, msgAndArgs ...any) { must(t, assert.True(t, v, msgAndArgs...)) }

// False is assert.False, stopping the test on failure.
func False(t TestingT, v bool, msgAndArgs ...any) { must(t, assert.False(t, v, msgAndArgs...)) }

// NoError is assert.NoError, stopping the test on failure.
func NoError(t TestingT, err error, msgAndArgs ...any) {
	must(t, assert.NoError(t, err, msgAndArgs...))
}

// Error is assert.Error, stopping the test on failure.
func Error(t TestingT, err error, msgAndArgs ...any) { must(t, assert.Error(t, err, msgAndArgs...)) }

// Assertions is the form of the assertions bound to one TestingT, as
// returned by New.
type Assertions struct {
	t TestingT
}

// New returns the assertions bound to t.
func New(t TestingT) *Assertions { return &Assertions{t: t} }

// Equal is Equal on r's TestingT.
func (r *Assertions) Equal(expected, actual any, msgAndArgs ...any) {
	Equal(r.t, expected, actual, msgAndArgs...)
}

// Nil is Nil on r's TestingT.
func (r *Assertions) Nil(v any, msgAndArgs ...any) { Nil(r.t, v, msgAndArgs...) }

// NotNil is NotNil on r's TestingT.
func (r *Assertions) NotNil(v any, msgAndArgs ...any) { NotNil(r.t, v, msgAndArgs...) }

// Len is Len on r's TestingT.
func (r *Assertions) Len(v any, n int, msgAndArgs ...any) { Len(r.t, v, n, msgAndArgs...) }

// True is True on r's TestingT.
func (r *Assertions) True(v bool, msgAndArgs ...any) { True(r.t, v, msgAndArgs...) }

// False is False on r's TestingT.
func (r *Assertions) False(v bool, msgAndArgs ...any) { False(r.t, v, msgAndArgs...) }

// NoError is NoError on r's TestingT.
func (r *Assertions) NoError(err error, msgAndArgs ...any) { NoError(r.t, err, msgAndArgs...) }

// Error is Error on r's TestingT.
func (r *Assertions) Error(err error, msgAndArgs ...any) { Error(r.t, err, msgAndArgs...) }
