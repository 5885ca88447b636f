package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a configuration, located in its file.
type Problem struct {
	File  string // file name as given to Load
	Line  int    // 1-based; 0 when the field is not in the file (a default)
	Field string // YAML path, e.g. "routes[3].upstream"
	Msg   string
}

// Error formats p as "gateway.yaml:42: routes[3].upstream: unknown upstream \"apii\"".
func (p *Problem) Error() string {
	loc := p.File
	if p.Line > 0 {
		loc += ":" + strconv.Itoa(p.Line)
	}
	if p.Field == "" {
		return loc + ": " + p.Msg
	}
	return loc + ": " + p.Field + ": " + p.Msg
}

// Problems is every problem of one file, in file order. It is returned by Load and Parse
// as an error; errors.As finds it.
type Problems []*Problem

// Error joins the problems one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads, expands, decodes and validates the file at path. getenv resolves ${NAME};
// pass os.Getenv. On any problem it returns Problems and a nil Config.
func Load(path string, getenv func(string) string) (*Config, error) {
	return LoadWith(path, Options{Getenv: getenv})
}

// Parse is Load for bytes already read; name is used in problem locations.
func Parse(name string, data []byte, getenv func(string) string) (*Config, error) {
	return ParseWith(name, data, Options{Getenv: getenv})
}

// Options tune LoadWith and ParseWith.
type Options struct {
	// Getenv resolves ${NAME}; nil resolves nothing.
	Getenv func(string) string
	// Uses, when not nil, lists the fields the caller reads, as YAML paths ("routes",
	// "issuer.enabled"). A ${NAME} that is unset in any other field is left empty and is
	// no problem, nor is what validation says of that field: a command that needs no
	// secret does not refuse to run because the secret's variable is unset. Nil: every
	// field is used.
	Uses []string
	// Checks run after the file's own validation, even when it found problems, and add
	// theirs to the same list: so one run reports everything.
	Checks []Check
}

// Check is a check of a decoded configuration beyond its own consistency, e.g. that the
// files it names load. It reports problems by field; it must not use the network.
type Check func(*Config) []FieldProblem

// FieldProblem is one problem a Check found, by YAML path (e.g. "tls.cert_file").
type FieldProblem struct {
	Field string
	Msg   string
}

// LoadWith is Load with options.
func LoadWith(path string, o Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseWith(filepath.Base(path), data, o)
}

// ParseWith is Parse with options. Every problem is reported in one pass: those of the
// YAML itself (unknown fields, wrong types, unset variables), then validation's and the
// Checks', but not validation's on a field already reported (a value that did not decode
// is not also "required").
func ParseWith(name string, data []byte, o Options) (*Config, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	cfg := Default()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) { // empty file: all defaults
		// yaml.v3 omits the line when the problem is on the first one.
		return nil, Problems{{File: name, Line: max(yamlErrLine(err), 1), Msg: "invalid YAML: " + trimYAMLErr(err)}}
	}
	// Only the first document would be read: refuse a second one rather than ignore it.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, Problems{{File: name, Line: max(yamlErrLine(err), 1), Msg: "invalid YAML: " + trimYAMLErr(err)}}
	case len(next.Content) == 1 && next.Content[0].ShortTag() == "!!null": // a trailing "---"
	default:
		return nil, Problems{{File: name, Line: max(next.Line, 1), Msg: "a second YAML document: the file must hold exactly one"}}
	}
	d := &decoder{file: name, getenv: getenv, uses: o.Uses, lines: map[string]int{}, budget: max(100_000, 4*len(data))}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root := doc.Content[0]
		d.expand(root, "")
		d.check(root, reflect.TypeOf(cfg), "")
		if d.budget < 0 {
			// Decoding would walk the same exponential tree.
			return nil, d.sorted()
		}
		if err := root.Decode(&cfg); err != nil && len(d.problems) == 0 {
			return nil, Problems{{File: name, Line: yamlErrLine(err), Msg: trimYAMLErr(err)}}
		}
		// (With problems found already, the values that did decode are validated too.)
	}
	cfg.applyDefaults(d.present, d.valued)
	reported := d.reported()
	for _, fe := range cfg.validate() {
		d.addLate(reported, fe.path, fe.msg)
	}
	for _, check := range o.Checks {
		for _, fp := range check(&cfg) {
			d.addLate(reported, fp.Field, fp.Msg)
		}
	}
	if len(d.problems) > 0 {
		return nil, d.sorted()
	}
	return &cfg, nil
}

// reported is the fields the YAML pass found a problem with, the fields an unknown one
// was suggested for, and the fields left unresolved (Options.Uses).
func (d *decoder) reported() []string {
	out := slices.Clone(d.shadow)
	for _, p := range d.problems {
		out = append(out, p.Field)
	}
	return out
}

// addLate adds a validation or Check problem unless its field, or one it lies within,
// is already reported.
func (d *decoder) addLate(reported []string, path, msg string) {
	for _, r := range reported {
		if r != "" && (path == r || within(path, r)) {
			return
		}
	}
	d.problems = append(d.problems, &Problem{File: d.file, Line: d.lineOf(path), Field: path, Msg: msg})
}

// within reports whether path lies inside the field parent ("a.b[0]" inside "a" and "a.b").
func within(path, parent string) bool {
	return strings.HasPrefix(path, parent+".") || strings.HasPrefix(path, parent+"[")
}

// sorted is the problems in file order.
func (d *decoder) sorted() Problems {
	slices.SortStableFunc(d.problems, func(a, b *Problem) int { return a.Line - b.Line })
	return d.problems
}

var (
	yamlLineRE       = regexp.MustCompile(`line (\d+)`)
	yamlLinePrefixRE = regexp.MustCompile(`^line \d+: `)
)

func yamlErrLine(err error) int {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func trimYAMLErr(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	s = strings.TrimPrefix(s, "unmarshal errors:\n  ")
	return yamlLinePrefixRE.ReplaceAllString(s, "") // the line is in Problem.Line
}

// decoder walks the YAML tree beside the Go types, so every field's line is known and
// unknown keys and ill-typed values are reported with their path.
type decoder struct {
	file     string
	getenv   func(string) string
	lines    map[string]int  // YAML path -> line
	present  map[string]bool // paths set in the file (for defaults that depend on presence)
	valued   map[string]bool // paths set in the file to a value other than null (explicit zeros included)
	problems Problems
	budget   int      // nodes check may still visit: aliases must not make it walk a tree exponentially large
	uses     []string // Options.Uses
	shadow   []string // fields no later problem is reported on (see reported)
}

// used reports whether the caller reads the field at path (Options.Uses).
func (d *decoder) used(path string) bool {
	if d.uses == nil {
		return true
	}
	for _, u := range d.uses {
		if path == u || within(path, u) || within(u, path) {
			return true
		}
	}
	return false
}

func (d *decoder) add(line int, field, format string, args ...any) {
	d.problems = append(d.problems, &Problem{File: d.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// lineOf finds the line of path, or of its nearest ancestor present in the file.
func (d *decoder) lineOf(path string) int {
	for path != "" {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

var envRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expand replaces ${NAME} and ${NAME:-default} in scalar values (never in keys, so the
// structure of the file cannot be changed by the environment). An unset ${NAME} without a
// default is a problem: an empty secret or address is worse than a refusal to start.
func (d *decoder) expand(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = envRE.ReplaceAllStringFunc(n.Value, func(m string) string {
			sub := envRE.FindStringSubmatch(m)
			if v := d.getenv(sub[1]); v != "" {
				return v
			}
			if sub[2] != "" {
				return sub[3]
			}
			if !d.used(path) {
				d.shadow = append(d.shadow, path) // left empty: the caller does not read it
				return ""
			}
			d.add(n.Line, path, "environment variable %s is not set (write ${%s:-} to allow empty)", sub[1], sub[1])
			return ""
		})
		if n.Style == 0 || n.Style == yaml.TaggedStyle {
			n.Tag = "" // let the expanded plain value resolve to its own type (int, bool, ...)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			d.expand(n.Content[i+1], join(path, n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.expand(c, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	secretType   = reflect.TypeOf(Secret(""))
	daysType     = reflect.TypeOf(Days(0))
)

// check walks n against t: records lines, reports unknown keys and values of the wrong type.
func (d *decoder) check(n *yaml.Node, t reflect.Type, path string) {
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.add(n.Line, path, "aliases expand to too many values")
		}
		return
	}
	if d.present == nil {
		d.present, d.valued = map[string]bool{}, map[string]bool{}
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		if _, ok := d.lines[path]; !ok {
			d.lines[path] = n.Line
		}
		d.present[path] = true
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // null leaves the default in place
	}
	if path != "" {
		d.valued[path] = true
	}
	switch {
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.add(n.Line, path, "expected a mapping, got %s", kindName(n))
			return
		}
		fields := map[string]reflect.StructField{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag != "" && tag != "-" {
				fields[tag] = f
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			d.lines[p] = k.Line
			f, ok := fields[k.Value]
			if !ok {
				hint := suggest(k.Value, fields)
				d.add(k.Line, p, "unknown field%s", hint)
				if hint != "" {
					// The field meant is not "required" too: it was mistyped, as said.
					d.shadow = append(d.shadow, join(path, suggestedName(k.Value, fields)))
				}
				continue
			}
			if seen[k.Value] {
				d.add(k.Line, p, "duplicate field")
				continue
			}
			seen[k.Value] = true
			d.check(v, f.Type, p)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.add(n.Line, path, "expected a mapping, got %s", kindName(n))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if seen[k.Value] {
				d.add(k.Line, p, "duplicate key")
				continue
			}
			seen[k.Value] = true
			d.lines[p] = k.Line
			d.check(v, t.Elem(), p)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.add(n.Line, path, "expected a list, got %s", kindName(n))
			return
		}
		for i, c := range n.Content {
			d.check(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			d.add(n.Line, path, "expected a single value, got %s", kindName(n))
			return
		}
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			d.add(n.Line, path, "%s", scalarMsg(t, n.Value))
		}
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func scalarMsg(t reflect.Type, v string) string {
	switch {
	case t == durationType:
		return fmt.Sprintf("invalid duration %q (write e.g. 500ms, 30s, 1m, 2h)", v)
	case t == daysType:
		return fmt.Sprintf("invalid duration %q (write e.g. 90d, 36h; 0 turns it off)", v)
	case t == secretType || t.Kind() == reflect.String:
		return fmt.Sprintf("invalid string %q", v)
	case t.Kind() == reflect.Bool:
		return fmt.Sprintf("invalid boolean %q (write true or false)", v)
	case t.Kind() == reflect.Int:
		return fmt.Sprintf("invalid integer %q", v)
	default:
		return fmt.Sprintf("invalid value %q", v)
	}
}

// suggest names a known field within edit distance 2 of an unknown one.
func suggest(key string, fields map[string]reflect.StructField) string {
	best := suggestedName(key, fields)
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// suggestedName is the known field within edit distance 2 of key, or "".
func suggestedName(key string, fields map[string]reflect.StructField) string {
	best, bestD := "", 3
	for name := range fields {
		if dist := editDistance(key, name); dist < bestD || (dist == bestD && name < best) {
			best, bestD = name, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
