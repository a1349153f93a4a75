package statetest

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Release0 describes the cache in testdata/cache-v0.tar.gz, written by the
// release before the state stores (through its Meta side store): what an
// upgrade must still read.
type Release0 struct {
	// Refresh tokens, all of client "app", stored to expire in 2035:
	Live      string `json:"live"`      // family fam-live, account u-1
	Spent     string `json:"spent"`     // rotated once; Successor is its successor (fam-rot, u-2)
	Successor string `json:"successor"` // live
	Revoked   string `json:"revoked"`   // of the revoked family fam-revoked
	Legacy    string `json:"legacy"`    // stored without a family (u-4)
	Expired   string `json:"expired"`   // expired in 2025
	// Kids are the signing keys, "kid/alg", newest first.
	Kids []string `json:"kids"`
}

// The other records of the release-0 cache.
const (
	Release0Connector = "corp"
	// Release0Account has an offline verifier of Release0Password, stamped
	// with Release0Stamp.
	Release0Account  = "u-1"
	Release0Password = "s3cret-Passw0rd"
	Release0Stamp    = "pwdChangedTime:20250601120000Z"
	// Release0Cursor is the connector's incremental-sync cursor.
	Release0Cursor = "syncrepl-cookie-1"
)

// OpenRelease0 unpacks a copy of the release-0 cache into a temporary
// directory and returns that directory (to open as a cache) and its
// description.
func OpenRelease0(t testing.TB) (string, Release0) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	testdata := filepath.Join(filepath.Dir(file), "..", "testdata")
	var r Release0
	b, err := os.ReadFile(filepath.Join(testdata, "cache-v0.json"))
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := untar(filepath.Join(testdata, "cache-v0.tar.gz"), dir); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "cache"), r
}

// untar extracts the regular files and directories of a gzipped tar
// archive of trusted test data into dir.
func untar(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		path := filepath.Join(dir, filepath.Clean(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o700)
		case tar.TypeReg:
			err = writeFile(path, tr)
		}
		if err != nil {
			return err
		}
	}
}

func writeFile(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
