package ldapsource

import (
	"encoding/binary"
	"testing"
)

// metaData builds a replPropertyMetaData value (version 1) listing each
// attid with its local USN.
func metaData(records ...[2]int64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 1)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(records)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	for _, r := range records {
		rec := make([]byte, 48)
		binary.LittleEndian.PutUint32(rec, uint32(r[0]))
		binary.LittleEndian.PutUint32(rec[4:], 3)               // version
		binary.LittleEndian.PutUint64(rec[32:], uint64(r[1])-1) // originating USN: not the local one
		binary.LittleEndian.PutUint64(rec[40:], uint64(r[1]))
		b = append(b, rec...)
	}
	return b
}

func TestMetaDataLocalUSN(t *testing.T) {
	// Shaped as Samba returned it for an OU moved at USN 7724 (objectClass,
	// ou, instanceType and name listed).
	samba := metaData([2]int64{0, 7708}, [2]int64{0x0b, 7721}, [2]int64{0x20001, 7708}, [2]int64{attidName, 7724})
	cases := []struct {
		name   string
		b      []byte
		usn    int64
		wantOK bool
	}{
		{"name listed", samba, 7724, true},
		{"name first", metaData([2]int64{attidName, 12}, [2]int64{0x0b, 40}), 12, true},
		{"name not listed", metaData([2]int64{0x0b, 40}), 0, false},
		{"empty", nil, 0, false},
		{"version 2", append([]byte{2}, samba[1:]...), 0, false},
		{"count beyond the value", samba[:len(samba)-1], 0, false},
		{"huge count", append(append([]byte{}, samba[:8]...), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0), 0, false},
	}
	for _, c := range cases {
		usn, ok := metaDataLocalUSN(c.b, attidName)
		if ok != c.wantOK || usn != c.usn {
			t.Errorf("%s: got %d, %v; want %d, %v", c.name, usn, ok, c.usn, c.wantOK)
		}
	}
}

func FuzzMetaDataLocalUSN(f *testing.F) {
	f.Add(metaData([2]int64{attidName, 7724}), uint32(attidName))
	f.Add(metaData(), uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, attid uint32) {
		if _, ok := metaDataLocalUSN(b, attid); ok && len(b) < 16+48 {
			t.Fatalf("found attid %x in %d bytes, too short for one record", attid, len(b))
		}
	})
}
