package passwd

import (
	"strings"
	"testing"
)

// Fixtures made by tools other than this package, so that Verify is
// checked against real-world encodings rather than only against itself:
//
//	echo -n "correct horse" | argon2 dirgate-testsalt -id -t 2 -m 15 -p 1 -l 32 -e
//	htpasswd -nbBC 5 "" "battery staple"
const (
	argon2Fixture = "$argon2id$v=19$m=32768,t=2,p=1$ZGlyZ2F0ZS10ZXN0c2FsdA$6kz3aDq1d8f2yuoUPh7njcYTFF2gWEsjOCvn0Wqlam8"
	bcryptFixture = "$2y$05$6T7y3IJbRWFvbe/CeoaJUuUKwo5avGH0GptROCT7mdUOXhU0eSNPy"
)

func TestVerify(t *testing.T) {
	tests := []struct {
		hash, password string
		want           bool
	}{
		{argon2Fixture, "correct horse", true},
		{argon2Fixture, "correct horsE", false},
		{argon2Fixture, "", false},
		{bcryptFixture, "battery staple", true},
		{bcryptFixture, "battery stapler", false},
		{strings.Replace(bcryptFixture, "$2y$", "$2b$", 1), "battery staple", true},
		{strings.Replace(bcryptFixture, "$2y$", "$2a$", 1), "battery staple", true},
		{"correct horse", "correct horse", false},
		{"$argon2id$v=19$m=32768,t=2,p=1$bad", "correct horse", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := Verify(tt.hash, tt.password); got != tt.want {
			t.Errorf("Verify(%q, %q) = %v, want %v", tt.hash, tt.password, got, tt.want)
		}
	}
}

func TestHash(t *testing.T) {
	h1, err := Hash("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := Hash("s3cret")
	if h1 == h2 {
		t.Error("two hashes of one password are equal; the salt is not random")
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("unexpected hash form %q", h1)
	}
	if err := CheckHash(h1); err != nil {
		t.Errorf("own hash refused by the policy: %v", err)
	}
	if !Verify(h1, "s3cret") || Verify(h1, "s3cret ") || Verify(h1, "") {
		t.Error("round trip failed")
	}
}

func TestCheckHash(t *testing.T) {
	tests := []struct {
		hash, wantErr string // wantErr "" means accepted
	}{
		{argon2Fixture, ""},
		{bcryptFixture, ""},
		{strings.Replace(bcryptFixture, "$2y$", "$2b$", 1), ""},
		{"hunter2", "plaintext passwords are refused"},
		{"$argon2i$v=19$m=32768,t=2,p=1$ZGlyZ2F0ZS10ZXN0c2FsdA$6kz3aDq1d8f2yuoUPh7njcYTFF2gWEsjOCvn0Wqlam8", "only the argon2id variant"},
		{"$argon2id$v=19$m=1900000000,t=2,p=1$ZGlyZ2F0ZS10ZXN0c2FsdA$6kz3aDq1d8f2yuoUPh7njcYTFF2gWEsjOCvn0Wqlam8", "m must be between"},
		{"$argon2id$v=19$m=32768,t=2,p=1$c2FsdA$6kz3aDq1d8f2yuoUPh7njcYTFF2gWEsjOCvn0Wqlam8", "salt must be at least 8 bytes"},
		{"$argon2id$v=16$m=32768,t=2,p=1$ZGlyZ2F0ZS10ZXN0c2FsdA$6kz3aDq1d8f2yuoUPh7njcYTFF2gWEsjOCvn0Wqlam8", "version"},
		{"$2y$05$short", "malformed bcrypt hash"},
		{"$1$md5crypt$hunter2", "unsupported hash scheme"},
	}
	for _, tt := range tests {
		err := CheckHash(tt.hash)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("CheckHash(%q) = %v, want nil", tt.hash, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("CheckHash(%q) = %v, want an error containing %q", tt.hash, err, tt.wantErr)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("CheckHash(%q) quotes what may be a password: %v", tt.hash, err)
		}
	}
}

// FuzzCheckHash feeds configured-hash strings to the policy: it must not
// panic, and a hash it refuses must never verify a password (Verify is only
// called on refused hashes, since an accepted one may legitimately ask for
// gigabytes of argon2id memory).
func FuzzCheckHash(f *testing.F) {
	for _, s := range []string{argon2Fixture, bcryptFixture, "hunter2", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=,t=1,p=1$$", "$2b$04$"} {
		f.Add(s, "hunter2")
	}
	f.Fuzz(func(t *testing.T, h, password string) {
		if CheckHash(h) == nil {
			return
		}
		if Verify(h, password) {
			t.Errorf("Verify(%q, %q) matched a hash the policy refuses", h, password)
		}
	})
}
