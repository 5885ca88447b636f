package main

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyExplainBinary runs `authgate policy explain` as a user does, on the embedded
// example policy and on a file, and checks the explanation and the exit status: 0 allow,
// 1 deny, 2 usage or configuration error.
func TestPolicyExplainBinary(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gateway.yaml")
	writeConfig(t, file, `upstreams:
  api: {url: "http://127.0.0.1:9000"}
policy:
  roles:
    auditor: ["reports:read", "exports:read"]
routes:
  - name: exports
    match: ["GET /exports/{id}/{$}"]
    upstream: api
    scopes_all: ["reports:read", "exports:read"]
  - name: sites
    match: ["GET /teams/{team}/sites/{$}"]
    upstream: api
    scopes: ["sites:read"]
    team: {path: team}
  - name: projects
    match: ["GET /projects/{$}"]
    upstream: api
    scopes: ["sites:read"]
    team: {header: X-Team-Id}
`)
	tests := []struct {
		name   string
		args   []string
		status int
		stdout []string // lines that must appear
		stderr string
	}{
		{"allowed by a scope", []string{"GET /api/v1/reports/7/", "--scopes", "reports:read"}, 0,
			[]string{"route:    reports-read (pattern GET /api/v1/reports/{id}/{$})", "needs:    route reports-read needs one of: reports:read",
				"decision: ALLOW: reports:read grants reports:read"}, ""},
		{"allowed by a wildcard", []string{"--scopes", "*:read", "GET /api/v1/reports/"}, 0,
			[]string{"decision: ALLOW: *:read grants reports:read"}, ""},
		{"refused for a role", []string{"POST /api/v1/reports//generate/", "--role", "viewer"}, 1,
			[]string{"path:     /api/v1/reports/generate/ (cleaned)", "route:    reports-generate (pattern POST /api/v1/reports/generate/{$})",
				"scopes:   reports:read dashboards:read goals:read usage:read keys:manage",
				"decision: DENY 403 insufficient_scope: none of reports:read, dashboards:read, goals:read, usage:read, keys:manage grants one of: reports:generate"}, ""},
		{"allowed for a role", []string{"POST /api/v1/reports/generate/", "--role", "member"}, 0,
			[]string{"decision: ALLOW: reports:* grants reports:generate"}, ""},
		{"public", []string{"GET /health"}, 0, []string{"decision: ALLOW: public route", "scopes:   (none)"}, ""},
		{"no route", []string{"GET /nowhere"}, 1, []string{"route:    none", "decision: DENY 404 no_route: no route matches"}, ""},
		{"path trick", []string{"GET /api/v1/reports/..;/generate/", "--scopes", "*"}, 1, []string{"decision: DENY 400 malformed_request"}, ""},
		{"wrong method", []string{"DELETE /health"}, 1, []string{"decision: DENY 405 method_not_allowed: a route matches this path for GET, HEAD only"}, ""},
		{"gateway's own path", []string{"POST /api/auth/api-keys/"}, 1, []string{"route:    authgate", "decision: NOT A ROUTE"}, ""},
		{"scopes_all from a file", []string{"--config", file, "GET /exports/9/", "--role", "auditor"}, 0,
			[]string{"needs:    route exports needs all of: reports:read, exports:read", "decision: ALLOW: reports:read grants reports:read; exports:read grants exports:read"}, ""},
		{"scopes_all missing one", []string{"--config", file, "GET /exports/9/", "--scopes", "reports:read"}, 1,
			[]string{"decision: DENY 403 insufficient_scope: missing exports:read"}, ""},
		{"own team", []string{"--config", file, "GET /teams/acme/sites/", "--scopes", "sites:read", "--team", "acme"}, 0,
			[]string{"team:     acme", "decision: ALLOW: sites:read grants sites:read; team acme: the credential acts for team acme"}, ""},
		{"other team", []string{"--config", file, "GET /teams/acme/../globex/sites/", "--scopes", "sites:read", "--team", "acme"}, 1,
			[]string{"path:     /teams/globex/sites/ (cleaned)", "team:     globex", "decision: DENY 403 team_not_allowed: the request names team globex; the credential acts for team acme"}, ""},
		{"every team", []string{"--config", file, "GET /teams/globex/sites/", "--scopes", "sites:read", "--team", "*"}, 0,
			[]string{"decision: ALLOW: sites:read grants sites:read; team globex: the credential acts for every team"}, ""},
		{"no team", []string{"--config", file, "GET /teams/globex/sites/", "--scopes", "sites:read"}, 1,
			[]string{"decision: DENY 403 team_not_allowed: the request names team globex; the credential acts for no team"}, ""},
		{"header source", []string{"--config", file, "GET /projects/", "--scopes", "sites:read", "--team", "acme", "--header", "X-Team-Id: acme"}, 0,
			[]string{"team:     acme", "decision: ALLOW"}, ""},
		{"header source, none named", []string{"--config", file, "GET /projects/", "--scopes", "sites:read", "--team", "acme"}, 1,
			[]string{"decision: DENY 400 malformed_request: the route needs the request to name one team, once (header X-Team-Id)"}, ""},
		{"unknown role", []string{"GET /health", "--role", "root"}, 2, nil, `unknown role "root"`},
		{"no request", []string{"--scopes", "a"}, 2, nil, "want one request"},
		{"request without a path", []string{"GET"}, 2, nil, `want "METHOD /path"`},
		{"bad config", []string{"--config", filepath.Join(dir, "missing.yaml"), "GET /"}, 2, nil, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binPath, append([]string{"policy", "explain"}, tt.args...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			status := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.status {
				t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", status, tt.status, stdout.String(), stderr.String())
			}
			for _, line := range tt.stdout {
				if !strings.Contains(stdout.String(), line+"\n") && !strings.Contains(stdout.String(), line) {
					t.Errorf("stdout lacks %q:\n%s", line, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr.String())
			}
			if tt.status == 1 && strings.Contains(stderr.String(), "exit status") {
				t.Errorf("a refusal printed an error: %s", stderr.String())
			}
		})
	}
}

// policy explain reads the routes and roles only: the bootstrap admin's and Redis's
// ${VAR}s need not be set for it, while config validate still says they are unset. A
// variable in a field it reads still has to be set.
func TestPolicyExplainNeedsNoSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gateway.yaml")
	writeConfig(t, file, `store:
  type: redis
  redis: {addrs: ["127.0.0.1:1"], password: "${REDIS_PASSWORD}"}
issuer: {enabled: true, name: "https://gw.example", signing_key_file: "${SIGNING_KEY_FILE}"}
bootstrap:
  admin_email: "${ADMIN_EMAIL}"
  admin_password: "${ADMIN_PASSWORD}"
  admin_key: "${ADMIN_KEY}"
upstreams:
  api: {url: "${UPSTREAM_URL}"}
routes:
  - {name: reports, match: ["GET /reports/"], upstream: api, scopes: ["reports:read"]}
`)
	noEnv := func(string) string { return "" }
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"policy", "explain", "--config", file, "GET /reports/x", "--scopes", "reports:read"}, noEnv, &out, &errb)
	if err != nil {
		t.Fatalf("policy explain: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "decision: ALLOW") {
		t.Errorf("policy explain printed:\n%s", out.String())
	}

	// validate (what serve loads) still refuses each unset variable.
	out.Reset()
	errb.Reset()
	if err := run(t.Context(), []string{"config", "validate", "--config", file}, noEnv, &out, &errb); err == nil {
		t.Fatal("validate accepted unset variables")
	}
	for _, v := range []string{"REDIS_PASSWORD", "SIGNING_KEY_FILE", "ADMIN_EMAIL", "ADMIN_PASSWORD", "ADMIN_KEY", "UPSTREAM_URL"} {
		if !strings.Contains(errb.String(), "environment variable "+v+" is not set") {
			t.Errorf("validate does not name %s:\n%s", v, errb.String())
		}
	}

	// A variable in what explain reads is required.
	writeConfig(t, file, `upstreams:
  api: {url: "http://127.0.0.1:9000"}
routes:
  - {name: reports, match: ["GET ${REPORTS_PATH}"], upstream: api, scopes: ["reports:read"]}
`)
	errb.Reset()
	err = run(t.Context(), []string{"policy", "explain", "--config", file, "GET /reports/x"}, noEnv, &out, &errb)
	if err == nil || !strings.Contains(errb.String(), "environment variable REPORTS_PATH is not set") {
		t.Errorf("policy explain with a route's variable unset: err %v, stderr:\n%s", err, errb.String())
	}
}
