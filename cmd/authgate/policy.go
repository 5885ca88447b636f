package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/policy"
)

// exitStatus is an error that only sets the process's exit status: the command has said
// all it had to say on stdout.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a mistake in the command line or the configuration: exit status 2, so
// scripts can tell it from a decision.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

const policyUsage = `usage: authgate policy explain --config gateway.yaml "METHOD /path" [--scopes a,b] [--role r]
                             [--team t[,t2] | --team '*'] [--header "Name: value"]

Decides, as the gateway would, whether a request with these scopes passes the route
policy: method, path cleaning, route matching, scopes, and on a route with a team source
the team (--team: the teams the credential acts for, '*' for every team; none by
default; --header gives the request headers a header source reads). Exit status 0:
allowed; 1: refused; 2: a usage or configuration error. IP lists, rate limits and the
credential's validity are not judged.
`

func policyCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "explain" {
		fmt.Fprint(stderr, policyUsage)
		return usageError{errors.New("policy: want the explain subcommand")}
	}
	return explainCmd(args[1:], getenv, stdout, stderr)
}

func explainCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage) }
	path := fs.String("config", "", "configuration file (default: the embedded gateway.yaml)")
	scopes := fs.String("scopes", "", "the credential's scopes, comma separated")
	role := fs.String("role", "", "a role of policy.roles whose scopes the credential has")
	teamFlag := fs.String("team", "", "the teams the credential acts for, comma separated; * for every team")
	headers := http.Header{}
	fs.Func("header", `a request header, "Name: value" (repeatable)`, func(v string) error {
		name, val, ok := strings.Cut(v, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("want \"Name: value\", got %q", v)
		}
		headers.Add(strings.TrimSpace(name), strings.TrimSpace(val))
		return nil
	})
	// The request may come before or after the flags.
	var request []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		request = append(request, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(request) != 1 {
		fmt.Fprint(stderr, policyUsage)
		return usageError{errors.New(`policy explain: want one request, "METHOD /path"`)}
	}
	method, target, ok := strings.Cut(strings.TrimSpace(request[0]), " ")
	if !ok || strings.TrimSpace(target) == "" {
		return usageError{fmt.Errorf(`policy explain: %q: want "METHOD /path"`, request[0])}
	}
	target = strings.TrimSpace(target)
	cfg, err := loadConfigWith(*path, config.Options{Getenv: getenv, Uses: explainUses()})
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			fmt.Fprintln(stderr, ps.Error())
		}
		return usageError{err}
	}
	e, err := newExplainer(cfg)
	if err != nil {
		return usageError{err}
	}
	var held []string
	for _, s := range strings.Split(*scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			held = append(held, s)
		}
	}
	var teams policy.Teams
	teams.Header = headers
	for _, t := range strings.Split(*teamFlag, ",") {
		switch t = strings.TrimSpace(t); {
		case t == "*":
			teams.All = true
		case t != "":
			teams.Held = append(teams.Held, t)
		}
	}
	d, err := e.ExplainTeams(method, target, held, *role, teams)
	if err != nil {
		return usageError{err}
	}
	printDecision(stdout, method, target, d)
	if !d.Allowed {
		return exitStatus(1)
	}
	return nil
}

// newExplainer compiles cfg's routes as the gateway does.
// explainUses is the configuration policy explain reads: the routes, the roles, and what
// decides the gateway's own paths. A ${NAME} elsewhere (a bootstrap secret, the Redis
// password) is not expanded, so it need not be set.
func explainUses() []string {
	return []string{"routes", "policy", "auth_api", "forward_auth", "issuer.enabled", "console.enabled", "console.path"}
}

func newExplainer(cfg *config.Config) (*policy.Explainer, error) {
	rules := make([]policy.Rule, len(cfg.Routes))
	for i, r := range cfg.Routes {
		rules[i] = policy.Rule{Name: r.Name, Patterns: r.Match, Public: r.Public, Scopes: r.Scopes, ScopesAll: r.ScopesAll}
		if t := r.Team; t != nil {
			rules[i].Team = &policy.TeamSource{Path: t.Path, Header: t.Header, Query: t.Query}
		}
	}
	return policy.NewExplainer(rules, cfg.ReservedPatterns(), cfg.Policy.Roles)
}

func printDecision(w io.Writer, method, target string, d policy.Decision) {
	fmt.Fprintf(w, "request:  %s %s\n", method, target)
	if d.Path != "" {
		note := ""
		if d.Path != target {
			note = " (cleaned)"
		}
		fmt.Fprintf(w, "path:     %s%s\n", d.Path, note)
	}
	switch {
	case d.Route == "":
		fmt.Fprintf(w, "route:    none\n")
	case d.Pattern != "":
		fmt.Fprintf(w, "route:    %s (pattern %s)\n", d.Route, d.Pattern)
	default:
		fmt.Fprintf(w, "route:    %s\n", d.Route)
	}
	if d.Needs != "" {
		fmt.Fprintf(w, "needs:    %s\n", d.Needs)
	}
	scopes := strings.Join(d.Scopes, " ")
	if scopes == "" {
		scopes = "(none)"
	}
	fmt.Fprintf(w, "scopes:   %s\n", scopes)
	if d.Team != "" {
		fmt.Fprintf(w, "team:     %s\n", d.Team)
	}
	switch {
	case d.Allowed:
		fmt.Fprintf(w, "decision: ALLOW: %s\n", d.Reason)
	case d.Status == 0:
		fmt.Fprintf(w, "decision: NOT A ROUTE: %s\n", d.Reason)
	default:
		fmt.Fprintf(w, "decision: DENY %d %s: %s\n", d.Status, d.Code, d.Reason)
	}
}
