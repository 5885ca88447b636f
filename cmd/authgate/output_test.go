package main

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/authgate/authgate/gateway/apikey"
)

// lines splits output into its non-empty lines.
func lines(out string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) != "" {
			ls = append(ls, l)
		}
	}
	return ls
}

// TestKeysOutputFormats: -o json|yaml|table, -q and --no-headers on keys list and show
// agree with each other.
func TestKeysOutputFormats(t *testing.T) {
	adminKey, _ := apikey.Generate("sk", apikey.Live)
	base := startKeysGateway(t, strings.Replace(memoryGatewayYAML, "ADMIN_KEY", adminKey, 1))
	waitForKey(t, base, adminKey)
	c := cli{t: t, env: map[string]string{"AUTHGATE_ADDR": base, "AUTHGATE_TOKEN": adminKey, "HOME": t.TempDir()}}
	c.ok("keys", "create", "--name", "billing-reader", "--scopes", "billing:read")
	c.ok("keys", "create", "--name", "ci")

	var ids []string
	for _, k := range decodePage(t, c.ok("keys", "list", "-o", "json")).Keys {
		ids = append(ids, k.ID)
	}
	if len(ids) != 3 {
		t.Fatalf("want 3 keys (bootstrap, billing-reader, ci), got %v", ids)
	}
	if got := lines(c.ok("keys", "list", "-q")); !slices.Equal(got, ids) {
		t.Errorf("list -q: got %v, want %v", got, ids)
	}
	if got := lines(c.ok("keys", "list", "--quiet", "--all")); !slices.Equal(got, ids) {
		t.Errorf("list --quiet --all: got %v, want %v", got, ids)
	}
	table := lines(c.ok("keys", "list"))
	bare := lines(c.ok("keys", "list", "--no-headers"))
	if len(table) != 4 || !strings.HasPrefix(table[0], "ID ") || len(bare) != 3 {
		t.Fatalf("list --no-headers: got %q, want the rows of %q without the header", bare, table)
	}
	for i := range bare {
		if !slices.Equal(strings.Fields(bare[i]), strings.Fields(table[i+1])) {
			t.Errorf("list --no-headers row %d: got %q, want the cells of %q", i, bare[i], table[i+1])
		}
	}
	for i, l := range bare {
		if strings.Fields(l)[0] != ids[i] {
			t.Errorf("list --no-headers line %d: %q, want it to start with %s", i, l, ids[i])
		}
	}
	if out := c.ok("keys", "list", "--no-headers", "--search", "nothing-like-this"); out != "" {
		t.Errorf("empty list --no-headers: got %q, want nothing", out)
	}

	var page struct {
		Keys []struct {
			ID     string   `yaml:"id"`
			Name   string   `yaml:"name"`
			Scopes []string `yaml:"scopes"`
		} `yaml:"keys"`
		NextCursor *string `yaml:"next_cursor"`
	}
	out := c.ok("keys", "list", "-o", "yaml")
	if err := yaml.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("list -o yaml: %v\n%s", err, out)
	}
	var yamlIDs []string
	for _, k := range page.Keys {
		yamlIDs = append(yamlIDs, k.ID)
	}
	if !slices.Equal(yamlIDs, ids) || strings.HasPrefix(strings.TrimSpace(out), "{") {
		t.Errorf("list -o yaml: got IDs %v, want %v, in block style:\n%s", yamlIDs, ids, out)
	}

	var one struct {
		ID     string   `yaml:"id"`
		Name   string   `yaml:"name"`
		Scopes []string `yaml:"scopes"`
	}
	out = c.ok("keys", "show", "billing-reader", "--output", "yaml")
	if err := yaml.Unmarshal([]byte(out), &one); err != nil || one.Name != "billing-reader" || !slices.Equal(one.Scopes, []string{"billing:read"}) {
		t.Errorf("show -o yaml: got %+v (%v)\n%s", one, err, out)
	}
	if got := strings.TrimSpace(c.ok("keys", "show", one.ID, "-q")); got != one.ID {
		t.Errorf("show -q: got %q, want %s", got, one.ID)
	}
	if got := decodeKey(t, c.ok("keys", "show", one.ID, "--json")); got.ID != one.ID {
		t.Errorf("show --json (the older spelling): got %s", got.ID)
	}

	for _, bad := range [][]string{
		{"keys", "list", "-o", "xml"},
		{"keys", "list", "-q", "-o", "json"},
		{"keys", "list", "--json", "-o", "yaml"},
		{"keys", "create", "--name", "x", "-q"},
	} {
		if _, _, err := c.run(bad...); err == nil {
			t.Errorf("authgate %s: want a usage error", strings.Join(bad, " "))
		}
	}
}

// TestKeysByName: show, edit, refresh, rotate and revoke take a key's exact name where it
// is unique; an ambiguous name lists the IDs; an ID always wins; search is a substring.
func TestKeysByName(t *testing.T) {
	adminKey, _ := apikey.Generate("sk", apikey.Live)
	base := startKeysGateway(t, strings.Replace(memoryGatewayYAML, "ADMIN_KEY", adminKey, 1))
	waitForKey(t, base, adminKey)
	c := cli{t: t, env: map[string]string{"AUTHGATE_ADDR": base, "AUTHGATE_TOKEN": adminKey, "HOME": t.TempDir()}}

	first := fields(c.ok("keys", "create", "--name", "billing-reader"))["id"]
	if got := fields(c.ok("keys", "show", "billing-reader"))["id"]; got != first {
		t.Errorf("show billing-reader: got %q, want %s", got, first)
	}
	if got := fields(c.ok("keys", "edit", "billing-reader", "--description", "reads invoices")); got["id"] != first || got["description"] != "reads invoices" {
		t.Errorf("edit billing-reader: got %v", got)
	}
	c.ok("keys", "refresh", "billing-reader")
	if got := c.apiErr("keys", "show", "Billing-Reader"); got != "not_found" {
		t.Errorf("show with another case: got %q, want not_found (names are exact)", got)
	}
	if got := c.apiErr("keys", "show", "billing"); got != "not_found" {
		t.Errorf("show a prefix of the name: got %q, want not_found", got)
	}

	// A second key of that name: ambiguous while both are active.
	second := fields(c.ok("keys", "create", "--name", "billing-reader"))["id"]
	_, _, err := c.run("keys", "show", "billing-reader")
	if err == nil || !strings.Contains(err.Error(), "2 keys are named \"billing-reader\"") ||
		!strings.Contains(err.Error(), first+" (active)") || !strings.Contains(err.Error(), second+" (active)") {
		t.Errorf("ambiguous show: got %v, want both IDs listed", err)
	}
	if _, _, err := c.run("keys", "revoke", "billing-reader"); err == nil {
		t.Error("ambiguous revoke: want an error, and nothing revoked")
	}
	if got := fields(c.ok("keys", "show", first)); got["status"] != "active" {
		t.Errorf("after the refused revoke: %s is %s", first, got["status"])
	}
	// Revoked by ID, the other is the only active key of that name.
	c.ok("keys", "revoke", first)
	if got := fields(c.ok("keys", "show", "billing-reader"))["id"]; got != second {
		t.Errorf("show with one active namesake: got %q, want %s", got, second)
	}
	rotated := fields(c.ok("keys", "rotate", "billing-reader", "--revoke-old-after", "0s"))
	if rotated["id"] == second || rotated["name"] != "billing-reader" {
		t.Errorf("rotate billing-reader: got %v", rotated)
	}
	if got := fields(c.ok("keys", "show", "billing-reader"))["id"]; got != rotated["id"] {
		t.Errorf("after rotate: got %q, want the new key %s", got, rotated["id"])
	}

	// A key named like another key's ID: the ID wins.
	ci := fields(c.ok("keys", "create", "--name", "ci"))["id"]
	c.ok("keys", "create", "--name", ci)
	if got := fields(c.ok("keys", "show", ci)); got["id"] != ci || got["name"] != "ci" {
		t.Errorf("show %s: got %v, want the key with that ID", ci, got)
	}

	// Search: a case-insensitive substring of the name.
	search := keyNames(t, c.ok("keys", "list", "--search", "READER", "-o", "json"))
	if len(search) != 3 || slices.ContainsFunc(search, func(n string) bool { return n != "billing-reader" }) {
		t.Errorf("list --search READER: got %v, want the three billing-reader keys", search)
	}
	if got := keyNames(t, c.ok("keys", "list", "--search", "ing-rea", "--status", "active", "-o", "json")); !slices.Equal(got, []string{"billing-reader"}) {
		t.Errorf("list --search ing-rea --status active: got %v", got)
	}
}
