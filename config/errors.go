package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a configuration file, located precisely
// enough that an operator can jump to it in an editor.
type Problem struct {
	// File is the name the configuration was loaded under.
	File string
	// Line is 1-based; 0 when the problem is not tied to a line.
	Line int
	// Path names the offending key, e.g. "connectors[0].port"; empty for
	// problems with the file as a whole, such as YAML syntax errors.
	Path string
	// Message says what is wrong and how to fix it.
	Message string
}

// String formats the problem as FILE:LINE: PATH: MESSAGE, the shape that
// editors and CI log viewers turn into clickable locations.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is returned by Load and Parse when the configuration is unusable. It
// carries every problem found, so that one run shows the operator all of
// them instead of one per attempt.
type Error struct {
	Problems []Problem
}

// Error prints one problem per line, ordered by line number.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems for one file. Only the first problem for a
// path is kept: a value that failed to decode would otherwise also be
// reported as missing or out of range, which buries the real cause.
type problems struct {
	file  string
	list  []Problem
	paths map[string]bool
}

func (ps *problems) add(line int, path, format string, args ...any) {
	if path != "" {
		if ps.paths[path] {
			return
		}
		if ps.paths == nil {
			ps.paths = make(map[string]bool)
		}
		ps.paths[path] = true
	}
	ps.list = append(ps.list, Problem{File: ps.file, Line: line, Path: path, Message: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was collected, so that callers can return it
// directly without producing a typed-nil error.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sort.SliceStable(ps.list, func(i, j int) bool { return ps.list[i].Line < ps.list[j].Line })
	return &Error{Problems: ps.list}
}
