package cache

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

const (
	crashDirEnv  = "DIRGATE_CACHE_CRASH_DIR"
	crashModeEnv = "DIRGATE_CACHE_CRASH_MODE" // "delta": apply a delta too big for a transaction
)

// newCrashEntry is the i-th entry of the state the child writes.
func newCrashEntry(i int) *Entry {
	return user(fmt.Sprintf("new%05d", i), fmt.Sprintf("uid=new%05d,dc=x", i), fmt.Sprintf("new%05d@x.test", i))
}

// crashDelta replaces the 500 old entries with the 30,000 new ones in one
// delta: far too big for a transaction, so it is written as a generation.
func crashDelta(s *Store) {
	d := &Delta{}
	for i := range 500 {
		d.Deletes = append(d.Deletes, fmt.Sprintf("old%04d", i))
	}
	for i := range 30000 {
		d.Upserts = append(d.Upserts, newCrashEntry(i))
	}
	fmt.Println("writing")
	if _, err := s.ApplyDelta(context.Background(), "corp", d, []byte("new-cursor"), nil, false); err != nil {
		fmt.Println("delta:", err)
		os.Exit(3)
	}
	fmt.Println("committed")
	time.Sleep(time.Minute)
}

// TestCrashChild is the process that TestKillDuringApply kills; it does
// nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestKillDuringApply")
	}
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	if os.Getenv(crashModeEnv) == "delta" {
		crashDelta(s)
	}
	g, err := s.NewGeneration("corp")
	if err != nil {
		fmt.Println("gen:", err)
		os.Exit(3)
	}
	for i := range 30000 {
		if err := g.Put(newCrashEntry(i)); err != nil {
			fmt.Println("put:", err)
			os.Exit(3)
		}
		if i == 1000 {
			fmt.Println("writing")
		}
		if i%1000 == 0 {
			// Paced, so the latest kill point still finds it writing:
			// unpaced, the whole generation is written in less time.
			time.Sleep(5 * time.Millisecond)
		}
	}
	fmt.Println("committing")
	if err := g.Commit(context.Background(), []byte("new-cursor"), nil); err != nil {
		fmt.Println("commit:", err)
		os.Exit(3)
	}
	fmt.Println("committed")
	time.Sleep(time.Minute)
}

// TestKillDuringApply kills -9 a process in the middle of writing a new
// generation, at several points, and checks that the reopened cache serves
// exactly the old state or exactly the new one, never a mix. The process
// writes a full sync's generation, or applies a delta too big for one
// transaction (mode "delta").
func TestKillDuringApply(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	points := []struct {
		mode    string
		after   string // kill once the child printed this line...
		delay   time.Duration
		wantNew bool
	}{
		{"generation", "writing", 0, false},
		{"generation", "writing", 20 * time.Millisecond, false},
		{"generation", "writing", 150 * time.Millisecond, false},
		{"generation", "committing", 0, false},
		{"generation", "committing", time.Millisecond, false},
		{"generation", "committed", 0, true},
		{"delta", "writing", 0, false},
		{"delta", "writing", 20 * time.Millisecond, false},
		{"delta", "writing", 150 * time.Millisecond, false},
		{"delta", "committed", 0, true},
	}
	for _, p := range points {
		delay := p.delay
		t.Run(fmt.Sprintf("%s/%s+%v", p.mode, p.after, delay), func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var old []*Entry
			for i := range 500 {
				old = append(old, user(fmt.Sprintf("old%04d", i), fmt.Sprintf("uid=old%04d,dc=x", i), fmt.Sprintf("old%04d@x.test", i)))
			}
			commitAll(t, s, "corp", old...)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashModeEnv+"="+p.mode)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(out)
			var last string
			for lines.Scan() {
				last = lines.Text()
				if last == p.after {
					break
				}
			}
			if last != p.after {
				_ = cmd.Process.Kill()
				t.Fatalf("child did not start writing: %q", last)
			}
			time.Sleep(delay)
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()

			s, err = Open(dir, Options{})
			if err != nil {
				t.Fatalf("reopen after kill: %v", err)
			}
			defer s.Close()
			var listed []string
			err = s.View(context.Background(), func(v *View) error {
				if err := v.Scan("", func(e *Entry) (bool, error) { listed = append(listed, e.ID); return true, nil }); err != nil {
					return err
				}
				// The served state's index is whole: its probe finds its
				// entry, the other state's finds nothing.
				served := "new00007@x.test"
				if len(listed) == 500 {
					served = "old0007@x.test"
				}
				for _, probe := range []string{"old0007@x.test", "new00007@x.test"} {
					got, err := v.ByAddress(probe)
					if err != nil {
						return err
					}
					if want := map[bool]int{true: 1}[probe == served]; len(got) != want || want == 1 && !strings.HasPrefix(got[0].ID, probe[:3]) {
						return fmt.Errorf("index of %s: %d entries %s, want %d", probe, len(got), ids(got), want)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			oldState := len(listed) == 500 && strings.HasPrefix(listed[0], "old") && strings.HasPrefix(listed[499], "old")
			newState := len(listed) == 30000 && strings.HasPrefix(listed[0], "new") && strings.HasPrefix(listed[29999], "new")
			if !oldState && !newState {
				t.Fatalf("mixed state after kill: %d entries, first %q", len(listed), listed[0])
			}
			// The cursor is committed with the state it leads to.
			if c, _ := s.Cursor("corp"); newState != (string(c) == "new-cursor") {
				t.Fatalf("cursor %q with the %s state", c, map[bool]string{true: "new", false: "old"}[newState])
			}
			if p.wantNew && !newState {
				t.Fatalf("a committed generation was lost: %d entries", len(listed))
			}
			if p.after == "writing" && !oldState {
				t.Fatal("an uncommitted generation became visible")
			}
			t.Logf("kill after %v: served %s state (%d entries)", delay, map[bool]string{true: "old", false: "new"}[oldState], len(listed))
			// No generation other than the served one may remain registered.
			_ = s.db.View(func(txn *badger.Txn) error {
				it := txn.NewIterator(badger.IteratorOptions{Prefix: metaKey("gen")})
				defer it.Close()
				n := 0
				for it.Rewind(); it.Valid(); it.Next() {
					n++
				}
				if n != 1 {
					t.Errorf("%d generations registered after recovery, want 1", n)
				}
				return nil
			})
		})
	}
}
