package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// TestKeysListHygiene: `keys list --stale --unused --expiring` in direct and remote mode,
// alone, together and with other filters; the table's HYGIENE column and `keys show`; and
// api_keys.max_expiry_days refusing a personal key that never expires in both modes.
// Keys are aged by writing their records back-dated.
func TestKeysListHygiene(t *testing.T) {
	srv := redistest.Start(t)
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
store:
  type: redis
  redis: {addrs: [%q], key_prefix: "kh:"}
api_keys:
  max_expiry_days: 90
  hygiene: {max_age: 60d, unused_after: 20d, expiring_within: 5d}
`, srv.Addr())
	cfgPath := filepath.Join(t.TempDir(), "gateway.yaml")
	writeConfig(t, cfgPath, yaml)
	c := cli{t: t, env: map[string]string{"HOME": t.TempDir()}}

	now := time.Now()
	st := apikey.NewStore(srv.Client(t), "kh:", time.Now)
	put := func(name, env string, created time.Time, expires *time.Time) string {
		plain, _ := apikey.Generate("sk", env)
		k := apikey.Key{ID: apikey.NewID(), Name: name, Type: apikey.Personal, Environment: env, CreatedBy: "usr_x",
			CreatedAt: created, ExpiresAt: expires, ExpiresInDays: 30, Start: plain[:apikey.StartLen]}
		if expires == nil {
			k.ExpiresInDays = 0 // never: a key from before max_expiry_days
		}
		if err := st.Create(t.Context(), k, apikey.NewHasher("").Hash(plain)); err != nil {
			t.Fatal(err)
		}
		return k.ID
	}
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	const day = 24 * time.Hour
	old := put("old", apikey.Live, now.Add(-70*day), nil)               // stale, unused
	idle := put("idle", apikey.Test, now.Add(-25*day), at(30*day))      // unused
	soon := put("soon", apikey.Live, now.Add(-26*day), at(3*day))       // unused, expiring
	fresh := put("fresh", apikey.Live, now.Add(-time.Hour), at(30*day)) // none
	names := map[string]string{old: "old", idle: "idle", soon: "soon", fresh: "fresh"}

	admin := c.ok("keys", "create", "--config", cfgPath, "--name", "ops", "--type", "admin", "--scopes", "*", "--expires-in", "never")
	adminKey := plainKeyRe.FindString(admin)
	names[fields(admin)["id"]] = "ops"
	base := startKeysGateway(t, yaml)
	waitForKey(t, base, adminKey)
	remote := cli{t: t, env: map[string]string{"AUTHGATE_ADDR": base, "AUTHGATE_TOKEN": adminKey, "HOME": t.TempDir()}}

	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--stale"}, []string{"old"}},
		{[]string{"--unused"}, []string{"idle", "old", "soon"}},
		{[]string{"--expiring"}, []string{"soon"}},
		{[]string{"--unused", "--expiring"}, []string{"soon"}},
		{[]string{"--stale", "--unused"}, []string{"old"}},
		{[]string{"--unused", "--env", "test"}, []string{"idle"}},
		{[]string{"--unused", "--search", "s", "--sort", "name"}, []string{"soon"}},
		{[]string{"--unused", "--limit", "1", "--all"}, []string{"idle", "old", "soon"}},
	} {
		for mode, run := range map[string]func(args ...string) string{
			"direct": func(args ...string) string {
				return c.ok(append([]string{"keys", "list", "--config", cfgPath, "--json"}, args...)...)
			},
			"remote": func(args ...string) string { return remote.ok(append([]string{"keys", "list", "--json"}, args...)...) },
		} {
			var got []string
			for _, id := range pageIDs(decodePage(t, run(tt.args...))) {
				got = append(got, names[id])
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s keys list %v = %v, want %v", mode, tt.args, got, tt.want)
			}
		}
	}
	// The table and show give the flags.
	out := c.ok("keys", "list", "--config", cfgPath, "--unused")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, old) && !slices.Contains(strings.Fields(l), "stale,unused") {
			t.Errorf("table row of old lacks stale,unused: %q", l)
		}
	}
	if f := fields(remote.ok("keys", "show", soon)); f["hygiene"] != "unused,expiring" {
		t.Errorf("keys show soon: hygiene %q, want unused,expiring", f["hygiene"])
	}
	if f := fields(c.ok("keys", "show", fresh, "--config", cfgPath)); f["hygiene"] != "-" {
		t.Errorf("keys show fresh --config: hygiene %q, want -", f["hygiene"])
	}

	// max_expiry_days: a personal key that never expires is refused in both modes.
	if code := c.apiErr("keys", "create", "--config", cfgPath, "--name", "forever", "--expires-in", "never"); code != "invalid_request" {
		t.Errorf("direct create --expires-in never: %q, want invalid_request", code)
	}
	if code := remote.apiErr("keys", "create", "--name", "forever", "--expires-in", "365"); code != "invalid_request" {
		t.Errorf("remote create --expires-in 365: %q, want invalid_request", code)
	}
	if code := c.apiErr("keys", "refresh", old, "--config", cfgPath); code != "invalid_request" {
		t.Errorf("direct refresh of a key that never expires: %q, want invalid_request", code)
	}
	if _, _, err := remote.run("keys", "edit", fresh, "--expires-in", "0"); err == nil || !strings.Contains(err.Error(), "max_expiry_days") {
		t.Errorf("remote edit --expires-in 0: %v, want an error naming max_expiry_days", err)
	}
	if p := decodePage(t, c.ok("keys", "list", "--config", cfgPath, "--json", "--search", "forever")); len(p.Keys) != 0 {
		t.Errorf("refused creates stored %d keys", len(p.Keys))
	}
}
