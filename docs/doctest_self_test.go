package docs_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// selfDoc is a small Markdown file for the runner's own tests: blocks that pass, one that
// exits 1, one whose shown output differs, and blocks that only pass if state carries
// from block to block.
const selfDoc = "# Example\n" +
	"\n" +
	"<!-- doctest -->\n" + // line 3
	"```sh\n" + // line 4
	"GREETING=hello\n" +
	"cd sub\n" +
	"```\n" +
	"\n" +
	"<!-- doctest file=conf.yaml -->\n" +
	"```yaml\n" + // line 10
	"name: ${NAME}\n" +
	"```\n" +
	"\n" +
	"<!-- doctest -->\n" +
	"```sh\n" + // line 15
	"echo \"$GREETING from $(basename \"$PWD\")\"\n" +
	"cat conf.yaml\n" +
	"echo 'HTTP/1.1 401 Unauthorized'\n" +
	"echo '{\"error\":\"missing_credentials\",\"message\":\"send a credential\"}'\n" +
	"```\n" +
	"\n" +
	"<!-- doctest output -->\n" +
	"```text\n" +
	"hello from sub\n" +
	"HTTP/1.1 401 …\n" +
	"{\"error\":\"missing_credentials\",…}\n" +
	"```\n" +
	"\n" +
	"<!-- doctest expect-exit=1 -->\n" +
	"```console\n" + // line 30
	"$ echo one; \\\n" +
	"  false\n" +
	"one\n" +
	"```\n" +
	"\n" +
	"An unmarked block never runs:\n" +
	"\n" +
	"```sh\n" +
	"exit 3\n" +
	"```\n"

// TestDoctestRunnerPasses runs selfDoc: state (a variable, the directory) carries from
// block to block, a file block is written in order, "…" matches any text, and a console
// block's exit status and output are checked.
func TestDoctestRunnerPasses(t *testing.T) {
	blocks, err := extract("self.md", []byte(selfDoc))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 4 {
		t.Fatalf("extracted %d blocks, want 4 (3 run blocks and a file): %+v", len(blocks), blocks)
	}
	for i, want := range []string{"self.md:4", "self.md:10", "self.md:15", "self.md:30"} {
		if blocks[i].pos != want {
			t.Errorf("block %d at %s, want %s", i, blocks[i].pos, want)
		}
	}
	if fails := selfSession(t).run(context.Background(), blocks); len(fails) > 0 {
		t.Errorf("want no failures, got:\n%s", strings.Join(fails, "\n"))
	}
}

// TestDoctestRunnerFails proves each check can fail, and names the block's file and line.
func TestDoctestRunnerFails(t *testing.T) {
	tests := []struct {
		name     string
		from, to string // a change to selfDoc
		want     string // in the one failure message
	}{
		{"a command fails", "cd sub\n", "cd sub\nfalse\n", "self.md:4: block failed"},
		{"an unset variable", "echo \"$GREETING", "echo \"$GREETIN", "self.md:15: block failed"},
		{"a pipeline's first command fails", "cd sub\n", "cd sub\nfalse | cat\n", "self.md:4: block failed"},
		{"the output differs", "'HTTP/1.1 401 Unauthorized'", "'HTTP/1.1 403 Forbidden'", `self.md:15: output differs from the doc: no line "HTTP/1.1 401 …"`},
		{"a JSON error code differs", `"error":"missing_credentials","message"`, `"error":"invalid_api_key","message"`, `self.md:15: output differs from the doc: no line "{\"error\":\"missing_credentials\",…}"`},
		{"an output line is missing", "echo \"$GREETING from $(basename \"$PWD\")\"\n", "", `self.md:15: output differs from the doc: no line "hello from sub"`},
		{"the exit status differs", "  false\n", "  true\n", "self.md:30: block exited 0, want 1"},
		{"a console output line differs", "one\n```", "two\n```", `self.md:30: output differs from the doc: no line "two"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(selfDoc, tt.from, tt.to, 1)
			if doc == selfDoc {
				t.Fatalf("%q is not in the document", tt.from)
			}
			blocks, err := extract("self.md", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			fails := selfSession(t).run(context.Background(), blocks)
			if len(fails) != 1 || !strings.HasPrefix(fails[0], tt.want) {
				t.Errorf("want one failure starting %q, got %d:\n%s", tt.want, len(fails), strings.Join(fails, "\n"))
			}
		})
	}
}

// TestDoctestMarkerErrors: a marker that would mark nothing, or mark it wrongly, is an
// error rather than a block quietly left out.
func TestDoctestMarkerErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"no fence", "<!-- doctest -->\ntext\n", "x.md:1: doctest marker not followed by a fenced block"},
		{"unknown option", "<!-- doctest expect=1 -->\n```sh\ntrue\n```\n", `x.md:1: doctest: unknown option "expect=1"`},
		{"not a shell block", "<!-- doctest -->\n```yaml\na: 1\n```\n", `x.md:1: doctest: a run block must be`},
		{"output first", "<!-- doctest output -->\n```\nx\n```\n", "x.md:2: doctest output block with no run block before it"},
		{"bad file name", "<!-- doctest file=../x -->\n```\nx\n```\n", `x.md:1: doctest file="../x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := extract("x.md", []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
	// A marker shown inside a code block (as README.md shows the convention) marks nothing.
	blocks, err := extract("x.md", []byte("````markdown\n<!-- doctest -->\n```sh\nexit 1\n```\n````\n"))
	if err != nil || len(blocks) != 0 {
		t.Errorf("a marker inside a fence: got %d blocks, error %v; want none", len(blocks), err)
	}
}

// selfSession is a session in a fresh directory with a "sub" directory, NAME set and no
// substitutions.
func selfSession(t *testing.T) session {
	dir := t.TempDir()
	if err := os.Mkdir(dir+"/sub", 0o700); err != nil {
		t.Fatal(err)
	}
	return session{dir: dir, env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "NAME=x"}, timeout: 30 * time.Second}
}
