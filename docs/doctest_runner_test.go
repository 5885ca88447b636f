package docs_test

// The runner behind TestDocsRun: it extracts the marked blocks of a Markdown file and runs
// them, in order, in one bash session.
//
// Markers (an HTML comment on the line before a fence; GitHub renders nothing for it):
//
//	<!-- doctest -->                 before ```sh / ```bash: the block runs and must exit 0
//	<!-- doctest -->                 before ```console: "$ " lines run (a line ending in \
//	                                 continues), every other line is expected output
//	<!-- doctest expect-exit=N -->   the block must exit N (the status of its last command)
//	<!-- doctest output -->          before any fence: what the run block before it must print
//	<!-- doctest file=NAME -->       before any fence: written to NAME in the working
//	                                 directory at that point of the session
//
// Session: a file's blocks are concatenated, in order, into one bash script run with
// `set -euo pipefail` in a fresh working directory, so shell state (variables, exports,
// the current directory) carries from one block to the next. Each block's stdout and
// stderr go, together, to a file of its own; a block that fails ends the session there
// (the blocks after it depend on its state) and is reported by file and line. A block
// with expect-exit runs in a subshell, so its variables do not carry over.
//
// Expected output (an output block, or a console block's output lines) is compared line
// by line: each expected line, blank lines skipped, must equal a line of the actual
// output, in the same order, up to spacing (runs of spaces count as one, leading and
// trailing ones and CRs not at all, so a table's alignment does not matter); other lines may
// come between them (headers that change from run to run, such as Date, need not be
// shown). In an expected line "…" matches any text.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// blockKind is what a marked fence is for.
type blockKind int

const (
	kindScript  blockKind = iota // ```sh: run as written
	kindConsole                  // ```console: "$ " commands and their output
	kindOutput                   // the expected output of the run block before it
	kindFile                     // a file written into the working directory
)

// block is one marked fence of a Markdown file.
type block struct {
	pos        string // "docs/cli.md:42": the file and the line of the opening fence
	kind       blockKind
	body       string // the script (console: its commands), or the file's content
	want       []string
	expectExit int
	fileName   string // kindFile
}

// runnable reports whether the block is a script or console block.
func (b *block) runnable() bool { return b.kind == kindScript || b.kind == kindConsole }

var (
	markerRE = regexp.MustCompile(`^\s*<!--\s*doctest\b(.*?)-->\s*$`)
	fenceRE  = regexp.MustCompile("^(\\s*)(`{3,}|~{3,})\\s*([^\\s`]*)")
	fileRE   = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

// extract returns the marked blocks of the Markdown src, named name in positions. A marker
// that is not followed by a fence, has an unknown option, or an output block with no run
// block before it is an error: a marker that silently marks nothing would let a doc drift.
func extract(name string, src []byte) ([]block, error) {
	lines := strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n")
	var blocks []block
	var errs []string
	for i := 0; i < len(lines); i++ {
		if m := fenceRE.FindStringSubmatch(lines[i]); m != nil { // an unmarked fence: skip it
			i = fenceEnd(lines, i, m[2])
			continue
		}
		m := markerRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		markerLine := i + 1
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		var f []string
		if j < len(lines) {
			f = fenceRE.FindStringSubmatch(lines[j])
		}
		if f == nil {
			errs = append(errs, fmt.Sprintf("%s:%d: doctest marker not followed by a fenced block", name, markerLine))
			continue
		}
		end := fenceEnd(lines, j, f[2])
		body := make([]string, 0, end-j)
		for _, l := range lines[j+1 : min(end, len(lines))] {
			body = append(body, strings.TrimPrefix(l, f[1])) // a fence indented in a list
		}
		b := block{pos: fmt.Sprintf("%s:%d", name, j+1), body: strings.Join(body, "\n") + "\n"}
		if err := b.configure(strings.Fields(m[1]), f[3]); err != nil {
			errs = append(errs, fmt.Sprintf("%s:%d: %v", name, markerLine, err))
			i = end
			continue
		}
		if b.kind == kindOutput {
			last := len(blocks) - 1
			switch {
			case last < 0 || !blocks[last].runnable():
				errs = append(errs, fmt.Sprintf("%s: doctest output block with no run block before it", b.pos))
			case blocks[last].want != nil:
				errs = append(errs, fmt.Sprintf("%s: a second expected output for the block at %s", b.pos, blocks[last].pos))
			default:
				blocks[last].want = nonBlank(body)
			}
		} else {
			blocks = append(blocks, b)
		}
		i = end
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return blocks, nil
}

// fenceEnd returns the index of the line closing the fence opened at lines[start] with
// marker (len(lines) when it is never closed).
func fenceEnd(lines []string, start int, marker string) int {
	for k := start + 1; k < len(lines); k++ {
		t := strings.TrimSpace(lines[k])
		if strings.HasPrefix(t, marker[:3]) && strings.Trim(t, marker[:1]) == "" && len(t) >= len(marker) {
			return k
		}
	}
	return len(lines)
}

// configure sets the block's kind and options from the marker's words and the fence's
// info string.
func (b *block) configure(opts []string, info string) error {
	b.kind = -1
	for _, o := range opts {
		switch k, v, _ := strings.Cut(o, "="); k {
		case "output":
			b.kind = kindOutput
		case "file":
			if !fileRE.MatchString(v) {
				return fmt.Errorf("doctest file=%q: want a plain file name", v)
			}
			b.kind, b.fileName = kindFile, v
		case "expect-exit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 255 {
				return fmt.Errorf("doctest expect-exit=%q: want 0 to 255", v)
			}
			b.expectExit = n
		default:
			return fmt.Errorf("doctest: unknown option %q (known: output, file=NAME, expect-exit=N)", o)
		}
	}
	if b.kind != -1 {
		if b.expectExit != 0 {
			return fmt.Errorf("doctest: expect-exit applies to sh and console blocks only")
		}
		return nil
	}
	switch info {
	case "sh", "bash", "shell":
		b.kind = kindScript
	case "console":
		b.kind = kindConsole
		b.body, b.want = splitConsole(b.body)
	default:
		return fmt.Errorf("doctest: a run block must be ```sh, ```bash or ```console, not %q (or mark it output or file=NAME)", info)
	}
	return nil
}

// splitConsole separates a console transcript into its commands ("$ " lines and their
// continuation lines) and the output lines shown.
func splitConsole(body string) (script string, want []string) {
	var cmds []string
	cont := false
	for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		switch {
		case cont:
			cmds = append(cmds, l)
		case strings.HasPrefix(l, "$ "):
			cmds = append(cmds, strings.TrimPrefix(l, "$ "))
		default:
			if strings.TrimSpace(l) != "" {
				want = append(want, l)
			}
			continue
		}
		cont = strings.HasSuffix(l, `\`)
	}
	if want == nil {
		want = []string{}
	}
	return strings.Join(cmds, "\n") + "\n", want
}

func nonBlank(lines []string) []string {
	out := []string{}
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// session is what a file's blocks run in.
type session struct {
	dir     string            // the working directory
	env     []string          // the whole environment of bash
	subst   *strings.Replacer // documented addresses -> the ones the test started; nil: none
	timeout time.Duration     // bound on the whole file
}

// run runs blocks, in order, in one bash session and returns one message per failure,
// each starting with the block's file and line.
func (s session) run(ctx context.Context, blocks []block) []string {
	state, err := os.MkdirTemp("", "doctest-state-")
	if err != nil {
		return []string{err.Error()}
	}
	defer os.RemoveAll(state)
	sub := func(x string) string {
		if s.subst == nil {
			return x
		}
		return s.subst.Replace(x)
	}
	var sc strings.Builder
	sc.WriteString("set -euo pipefail\n")
	for i, b := range blocks {
		fmt.Fprintf(&sc, "\n# %s\nprintf '%%s' %d > %q\n", b.pos, i, filepath.Join(state, "started"))
		out, rc := filepath.Join(state, fmt.Sprintf("out.%d", i)), filepath.Join(state, fmt.Sprintf("rc.%d", i))
		switch {
		case b.kind == kindFile:
			eof := fmt.Sprintf("DOCTEST_EOF_%d", i)
			fmt.Fprintf(&sc, "cat > %q <<'%s'\n%s%s\nprintf 0 > %q\n", b.fileName, eof, sub(b.body), eof, rc)
		case b.expectExit != 0:
			fmt.Fprintf(&sc, "set +e\n(\nset -euo pipefail\n%s) > %q 2>&1 </dev/null\nprintf '%%s' $? > %q\nset -e\n", sub(b.body), out, rc)
		default:
			fmt.Fprintf(&sc, "{\n%s} > %q 2>&1 </dev/null\nprintf 0 > %q\n", sub(b.body), out, rc)
		}
	}
	script := filepath.Join(state, "script.sh")
	if err := os.WriteFile(script, []byte(sc.String()), 0o600); err != nil {
		return []string{err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir, cmd.Env = s.dir, s.env
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	runErr := cmd.Run()

	var fails []string
	read := func(name string) (string, bool) {
		b, err := os.ReadFile(filepath.Join(state, name))
		return string(b), err == nil
	}
	for i, b := range blocks {
		out, _ := read(fmt.Sprintf("out.%d", i))
		rcText, ran := read(fmt.Sprintf("rc.%d", i))
		if !ran {
			started, _ := read("started")
			why := fmt.Sprintf("bash: %v", runErr)
			if ctx.Err() != nil {
				why = fmt.Sprintf("not done within %s", s.timeout)
			}
			if started == strconv.Itoa(i) {
				fails = append(fails, fmt.Sprintf("%s: block failed (%s), want exit %d; output:\n%s%s", b.pos, why, b.expectExit, indent(out), indent(stderr.String())))
			} else {
				fails = append(fails, fmt.Sprintf("%s: block did not run (%s)\n%s", b.pos, why, indent(stderr.String())))
			}
			break // the blocks after it depend on its state
		}
		if b.kind == kindFile {
			continue
		}
		if rc, _ := strconv.Atoi(rcText); rc != b.expectExit {
			fails = append(fails, fmt.Sprintf("%s: block exited %d, want %d; output:\n%s", b.pos, rc, b.expectExit, indent(out)))
			continue
		}
		want := make([]string, len(b.want))
		for k, w := range b.want {
			want[k] = sub(w)
		}
		if msg := matchOutput(want, out); msg != "" {
			fails = append(fails, fmt.Sprintf("%s: output differs from the doc: %s; output:\n%s", b.pos, msg, indent(out)))
		}
	}
	return fails
}

// matchOutput checks that every expected line appears, in order, among the lines of out
// ("…" in an expected line matches any text). It returns "" on a match, else what is
// missing.
func matchOutput(want []string, out string) string {
	var got []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		got = append(got, squeeze(sc.Text()))
	}
	k := 0
	for _, w := range want {
		w = squeeze(w)
		parts := strings.Split(w, "…")
		for p := range parts {
			parts[p] = regexp.QuoteMeta(parts[p])
		}
		re := regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
		found := false
		for ; k < len(got); k++ {
			if re.MatchString(got[k]) {
				found, k = true, k+1
				break
			}
		}
		if !found {
			return fmt.Sprintf("no line %q (in this order)", w)
		}
	}
	return ""
}

// squeeze trims a line and turns every run of spaces and tabs into one space, so a
// table's alignment, which follows the width of its cells, does not matter.
func squeeze(line string) string {
	return strings.Join(strings.Fields(line), " ")
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "\t" + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n\t") + "\n"
}
