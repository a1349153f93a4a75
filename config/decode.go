package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse parses a configuration held in memory. name is used in problem
// messages and as Config.Path, and its directory is the base for relative
// paths in the file. Secrets and the files the configuration names are
// read here. Any problem yields an *Error listing all of them.
func Parse(name string, data []byte) (*Config, error) {
	d := &decoder{
		problems: &problems{file: name},
		lines:    map[string]int{},
		set:      map[string]bool{},
	}
	cfg := &Config{Path: name}
	root, ok := d.parse(data)
	if !ok {
		// Validating what could be read would add noise such as "at least
		// one connector is required" to a file that is merely mistyped.
		return nil, d.problems.err()
	}
	if root != nil {
		d.lines[""] = root.Line
		d.decode(root, reflect.ValueOf(cfg).Elem(), "")
	}
	v := &validator{decoder: d, dir: filepath.Dir(name)}
	v.config(cfg)
	if err := d.problems.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decoder turns a yaml.Node tree into Go values by hand instead of with
// yaml.v3's Decode, whose errors name Go types rather than keys ("cannot
// unmarshal !!str into int") and carry no path. Walking the tree lets every
// problem carry its path and line, and records where each path came from
// so that later validation can point at lines too.
type decoder struct {
	*problems
	// lines maps every path seen in the file to the line that defines it.
	lines map[string]int
	// set records paths given a non-null value, which is how defaults
	// tell "absent" from an explicit false or 0.
	set map[string]bool
}

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse returns the single document's root node, nil for an empty file,
// and false when the file is not a usable YAML mapping.
func (d *decoder) parse(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		d.syntaxError(err, data)
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.add(extra.Line, "", "a second YAML document starts here; dirgate reads one document per file, so remove the \"---\" separator and merge the documents")
		return nil, false
	case !errors.Is(err, io.EOF):
		d.syntaxError(err, data)
		return nil, false
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	root := resolve(doc.Content[0])
	switch {
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		return nil, true
	case root.Kind != yaml.MappingNode:
		d.add(root.Line, "", "the file must be a mapping with keys such as ldap: and connectors:, got %s", describe(root))
		return nil, false
	}
	return root, true
}

func (d *decoder) syntaxError(err error, data []byte) {
	const hint = " (YAML syntax: indent with spaces, not tabs, and quote values that contain \": \" or \" #\")"
	m := yamlErrLine.FindStringSubmatch(err.Error())
	if m == nil {
		d.add(0, "", "%s%s", strings.TrimPrefix(err.Error(), "yaml: "), hint)
		return
	}
	line, _ := strconv.Atoi(m[1])
	if strings.Contains(m[2], "tab character") {
		// yaml.v3 reports the line where the enclosing block started;
		// the operator needs the line holding the tab.
		line = firstTabIndentedLine(data, line)
	}
	d.add(line, "", "%s%s", m[2], hint)
}

// firstTabIndentedLine returns the first line at or after from whose
// indentation contains a tab, or from if there is none.
func firstTabIndentedLine(data []byte, from int) int {
	for i, l := range strings.Split(string(data), "\n") {
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if i+1 >= from && strings.Contains(indent, "\t") {
			return i + 1
		}
	}
	return from
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// decode stores n into v, reporting problems under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.add(n.Line, path, "%s", err.Error())
			return
		}
		d.set[path] = true
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
		return
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.decode(n, elem.Elem(), path)
		if d.set[path] {
			v.Set(elem)
		}
		return
	case reflect.Slice:
		d.decodeSlice(n, v, path, false)
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.add(n.Line, path, "must be a single value, got %s", describe(n))
		return
	}
	tag := n.ShortTag()
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			d.add(n.Line, path, "must be true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		var i int64
		if tag != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.add(n.Line, path, "must be a whole number, got %s%s", describe(n), quotedNumberHint(n))
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.add(n.Line, path, "must be a number, got %s%s", describe(n), quotedNumberHint(n))
			return
		}
		v.SetFloat(f)
	default:
		panic("config: no decoder for " + v.Type().String())
	}
	d.set[path] = true
}

// decodeSlice fills a slice from a sequence. With csv, a single string is
// accepted too and split at commas, because short lists such as email
// domains are often written on one line.
func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string, csv bool) {
	if csv && n.Kind == yaml.ScalarNode {
		var items []string
		for item := range strings.SplitSeq(n.Value, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items))
		d.set[path] = true
		return
	}
	if n.Kind != yaml.SequenceNode {
		want, hint := "a list", ""
		if csv {
			want = "a list or a comma-separated string"
		} else if n.Kind == yaml.ScalarNode && v.Type().Elem().Kind() == reflect.String {
			hint = fmt.Sprintf("; write a list, e.g. [%s]", n.Value)
		}
		d.add(n.Line, path, "must be %s, got %s%s", want, describe(n), hint)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = resolve(item).Line
		d.decode(item, s.Index(i), p)
	}
	v.Set(s)
	d.set[path] = true
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.add(n.Line, path, "must be a mapping of keys to values, got %s", describe(n))
		return
	}
	d.set[path] = true
	fields := fieldsOf(v.Type())
	for _, kv := range d.pairs(n, path) {
		p := join(path, kv.key.Value)
		f, ok := fields.byKey[kv.key.Value]
		if !ok && path == "" && strings.HasPrefix(kv.key.Value, "x-") {
			continue // extension key, a home for YAML anchors; see Config
		}
		if !ok {
			d.lines[p] = kv.key.Line
			d.add(kv.key.Line, p, "%s", fields.unknownKey(kv.key.Value))
			continue
		}
		d.lines[p] = kv.key.Line
		if f.csv {
			if val := resolve(kv.value); !(val.Kind == yaml.ScalarNode && val.ShortTag() == "!!null") {
				d.decodeSlice(val, v.Field(f.index), p, true)
			}
			continue
		}
		d.decode(kv.value, v.Field(f.index), p)
	}
}

type pair struct{ key, value *yaml.Node }

// pairs lists a mapping's entries with YAML merge keys ("<<: *anchor")
// expanded, so that connectors can share settings through anchors. Keys
// written in the mapping itself override merged ones; a key written twice
// is a problem, since one of the two values would be silently ignored.
func (d *decoder) pairs(m *yaml.Node, path string) []pair {
	var own, merged []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, val := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.add(k.Line, path, "keys must be plain names, got %s", describe(k))
			continue
		}
		if isMerge(k) {
			merged = append(merged, d.mergeSources(resolve(val), path)...)
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.add(k.Line, join(path, k.Value), "duplicate key; it is already set on line %d, remove one of them", line)
			continue
		}
		seen[k.Value] = k.Line
		own = append(own, pair{k, val})
	}
	for _, kv := range merged {
		if _, ok := seen[kv.key.Value]; !ok {
			seen[kv.key.Value] = kv.key.Line
			own = append(own, kv)
		}
	}
	return own
}

func (d *decoder) mergeSources(n *yaml.Node, path string) []pair {
	switch n.Kind {
	case yaml.MappingNode:
		return d.pairs(n, path)
	case yaml.SequenceNode:
		var all []pair
		for _, m := range n.Content {
			all = append(all, d.mergeSources(resolve(m), path)...)
		}
		return all
	}
	d.add(n.Line, path, "\"<<\" must merge a mapping or a list of mappings, got %s", describe(n))
	return nil
}

func isMerge(k *yaml.Node) bool {
	return k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge")
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// describe names a node's kind or quotes its value, for messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.ShortTag() == "!!str" {
		return strconv.Quote(n.Value)
	}
	return n.Value
}

func quotedNumberHint(n *yaml.Node) string {
	if n.ShortTag() != "!!str" {
		return ""
	}
	if _, err := strconv.ParseFloat(n.Value, 64); err != nil {
		return ""
	}
	return "; remove the quotes"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldSet describes the YAML keys of one struct type.
type fieldSet struct {
	keys  []string // in declaration order, for messages
	byKey map[string]field
	// refused maps keys that users plausibly write but must not, to the
	// reason and the alternative.
	refused map[string]string
}

type field struct {
	index int
	csv   bool
}

var refusedKeys = map[reflect.Type]map[string]string{
	reflect.TypeFor[Connector](): {
		"bind_password": "inline passwords are not allowed, so that the file can be shared and versioned; put the password in an environment variable and set bind_password_env, or in a file readable only by dirgate and set bind_password_file",
	},
	reflect.TypeFor[ServiceAccount](): {
		"password": "plaintext passwords are not allowed; run `dirgate hash-password` and set password_hash to its output",
	},
	reflect.TypeFor[OIDCClient](): {
		"secret":        "plaintext client secrets are not allowed; run `dirgate hash-password` on the secret and set secret_hash to its output",
		"client_secret": "plaintext client secrets are not allowed; run `dirgate hash-password` on the secret and set secret_hash to its output",
	},
}

func fieldsOf(t reflect.Type) fieldSet {
	fs := fieldSet{byKey: map[string]field{}, refused: refusedKeys[t]}
	for i := range t.NumField() {
		sf := t.Field(i)
		key := sf.Tag.Get("yaml")
		if key == "" || key == "-" {
			continue
		}
		fs.keys = append(fs.keys, key)
		fs.byKey[key] = field{index: i, csv: sf.Tag.Get("config") == "csv"}
	}
	return fs
}

func (fs fieldSet) unknownKey(key string) string {
	if why, ok := fs.refused[key]; ok {
		return why
	}
	if s := suggest(key, fs.keys); s != "" {
		return fmt.Sprintf("unknown key (did you mean %q?)", s)
	}
	return "unknown key; valid keys here are " + strings.Join(fs.keys, ", ")
}

// suggest returns the known key closest to key, if it is close enough to
// be a plausible typo.
func suggest(key string, known []string) string {
	key = strings.ToLower(key)
	limit := max(1, min(3, len(key)/3))
	best, bestDist := "", limit+1
	for _, k := range known {
		if dist := editDistance(key, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: Levenshtein plus
// transposition of adjacent characters, the most common typo ("prot").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
