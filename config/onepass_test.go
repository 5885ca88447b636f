package config

import (
	"strings"
	"testing"
)

// Problems of the YAML pass, of validation and of the Checks come in one list, and a
// field reported once is not reported again as a consequence.
func TestParseReportsEveryRoundAtOnce(t *testing.T) {
	yaml := `listen: "${LISTEN}"
upstreams:
  api: {url: "http://127.0.0.1:9000", timeout: soon}
routes:
  - {name: r, match: ["GET /r/"], upstream: apii, scoeps: [x]}
  - {name: s, match: ["GET /s/"], upstreem: api}
`
	check := func(c *Config) []FieldProblem {
		return []FieldProblem{{Field: "routes[0].name", Msg: "checked"}, {Field: "upstreams.api.timeout", Msg: "hidden"}}
	}
	_, err := ParseWith("g.yaml", []byte(yaml), Options{Getenv: func(string) string { return "" }, Checks: []Check{check}})
	got := problemLines(t, err)
	want := []string{
		"g.yaml:1: listen: environment variable LISTEN is not set (write ${LISTEN:-} to allow empty)",
		`g.yaml:3: upstreams.api.timeout: invalid duration "soon" (write e.g. 500ms, 30s, 1m, 2h)`,
		`g.yaml:5: routes[0].scoeps: unknown field (did you mean "scopes"?)`,
		`g.yaml:5: routes[0].upstream: unknown upstream "apii" (did you mean "api"?)`,
		"g.yaml:5: routes[0].name: checked",
		`g.yaml:6: routes[1].upstreem: unknown field (did you mean "upstream"?)`,
	}
	if !equal(got, want) {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// With Options.Uses, a variable unset outside the fields read is left empty, and what
// validation says of those fields is not a problem; inside them it still is.
func TestParseUses(t *testing.T) {
	yaml := `bootstrap:
  admin_email: "${EMAIL}"
  admin_password: "${PASSWORD}"
issuer: {enabled: true, name: "${ISSUER}", signing_key_file: k.pem}
`
	noEnv := func(string) string { return "" }
	cfg, err := ParseWith("g.yaml", []byte(yaml), Options{Getenv: noEnv, Uses: []string{"routes", "policy"}})
	if err != nil {
		t.Fatalf("with Uses: %v", err)
	}
	if cfg.Bootstrap.AdminPassword != "" {
		t.Error("an unset variable was not left empty")
	}
	_, err = ParseWith("g.yaml", []byte(yaml), Options{Getenv: noEnv, Uses: []string{"issuer.name"}})
	if got := problemLines(t, err); len(got) != 1 || !strings.Contains(got[0], "issuer.name: environment variable ISSUER is not set") {
		t.Errorf("a used field's unset variable: %q", got)
	}
	if _, err := Parse("g.yaml", []byte(yaml), noEnv); len(problemLines(t, err)) != 3 {
		t.Errorf("without Uses every unset variable is a problem: %v", err)
	}
}
