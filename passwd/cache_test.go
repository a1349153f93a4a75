package passwd

import "testing"

func TestCacheRemembersOnlyGoodSecrets(t *testing.T) {
	h, err := Hash("right")
	if err != nil {
		t.Fatal(err)
	}
	slow := 0
	verify := func(s string) bool { slow++; return Verify(h, s) }
	c := NewCache()
	if c.Check("k", "wrong", verify) || len(c.good) != 0 {
		t.Fatal("a wrong secret verified or was remembered")
	}
	// Twice: the second check is answered from the cache.
	if first, second := c.Check("k", "right", verify), c.Check("k", "right", verify); !first || !second {
		t.Fatal("the right secret did not verify")
	}
	if slow != 2 {
		t.Fatalf("the slow hash ran %d times, want 2 (the wrong secret, then the first right one)", slow)
	}
	if c.Check("k", "wrong", verify) || slow != 3 {
		t.Fatal("a wrong secret after a right one must verify (and fail) the slow way")
	}
	otherHash, _ := Hash("other-secret")
	if c.Check("other", "right", func(s string) bool { return Verify(otherHash, s) }) {
		t.Fatal("a secret remembered for one account verified another")
	}
	if k := c.good["k"]; string(k[:]) == "right" {
		t.Fatal("the secret itself was stored")
	}
}
