package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"
)

// output is how the keys, users and teams commands print what they got: -o table (the
// default: an aligned table, or "field: value" lines for one object), -o json (the API's
// JSON as it came), -o yaml (the same document as YAML); -q prints IDs only, one a line;
// --no-headers leaves out a table's header line.
type output struct {
	format    string
	json      bool // --json, the older spelling of -o json
	quiet     bool
	noHeaders bool
}

// Output formats.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// register adds -o/--output, --json, -q/--quiet and --no-headers to fs.
func (o *output) register(fs *flag.FlagSet) {
	const formatUsage = "output format: table, json or yaml (default table)"
	fs.StringVar(&o.format, "o", "", formatUsage)
	fs.StringVar(&o.format, "output", "", formatUsage)
	fs.BoolVar(&o.json, "json", false, "the same as -o json")
	fs.BoolVar(&o.quiet, "q", false, "print IDs only, one a line")
	fs.BoolVar(&o.quiet, "quiet", false, "print IDs only, one a line")
	fs.BoolVar(&o.noHeaders, "no-headers", false, "leave out the table's header line")
}

// check validates the flags after parsing and settles the format; what names the
// command in errors.
func (o *output) check(what string) error {
	if o.json {
		if o.format != "" && o.format != formatJSON {
			return fmt.Errorf("%s: --json and -o %s disagree", what, o.format)
		}
		o.format = formatJSON
	}
	switch o.format {
	case "":
		o.format = formatTable
	case formatTable, formatJSON, formatYAML:
	default:
		return fmt.Errorf("%s: -o %q: want table, json or yaml", what, o.format)
	}
	if o.quiet && o.format != formatTable {
		return fmt.Errorf("%s: --quiet prints IDs only; it takes no -o %s", what, o.format)
	}
	return nil
}

// structured reports whether the answer is printed as a document (JSON or YAML).
func (o output) structured() bool { return o.format == formatJSON || o.format == formatYAML }

// document prints an API answer as JSON (as it came) or YAML.
func (o output) document(w io.Writer, body []byte) error {
	if o.format == formatYAML {
		return writeYAML(w, body)
	}
	return writeRaw(w, body)
}

// table prints rows under header as an aligned table; with quiet, only each row's first
// cell (the ID); none is printed instead of an empty table with its header.
func (o output) table(w io.Writer, header []string, rows [][]string, none string) error {
	if o.quiet {
		for _, r := range rows {
			if _, err := fmt.Fprintln(w, r[0]); err != nil {
				return err
			}
		}
		return nil
	}
	if len(rows) == 0 {
		if o.noHeaders {
			return nil
		}
		_, err := fmt.Fprintln(w, none)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if !o.noHeaders {
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = cell(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// fieldLines prints one object as aligned "field: value" lines.
func fieldLines(w io.Writer, rows [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], cell(r[1]))
	}
	return tw.Flush()
}

// writeYAML prints a JSON document as block-style YAML with the same keys in the same
// order; strings that would read as another type ("123", "true", "null") stay quoted.
func writeYAML(w io.Writer, body []byte) error {
	var n yaml.Node
	if err := yaml.Unmarshal(body, &n); err != nil {
		return fmt.Errorf("yaml: the answer is not a JSON document: %w", err)
	}
	if n.Kind == 0 {
		return errors.New("yaml: the answer is empty")
	}
	blockStyle(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return fmt.Errorf("yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("yaml: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// blockStyle clears the flow and quoting styles the JSON text gave n and its children;
// the encoder quotes again only the strings that need it.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}
