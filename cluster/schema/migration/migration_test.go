package migration

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []string
		wantErr string
	}{
		{"ordered by version", fstest.MapFS{
			"0010_b.sql": {Data: []byte("B")}, "0002_a.sql": {Data: []byte("A")}, "README": {Data: []byte("x")},
		}, []string{"0002_a.sql", "0010_b.sql"}, ""},
		{"no version", fstest.MapFS{"state.sql": {}}, nil, "does not start with a version"},
		{"version zero", fstest.MapFS{"0000_x.sql": {}}, nil, "does not start with a version"},
		{"shared version", fstest.MapFS{"0001_a.sql": {}, "1_b.sql": {}}, nil, "share version 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := parse(tt.files)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.Name)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMergeRejectsSharedVersion(t *testing.T) {
	_, err := Merge([]Migration{{Version: 100, Name: "a"}}, []Migration{{Version: 100, Name: "b"}})
	if err == nil {
		t.Fatal("Merge accepted two migrations with version 100")
	}
}
