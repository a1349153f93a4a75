package assert

// Assertions is the form of the assertions bound to one TestingT, as
// returned by New.
type Assertions struct {
	t TestingT
}

// New returns the assertions bound to t.
func New(t TestingT) *Assertions { return &Assertions{t: t} }

// Equal is Equal on a's TestingT.
func (a *Assertions) Equal(expected, actual any, msgAndArgs ...any) bool {
	return Equal(a.t, expected, actual, msgAndArgs...)
}

// Nil is Nil on a's TestingT.
func (a *Assertions) Nil(v any, msgAndArgs ...any) bool { return Nil(a.t, v, msgAndArgs...) }

// NotNil is NotNil on a's TestingT.
func (a *Assertions) NotNil(v any, msgAndArgs ...any) bool { return NotNil(a.t, v, msgAndArgs...) }

// Empty is Empty on a's TestingT.
func (a *Assertions) Empty(v any, msgAndArgs ...any) bool { return Empty(a.t, v, msgAndArgs...) }

// NotEmpty is NotEmpty on a's TestingT.
func (a *Assertions) NotEmpty(v any, msgAndArgs ...any) bool {
	return NotEmpty(a.t, v, msgAndArgs...)
}

// Len is Len on a's TestingT.
func (a *Assertions) Len(v any, n int, msgAndArgs ...any) bool { return Len(a.t, v, n, msgAndArgs...) }

// True is True on a's TestingT.
func (a *Assertions) True(v bool, msgAndArgs ...any) bool { return True(a.t, v, msgAndArgs...) }

// False is False on a's TestingT.
func (a *Assertions) False(v bool, msgAndArgs ...any) bool { return False(a.t, v, msgAndArgs...) }

// NoError is NoError on a's TestingT.
func (a *Assertions) NoError(err error, msgAndArgs ...any) bool {
	return NoError(a.t, err, msgAndArgs...)
}

// Error is Error on a's TestingT.
func (a *Assertions) Error(err error, msgAndArgs ...any) bool { return Error(a.t, err, msgAndArgs...) }

// ErrorIs is ErrorIs on a's TestingT.
func (a *Assertions) ErrorIs(err, target error, msgAndArgs ...any) bool {
	return ErrorIs(a.t, err, target, msgAndArgs...)
}

// Contains is Contains on a's TestingT.
func (a *Assertions) Contains(s, contains any, msgAndArgs ...any) bool {
	return Contains(a.t, s, contains, msgAndArgs...)
}

// Panics is Panics on a's TestingT.
func (a *Assertions) Panics(f func(), msgAndArgs ...any) bool { return Panics(a.t, f, msgAndArgs...) }

// PanicsWithValue is PanicsWithValue on a's TestingT.
func (a *Assertions) PanicsWithValue(expected any, f func(), msgAndArgs ...any) bool {
	return PanicsWithValue(a.t, expected, f, msgAndArgs...)
}
