// Package assert is a small standard-library stand-in for the subset of
// testify's assert package that upstream gldap's tests use. The fork keeps
// upstream's tests with only their import paths changed, while the module
// keeps its dependency list free of testify.
//
// Every function reports a failure with t.Errorf and returns whether the
// assertion held; package require wraps them to stop the test instead.
package assert

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// TestingT is the part of *testing.T the assertions need.
type TestingT interface {
	Errorf(format string, args ...any)
}

type helper interface {
	Helper()
}

func fail(t TestingT, msg string, msgAndArgs []any) bool {
	if h, ok := t.(helper); ok {
		h.Helper()
	}
	if extra := message(msgAndArgs); extra != "" {
		msg += "\n\tmessage: " + extra
	}
	t.Errorf("%s", msg)
	return false
}

func message(msgAndArgs []any) string {
	switch len(msgAndArgs) {
	case 0:
		return ""
	case 1:
		return fmt.Sprint(msgAndArgs[0])
	}
	if format, ok := msgAndArgs[0].(string); ok {
		return fmt.Sprintf(format, msgAndArgs[1:]...)
	}
	return fmt.Sprint(msgAndArgs...)
}

// ObjectsAreEqual reports whether expected and actual are equal: byte slices
// by content, everything else by reflect.DeepEqual.
func ObjectsAreEqual(expected, actual any) bool {
	if expected == nil || actual == nil {
		return expected == actual
	}
	eb, ok := expected.([]byte)
	if !ok {
		return reflect.DeepEqual(expected, actual)
	}
	ab, ok := actual.([]byte)
	if !ok {
		return false
	}
	if eb == nil || ab == nil {
		return eb == nil && ab == nil
	}
	return bytes.Equal(eb, ab)
}

// Equal asserts that expected and actual are equal (ObjectsAreEqual).
func Equal(t TestingT, expected, actual any, msgAndArgs ...any) bool {
	if ObjectsAreEqual(expected, actual) {
		return true
	}
	return fail(t, fmt.Sprintf("not equal:\n\texpected: %#v\n\tactual:   %#v", expected, actual), msgAndArgs)
}

// isNil reports whether v is nil or a nil value of a nillable kind.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

// Nil asserts that v is nil.
func Nil(t TestingT, v any, msgAndArgs ...any) bool {
	if isNil(v) {
		return true
	}
	return fail(t, fmt.Sprintf("expected nil, got: %#v", v), msgAndArgs)
}

// NotNil asserts that v is not nil.
func NotNil(t TestingT, v any, msgAndArgs ...any) bool {
	if !isNil(v) {
		return true
	}
	return fail(t, "expected a value, got nil", msgAndArgs)
}

// isEmpty reports whether v is nil, the zero value of its type, or a
// collection of length zero; a pointer is empty if what it points to is.
func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Chan, reflect.Map, reflect.Slice, reflect.String, reflect.Array:
		return rv.Len() == 0
	case reflect.Pointer:
		if rv.IsNil() {
			return true
		}
		return isEmpty(rv.Elem().Interface())
	}
	return rv.IsZero()
}

// Empty asserts that v is empty (see isEmpty).
func Empty(t TestingT, v any, msgAndArgs ...any) bool {
	if isEmpty(v) {
		return true
	}
	return fail(t, fmt.Sprintf("expected empty, got: %#v", v), msgAndArgs)
}

// NotEmpty asserts that v is not empty (see isEmpty).
func NotEmpty(t TestingT, v any, msgAndArgs ...any) bool {
	if !isEmpty(v) {
		return true
	}
	return fail(t, fmt.Sprintf("expected a non-empty value, got: %#v", v), msgAndArgs)
}

// Len asserts that v has length n.
func Len(t TestingT, v any, n int, msgAndArgs ...any) bool {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Chan, reflect.Map, reflect.Slice, reflect.String, reflect.Array:
		if rv.Len() == n {
			return true
		}
		return fail(t, fmt.Sprintf("expected length %d, got %d: %#v", n, rv.Len(), v), msgAndArgs)
	}
	return fail(t, fmt.Sprintf("%#v has no length", v), msgAndArgs)
}

// True asserts that v is true.
func True(t TestingT, v bool, msgAndArgs ...any) bool {
	if v {
		return true
	}
	return fail(t, "expected true", msgAndArgs)
}

// False asserts that v is false.
func False(t TestingT, v bool, msgAndArgs ...any) bool {
	if !v {
		return true
	}
	return fail(t, "expected false", msgAndArgs)
}

// NoError asserts that err is nil.
func NoError(t TestingT, err error, msgAndArgs ...any) bool {
	if err == nil {
		return true
	}
	return fail(t, fmt.Sprintf("unexpected error: %v", err), msgAndArgs)
}

// Error asserts that err is not nil.
func Error(t TestingT, err error, msgAndArgs ...any) bool {
	if err != nil {
		return true
	}
	return fail(t, "expected an error, got nil", msgAndArgs)
}

// ErrorIs asserts that errors.Is(err, target).
func ErrorIs(t TestingT, err, target error, msgAndArgs ...any) bool {
	if errors.Is(err, target) {
		return true
	}
	return fail(t, fmt.Sprintf("error %v is not %v", err, target), msgAndArgs)
}

// Contains asserts that s contains contains: a substring of a string, an
// element of a slice or array, or a key of a map.
func Contains(t TestingT, s, contains any, msgAndArgs ...any) bool {
	found, ok := includes(s, contains)
	if !ok {
		return fail(t, fmt.Sprintf("%#v cannot contain anything", s), msgAndArgs)
	}
	if found {
		return true
	}
	return fail(t, fmt.Sprintf("%#v does not contain %#v", s, contains), msgAndArgs)
}

func includes(s, elem any) (found, ok bool) {
	rv := reflect.ValueOf(s)
	switch rv.Kind() {
	case reflect.String:
		e, isString := elem.(string)
		if !isString {
			return false, true
		}
		return strings.Contains(rv.String(), e), true
	case reflect.Map:
		for _, k := range rv.MapKeys() {
			if ObjectsAreEqual(k.Interface(), elem) {
				return true, true
			}
		}
		return false, true
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			if ObjectsAreEqual(rv.Index(i).Interface(), elem) {
				return true, true
			}
		}
		return false, true
	}
	return false, false
}

// Panics asserts that f panics.
func Panics(t TestingT, f func(), msgAndArgs ...any) bool {
	if panicked, _ := recovered(f); panicked {
		return true
	}
	return fail(t, "expected a panic", msgAndArgs)
}

// PanicsWithValue asserts that f panics with the value expected.
func PanicsWithValue(t TestingT, expected any, f func(), msgAndArgs ...any) bool {
	panicked, v := recovered(f)
	if !panicked {
		return fail(t, "expected a panic", msgAndArgs)
	}
	if !ObjectsAreEqual(expected, v) {
		return fail(t, fmt.Sprintf("panic value:\n\texpected: %#v\n\tactual:   %#v", expected, v), msgAndArgs)
	}
	return true
}

func recovered(f func()) (panicked bool, v any) {
	panicked = true
	defer func() { v = recover() }()
	f()
	panicked = false
	return panicked, v
}
