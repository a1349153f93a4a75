package demodir

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// record is one LDIF entry: its DN and attributes in file order.
type record struct {
	dn    string
	attrs []attr
}

type attr struct {
	name   string
	values []string
}

func (r *record) values(name string) []string {
	for _, a := range r.attrs {
		if strings.EqualFold(a.name, name) {
			return a.values
		}
	}
	return nil
}

func (r *record) add(name, value string) {
	for i := range r.attrs {
		if strings.EqualFold(r.attrs[i].name, name) {
			r.attrs[i].values = append(r.attrs[i].values, value)
			return
		}
	}
	r.attrs = append(r.attrs, attr{name, []string{value}})
}

// parseLDIF reads RFC 2849 content records: "name: value", "name:: base64",
// folded lines, comments. It is enough for the bundled demo file; changetype
// records and URL values are refused.
func parseLDIF(rd io.Reader) ([]*record, error) {
	var (
		out   []*record
		cur   *record
		lines []string
		lineN int
	)
	flush := func() error {
		for _, l := range lines {
			name, value, err := parseLine(l)
			if err != nil {
				return fmt.Errorf("ldif line %d: %w", lineN, err)
			}
			if strings.EqualFold(name, "dn") {
				if cur != nil {
					return fmt.Errorf("ldif line %d: second dn in one record", lineN)
				}
				cur = &record{dn: value}
				continue
			}
			if cur == nil {
				return fmt.Errorf("ldif line %d: attribute before dn", lineN)
			}
			if strings.EqualFold(name, "changetype") {
				return fmt.Errorf("ldif line %d: change records are not supported", lineN)
			}
			cur.add(name, value)
		}
		if cur != nil {
			out = append(out, cur)
		}
		cur, lines = nil, nil
		return nil
	}
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		lineN++
		l := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(l, "#"):
		case l == "":
			if err := flush(); err != nil {
				return nil, err
			}
		case strings.HasPrefix(l, " "):
			if len(lines) == 0 {
				return nil, fmt.Errorf("ldif line %d: continuation without a line", lineN)
			}
			lines[len(lines)-1] += l[1:]
		default:
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, flush()
}

func parseLine(l string) (name, value string, err error) {
	i := strings.IndexByte(l, ':')
	if i <= 0 {
		return "", "", fmt.Errorf("missing ':' in %q", l)
	}
	name, rest := l[:i], l[i+1:]
	switch {
	case strings.HasPrefix(rest, ":"):
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest[1:]))
		if err != nil {
			return "", "", fmt.Errorf("attribute %s: bad base64: %w", name, err)
		}
		return name, string(b), nil
	case strings.HasPrefix(rest, "<"):
		return "", "", fmt.Errorf("attribute %s: URL values are not supported", name)
	}
	return name, strings.TrimLeft(rest, " "), nil
}
