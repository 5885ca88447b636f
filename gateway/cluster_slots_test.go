//go:build cluster

package gateway_test

// Every Redis operation of the gateway's stores, run on a real Redis Cluster through a
// client that checks each command: a script must name at least one key and all its keys
// must hash to one slot, and so must the commands of a MULTI. Redis Cluster itself
// refuses a script that touches a key of another slot ("non local key") and a
// multi-key command across slots (CROSSSLOT); any such error fails the test too.

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/activity"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/issuer"
	"github.com/authgate/authgate/gateway/ratelimit"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/redistest"
	"github.com/authgate/authgate/gateway/user"
)

// slotChecker is a go-redis hook that records every command whose keys span slots.
type slotChecker struct {
	mu      sync.Mutex
	bad     []string
	scripts int // script calls seen
}

func (c *slotChecker) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bad = append(c.bad, fmt.Sprintf(format, args...))
}

// scriptKeys returns the keys of an EVAL/EVALSHA/FCALL (and their _RO forms), and
// whether cmd is one.
func scriptKeys(cmd redis.Cmder) ([]string, bool) {
	switch strings.ToLower(cmd.Name()) {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
	default:
		return nil, false
	}
	args := cmd.Args()
	if len(args) < 3 {
		return nil, true
	}
	n := 0
	switch v := args[2].(type) {
	case int:
		n = v
	case int64:
		n = int(v)
	}
	var keys []string
	for i := 3; i < 3+n && i < len(args); i++ {
		keys = append(keys, fmt.Sprint(args[i]))
	}
	return keys, true
}

func sameSlot(keys []string) bool {
	for _, k := range keys[1:] {
		if redistest.Slot(k) != redistest.Slot(keys[0]) {
			return false
		}
	}
	return true
}

func (c *slotChecker) check(cmd redis.Cmder) {
	if keys, ok := scriptKeys(cmd); ok {
		c.mu.Lock()
		c.scripts++
		c.mu.Unlock()
		if len(keys) == 0 {
			c.fail("%s names no key (a Cluster client sends it to any node)", cmd.Name())
		} else if !sameSlot(keys) {
			c.fail("%s keys in several slots: %v", cmd.Name(), keys)
		}
	}
	if err := cmd.Err(); err != nil && (strings.Contains(err.Error(), "CROSSSLOT") || strings.Contains(err.Error(), "non local key")) {
		c.fail("%s: %v", cmd.Name(), err)
	}
}

func (c *slotChecker) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *slotChecker) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		c.check(cmd)
		return err
	}
}

func (c *slotChecker) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		var txKeys []string
		inTx := false
		for _, cmd := range cmds {
			c.check(cmd)
			switch strings.ToLower(cmd.Name()) {
			case "multi":
				inTx, txKeys = true, nil
			case "exec":
				if len(txKeys) > 1 && !sameSlot(txKeys) {
					c.fail("MULTI/EXEC across slots: %v", txKeys)
				}
				inTx = false
			default:
				if inTx && len(cmd.Args()) > 1 {
					txKeys = append(txKeys, fmt.Sprint(cmd.Args()[1]))
				}
			}
		}
		return err
	}
}

// TestClusterEveryScriptInOneSlot runs each store operation the gateway and the CLI use
// (API keys, users, refresh families, TOTP replay guard, the store's own commands, the
// rate limiter, activity, audit) against a real 3-primary Cluster through the checking
// hook. It fails on any error and on any script or transaction whose keys span slots.
func TestClusterEveryScriptInOneSlot(t *testing.T) {
	c := redistest.StartCluster(t, 3, 0)
	chk := &slotChecker{}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = cc.Close() })
	cc.AddHook(chk)
	ctx := t.Context()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)

	for _, prefix := range []string{"", "authgate:"} {
		// API keys: every operation of apikey.Store, two creators so that the creator
		// indexes differ.
		ks := apikey.NewStore(cc, prefix, nil)
		var ids []string
		for i, by := range []string{"alice", "bob", "alice"} {
			plain, err := apikey.Generate("sk", apikey.Live)
			must("generate", err)
			k := apikey.Key{ID: apikey.NewID(), Name: fmt.Sprintf("key %d", i), Type: apikey.Personal,
				Environment: apikey.Live, Scopes: []string{"orders:read"}, CreatedBy: by, CreatedAt: now,
				ExpiresAt: ptrTime(now.Add(24 * time.Hour)), ExpiresInDays: 1, Start: plain[:apikey.StartLen]}
			must("create", ks.CreateLimited(ctx, k, apikey.NewHasher("").Hash(plain), 5))
			_, err = ks.ByHash(ctx, apikey.NewHasher("").Hash(plain))
			must("by hash", err)
			ids = append(ids, k.ID)
		}
		k, err := ks.Get(ctx, ids[0])
		must("get", err)
		k.Name = "renamed"
		must("update", ks.Update(ctx, k))
		must("touch", ks.TouchLastUsed(ctx, map[string]time.Time{ids[0]: now, ids[1]: now.Add(time.Second)}))
		_, err = ks.MarkRotated(ctx, ids[1], ids[2], ptrTime(now.Add(time.Hour)))
		must("mark rotated", err)
		_, err = ks.Revoke(ctx, ids[0], now)
		must("revoke", err)
		for _, q := range []apikey.Query{{}, {CreatedBy: "alice"}, {Q: "key"}, {Sort: apikey.SortLastUsedAt},
			{Sort: apikey.SortExpiresAt, Status: apikey.StatusActive}, {Sort: apikey.SortName, CreatedBy: "bob"}} {
			_, err := ks.List(ctx, q)
			must(fmt.Sprintf("list %+v", q), err)
		}

		// Users.
		us := user.NewStore(cc, prefix, nil)
		uid := user.NewID()
		u := user.User{ID: uid, Email: "a@example.com", Role: "user"}
		must("user create", us.Create(ctx, u))
		_, err = us.ByEmail(ctx, "a@example.com")
		must("by email", err)
		_, err = us.Modify(ctx, uid, func(u *user.User) error { u.Email = "b@example.com"; u.Disabled = true; return nil })
		must("modify", err)
		got, err := us.Get(ctx, uid)
		must("user get", err)
		got.Role = "admin"
		must("user update", us.Update(ctx, got))
		_, err = us.List(ctx)
		must("user list", err)
		_, err = us.Count(ctx)
		must("user count", err)
		// Teams: every operation, the multi-record ones with a member.
		_, err = us.CreateTeam(ctx, user.Team{ID: "team-a", Name: "A"})
		must("team create", err)
		_, err = us.GetTeam(ctx, "team-a")
		must("team get", err)
		_, err = us.RenameTeam(ctx, "team-a", "AA")
		must("team rename", err)
		_, err = us.ListTeams(ctx)
		must("team list", err)
		must("user unmove", us.Update(ctx, user.User{ID: uid, Email: "b@example.com", Role: "admin"}))
		_, err = us.AddMember(ctx, "team-a", uid)
		must("team add member", err)
		_, err = us.RemoveMember(ctx, "team-a", uid)
		must("team remove member", err)
		_, err = us.AddMember(ctx, "team-a", uid)
		must("team add member", err)
		_, err = us.DeleteTeam(ctx, "team-a")
		must("team delete", err)
		must("user delete", us.Delete(ctx, uid))

		// Refresh-token families.
		rs := issuer.NewRedisRefreshStore(cc, prefix, time.Now).WithReuseGrace(time.Second)
		s1, err := rs.IssueSession(ctx, "u1", 1, time.Hour)
		must("issue", err)
		s2, err := rs.Rotate(ctx, s1.Token, time.Hour)
		must("rotate", err)
		_, err = rs.Rotate(ctx, s1.Token, time.Hour) // within the grace
		must("rotate again", err)
		must("revoke session", rs.RevokeSession(ctx, "u1", s2.Family))
		s3, err := rs.IssueSession(ctx, "u1", 1, time.Hour)
		must("issue", err)
		must("revoke family", rs.RevokeFamily(ctx, "u1", s3.Token))
		_, err = rs.IssueSession(ctx, "u1", 1, time.Hour)
		must("issue", err)
		must("revoke user", rs.RevokeUser(ctx, "u1"))

		// The store (TOTP replay guard, login limits, invalidation) on the same cluster.
		st, err := store.NewRedis(store.RedisOptions{Addrs: c.Addrs(), KeyPrefix: prefix})
		must("store", err)
		st.Client().AddHook(chk)
		_, err = st.Incr(ctx, "login:ip:1.2.3.4", time.Minute)
		must("incr", err)
		_, err = st.SetNX(ctx, "totp:u1:123", []byte("1"), time.Minute)
		must("setnx", err)
		must("set", st.Set(ctx, "a", []byte("1"), 0))
		_, err = st.Get(ctx, "a")
		must("get", err)
		must("delete", st.Delete(ctx, "a", "b", "login:ip:1.2.3.4"))
		must("publish", st.Publish(ctx, "invalidate", []byte("x")))
		totp := issuer.NewTOTPChecker(st, time.Now)
		_ = totp.Check(ctx, "u1", "JBSWY3DPEHPK3PXP", "000000") // a wrong code is fine; a slot error is not
		must("close", st.Close())

		// Rate limits, activity, audit.
		rl := ratelimit.NewRedis(cc, prefix)
		for _, key := range []string{"key:a", "key:b", "ip:1.2.3.4"} {
			_, err := rl.Allow(ctx, key, ratelimit.Limit{Requests: 10, Per: time.Minute})
			must("allow", err)
		}
		sink := activity.NewRedisSink(cc, prefix)
		_, err = sink.Write(ctx, []activity.Event{{KeyID: ids[0], Time: now, ClientIP: "1.2.3.4"}, {KeyID: ids[1], Time: now}})
		must("activity write", err)
		_, err = sink.Recent(ctx, ids[0], 10)
		must("activity recent", err)
		_, err = sink.Daily(ctx, ids[0], 7, now)
		must("activity daily", err)
		al := audit.New(slog.New(slog.DiscardHandler), cc, prefix, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"type"}), time.Now)
		must("audit", al.Record(ctx, audit.Event{Type: audit.KeyNewIP, KeyID: ids[0], Actor: "u1"}))
	}

	// The checker itself catches a script across slots and one without keys.
	self := &slotChecker{}
	sc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = sc.Close() })
	sc.AddHook(self)
	_ = redis.NewScript("return 1").Run(ctx, sc, []string{"{a}x", "{b}x"}).Err()
	_ = redis.NewScript("return 1").Run(ctx, sc, nil).Err()
	if len(self.bad) < 2 {
		t.Errorf("the checker missed a bad script: %v", self.bad)
	}

	chk.mu.Lock()
	defer chk.mu.Unlock()
	for _, b := range chk.bad {
		t.Error(b)
	}
	if chk.scripts < 20 {
		t.Errorf("saw %d script calls; the hook is not watching", chk.scripts)
	}
}

func ptrTime(t time.Time) *time.Time { return &t }
