package fakecloud

import (
	"reflect"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

type state struct {
	Kind string `json:"k"`
	Off  int    `json:"o"`
}

func TestPKCEMatches(t *testing.T) {
	// RFC 7636 appendix B
	const verifier, challenge = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	for _, tc := range []struct {
		verifier, challenge string
		want                bool
	}{
		{verifier, challenge, true},
		{verifier + "x", challenge, false},
		{verifier, challenge + "=", false}, // padded
		{challenge, verifier, false},
		{"", challenge, false},
		{verifier, verifier, false}, // plain method
	} {
		if got := PKCEMatches(tc.verifier, tc.challenge); got != tc.want {
			t.Errorf("PKCEMatches(%q, %q) = %v, want %v", tc.verifier, tc.challenge, got, tc.want)
		}
	}
}

func TestSealerRefusesForeignAndEdited(t *testing.T) {
	s, other := NewSealer(), NewSealer()
	tok := s.Seal(state{"users", 4})
	var got state
	if !s.Open(tok, &got) || got != (state{"users", 4}) {
		t.Fatalf("own token: %+v", got)
	}
	edited := []byte(tok)
	edited[1] ^= 1
	for name, bad := range map[string]string{
		"foreign": other.Seal(state{"users", 4}), "edited": string(edited), "no mac": tok[:len(tok)-23], "empty": "",
	} {
		if s.Open(bad, &got) {
			t.Errorf("%s token opened", name)
		}
	}
}

// FuzzSealer edits one byte of a sealed token: it is refused or reads back
// exactly what was sealed.
func FuzzSealer(f *testing.F) {
	s := NewSealer()
	orig := state{"members:g1", 200}
	tok := s.Seal(orig)
	f.Add(0, byte('A'))
	f.Add(len(tok)-1, byte('z'))
	f.Fuzz(func(t *testing.T, at int, b byte) {
		edited := []byte(tok)
		if at >= 0 && at < len(edited) {
			edited[at] = b
		}
		var st state
		if s.Open(string(edited), &st) && !reflect.DeepEqual(st, orig) {
			t.Fatalf("edited token %q opened as %+v", edited, st)
		}
	})
}

func TestKeyRingRotation(t *testing.T) {
	var r KeyRing
	verify := func(tok string) (string, bool) {
		parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		kid := parsed.Headers[0].KeyID
		set := r.JWKS()
		keys := set.Key(kid)
		if len(keys) != 1 {
			return kid, false
		}
		var c map[string]any
		return kid, parsed.Claims(keys[0].Key, &c) == nil
	}
	first, err := r.Sign(map[string]any{"sub": "a"})
	if err != nil {
		t.Fatal(err)
	}
	kid1, ok := verify(first)
	if !ok {
		t.Fatal("first token does not verify")
	}
	r.Rotate()
	second, _ := r.Sign(map[string]any{"sub": "a"})
	kid2, ok := verify(second)
	if !ok || kid2 == kid1 {
		t.Fatalf("after rotation: kid %s (was %s), verifies %v", kid2, kid1, ok)
	}
	if _, ok := verify(first); !ok {
		t.Fatal("the previous key is no longer published")
	}
	r.Rotate()
	if _, ok := verify(first); ok {
		t.Fatal("a key two rotations old is still published")
	}
	r.SignWithUnpublishedKey(true)
	forged, _ := r.Sign(map[string]any{"sub": "a"})
	if _, ok := verify(forged); ok {
		t.Fatal("a token under an unpublished kid verified")
	}
	r.SignWithUnpublishedKey(false)
	r.Tamper(func(c map[string]any) { c["sub"] = "b" })
	tampered, _ := r.Sign(map[string]any{"sub": "a"})
	parsed, _ := jwt.ParseSigned(tampered, []jose.SignatureAlgorithm{jose.RS256})
	var c map[string]any
	_ = parsed.UnsafeClaimsWithoutVerification(&c)
	if c["sub"] != "b" {
		t.Fatalf("tamper hook not applied: %v", c)
	}
}
