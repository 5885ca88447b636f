package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestMakeRunDemo runs `authgate serve --demo-upstream` on the embedded config, as `make
// run` does, and runs the curl lines it prints, as printed: the public route, the admin
// key on a protected route and the management API, and the admin user's login and bearer
// token.
func TestMakeRunDemo(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed: the printed lines cannot be run as printed")
	}
	// The gateway's listeners bind 127.0.0.1:0 (the instructions name the port it got);
	// the demo upstream is named in AUTHGATE_UPSTREAM before the start (startDemoRun).
	r := startDemoRun(t, "web console: ", func(upstream string) *exec.Cmd {
		cmd := exec.Command(binPath, "serve", "--demo-upstream", upstream)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir(),
			"AUTHGATE_LISTEN=127.0.0.1:0", "AUTHGATE_OPS_LISTEN=127.0.0.1:0", "AUTHGATE_UPSTREAM=http://" + upstream}
		return cmd
	})
	stderr := r.stderr
	var lines []string
	access := "" // the line that logs in and sets ACCESS, run as printed before the last curl
	for _, l := range stderr.all() {
		l = strings.TrimSpace(l)
		if c, ok := strings.CutPrefix(l, "curl "); ok {
			lines = append(lines, c)
		}
		if strings.HasPrefix(l, "ACCESS=$(") {
			access = l
		}
	}
	if len(lines) != 6 || access == "" {
		t.Fatalf("printed %d curl lines, want 6, and the ACCESS line %q: %q", len(lines), access, lines)
	}
	status := regexp.MustCompile(`HTTP/1\.1 (\d+)`)
	// run runs curl line in a shell, after the lines in before (as printed, curl bounded).
	run := func(line string, before ...string) string {
		t.Helper()
		line, _, _ = strings.Cut(line, "    #") // the comment after a line
		script := ""
		for _, b := range before {
			script += strings.ReplaceAll(b, "$(curl ", "$("+curl+" --max-time 60 ") + "\n"
		}
		c := exec.Command("sh", "-c", script+curl+" --max-time 60 "+line)
		c.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := c.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("curl %s: %v: %s", line, err, ee.Stderr)
		}
		return string(out)
	}
	want := func(out string, code string) {
		t.Helper()
		if m := status.FindStringSubmatch(out); m == nil || m[1] != code {
			t.Errorf("want HTTP %s, got:\n%s", code, out)
		}
	}
	want(run(lines[0]), "200")                                           // public route
	want(run(lines[1]), "401")                                           // no credential
	want(run(lines[2]), "200")                                           // admin key
	if out := run(lines[3]); !strings.Contains(out, `"key":"sk_live_`) { // a key created
		t.Errorf("key creation printed:\n%s", out)
	}
	var login struct {
		Access string `json:"access"`
	}
	if out := run(lines[4]); json.Unmarshal([]byte(out), &login) != nil || login.Access == "" {
		t.Fatalf("login printed:\n%s", out)
	}
	out := run(lines[5], access) // after the printed ACCESS=$(…) line, as a user pastes both
	want(out, "200")
	if !strings.Contains(out, "Ratelimit-Policy") && !strings.Contains(strings.ToLower(out), "ratelimit-policy") {
		t.Errorf("no rate limit headers on a limited route:\n%s", out)
	}
	// The web console it names answers with its page and a strict CSP.
	var console string
	for _, l := range stderr.all() {
		if u, ok := strings.CutPrefix(strings.TrimSpace(l), "web console: "); ok {
			console, _, _ = strings.Cut(u, " ")
		}
	}
	page := run("-i " + console)
	want(page, "200")
	if !strings.Contains(strings.ToLower(page), "content-security-policy: default-src 'none'") {
		t.Errorf("console page without its CSP:\n%s", page)
	}
}
