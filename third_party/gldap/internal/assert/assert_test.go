package assert

import (
	"errors"
	"fmt"
	"testing"
)

type recorder struct{ failed bool }

func (r *recorder) Errorf(string, ...any) { r.failed = true }

// TestAssertions checks that each assertion holds, and fails, where
// testify's would: upstream's tests rely on both.
func TestAssertions(t *testing.T) {
	errBase := errors.New("base")
	var nilPtr *int
	tests := []struct {
		name string
		call func(TestingT) bool
		hold bool
	}{
		{"Equal bytes", func(t TestingT) bool { return Equal(t, []byte("a"), []byte("a")) }, true},
		{"Equal nil and empty bytes", func(t TestingT) bool { return Equal(t, []byte(nil), []byte{}) }, false},
		{"Equal types differ", func(t TestingT) bool { return Equal(t, int64(1), 1) }, false},
		{"Equal structs", func(t TestingT) bool { return Equal(t, struct{ A int }{1}, struct{ A int }{1}) }, true},
		{"Equal differ", func(t TestingT) bool { return Equal(t, "a", "b", "msg %d", 1) }, false},
		{"Nil typed nil", func(t TestingT) bool { return Nil(t, nilPtr) }, true},
		{"Nil value", func(t TestingT) bool { return Nil(t, 0) }, false},
		{"NotNil typed nil", func(t TestingT) bool { return NotNil(t, nilPtr) }, false},
		{"Empty zero struct", func(t TestingT) bool { return Empty(t, struct{ A int }{}) }, true},
		{"Empty string", func(t TestingT) bool { return Empty(t, "x") }, false},
		{"NotEmpty slice", func(t TestingT) bool { return NotEmpty(t, []int{1}) }, true},
		{"NotEmpty nil pointer", func(t TestingT) bool { return NotEmpty(t, nilPtr) }, false},
		{"Len", func(t TestingT) bool { return Len(t, map[int]int{1: 1}, 1) }, true},
		{"Len wrong", func(t TestingT) bool { return Len(t, "ab", 1) }, false},
		{"Len no length", func(t TestingT) bool { return Len(t, 1, 1) }, false},
		{"True", func(t TestingT) bool { return True(t, false) }, false},
		{"False", func(t TestingT) bool { return False(t, false) }, true},
		{"NoError", func(t TestingT) bool { return NoError(t, errBase) }, false},
		{"Error", func(t TestingT) bool { return Error(t, nil) }, false},
		{"ErrorIs wrapped", func(t TestingT) bool { return ErrorIs(t, fmt.Errorf("x: %w", errBase), errBase) }, true},
		{"ErrorIs other", func(t TestingT) bool { return ErrorIs(t, errors.New("base"), errBase) }, false},
		{"Contains substring", func(t TestingT) bool { return Contains(t, "abc", "b") }, true},
		{"Contains element", func(t TestingT) bool { return Contains(t, []string{"a"}, "b") }, false},
		{"Contains key", func(t TestingT) bool { return Contains(t, map[string]int{"k": 1}, "k") }, true},
		{"Contains not a collection", func(t TestingT) bool { return Contains(t, 1, 1) }, false},
		{"Panics", func(t TestingT) bool { return Panics(t, func() { panic("x") }) }, true},
		{"Panics not", func(t TestingT) bool { return Panics(t, func() {}) }, false},
		{"PanicsWithValue", func(t TestingT) bool { return PanicsWithValue(t, "x", func() { panic("x") }) }, true},
		{"PanicsWithValue other", func(t TestingT) bool { return PanicsWithValue(t, "x", func() { panic("y") }) }, false},
		{"Assertions", func(t TestingT) bool { return New(t).Equal(1, 2) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			held := tc.call(r)
			if held != tc.hold || r.failed == tc.hold {
				t.Errorf("held %v, reported failure %v; want held %v", held, r.failed, tc.hold)
			}
		})
	}
}
