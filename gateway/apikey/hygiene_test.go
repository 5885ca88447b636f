package apikey

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/clocktest"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// hygieneStore is what the hygiene tests need of both stores.
type hygieneStore interface {
	store
	HygieneCounts(ctx context.Context, h Hygiene) (Counts, error)
	Expiring(ctx context.Context, within time.Duration, limit int) ([]Key, error)
}

var (
	_ hygieneStore = (*MemStore)(nil)
	_ hygieneStore = (*Store)(nil)
)

const hday = 24 * time.Hour

var testHygiene = Hygiene{MaxAge: 90 * hday, UnusedAfter: 30 * hday, ExpiringWithin: 7 * hday}

// TestHygieneAgesKeysThroughEveryState moves a fake clock through 94 days and checks, at
// each step, every key's flags, the list filters (alone, combined, and with other
// filters) and the counts of authgate_api_keys, on both stores; on Redis the counts come
// from the hygiene sets and are checked from a second Store (another replica) too.
func TestHygieneAgesKeysThroughEveryState(t *testing.T) {
	run := func(t *testing.T, s, replica hygieneStore, clk *clocktest.Clock) {
		ctx := t.Context()
		mk := func(name string, expires time.Duration) Key {
			k, _, h := newKey(t, name)
			k.CreatedAt, k.ExpiresAt, k.ExpiresInDays = t0, nil, 0
			if expires > 0 {
				k.ExpiresAt = ptr(t0.Add(expires))
			}
			if err := s.Create(ctx, k, h); err != nil {
				t.Fatal(err)
			}
			return k
		}
		a := mk("a-monthly", 30*hday)
		b := mk("b-forever", 0)
		c := mk("c-long", 100*hday)
		d := mk("d-revoked", 0)
		e := mk("e-short", 10*hday)
		if _, err := s.Revoke(ctx, d.ID, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		names := map[string]string{a.ID: "a", b.ID: "b", c.ID: "c", d.ID: "d", e.ID: "e"}
		touch := func(k Key) {
			if err := s.TouchLastUsed(ctx, map[string]time.Time{k.ID: clk.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		steps := []struct {
			at     time.Duration
			before func()
			flags  map[string]string // key -> flags ("" none); absent: revoked or expired
			counts Counts
		}{
			{0, nil, map[string]string{"a": "", "b": "", "c": "", "e": ""}, Counts{Active: 4}},
			{4 * hday, func() { touch(a) }, map[string]string{"a": "", "b": "", "c": "", "e": "expiring"},
				Counts{Active: 4, Expiring: 1}},
			{11 * hday, func() { touch(c) }, map[string]string{"a": "", "b": "", "c": ""}, Counts{Active: 3, Expired: 1}},
			{24 * hday, nil, map[string]string{"a": "expiring", "b": "", "c": ""}, Counts{Active: 3, Expiring: 1, Expired: 1}},
			{31 * hday, nil, map[string]string{"b": "unused", "c": ""}, Counts{Active: 2, Unused: 1, Expired: 2}},
			// Refreshing the expired e brings it back: active, unused (never used, 41 days old).
			{41 * hday, func() {
				k, err := s.Get(ctx, e.ID)
				if err != nil {
					t.Fatal(err)
				}
				k.ExpiresAt = ptr(clk.Now().Add(10 * hday))
				if err := s.Update(ctx, k); err != nil {
					t.Fatal(err)
				}
			}, map[string]string{"b": "unused", "c": "unused", "e": "unused"}, Counts{Active: 3, Unused: 3, Expired: 1}},
			{91 * hday, func() { touch(c) }, map[string]string{"b": "stale,unused", "c": "stale"},
				Counts{Active: 2, Stale: 2, Unused: 1, Expired: 2}},
			{94 * hday, func() {
				if _, err := s.Revoke(ctx, b.ID, clk.Now()); err != nil {
					t.Fatal(err)
				}
			}, map[string]string{"c": "stale,expiring"}, Counts{Active: 1, Stale: 1, Expiring: 1, Expired: 2}},
		}
		for _, st := range steps {
			clk.Set(t0.Add(st.at))
			if st.before != nil {
				st.before()
			}
			dayN := int(st.at / hday)
			all, err := s.List(ctx, Query{Limit: MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, k := range all.Keys {
				if k.Status(clk.Now()) == StatusActive {
					got[names[k.ID]] = strings.Join(testHygiene.Flags(k, clk.Now()), ",")
				} else if f := testHygiene.Flags(k, clk.Now()); len(f) != 0 {
					t.Errorf("day %d: %s is %s but flagged %v", dayN, names[k.ID], k.Status(clk.Now()), f)
				}
			}
			if !mapsEqual(got, st.flags) {
				t.Errorf("day %d: flags %v, want %v", dayN, got, st.flags)
			}
			for _, q := range []Query{{Stale: true}, {Unused: true}, {Expiring: true}, {Stale: true, Unused: true},
				{Stale: true, Expiring: true}, {Unused: true, Q: "b-"}, {Unused: true, Status: StatusActive, Sort: SortName}} {
				q.Hygiene, q.Limit = testHygiene, 2
				var ids []string
				for {
					p, err := s.List(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					for _, k := range p.Keys {
						ids = append(ids, names[k.ID])
					}
					if p.NextCursor == "" {
						break
					}
					q.Cursor = p.NextCursor
				}
				slices.Sort(ids)
				var want []string
				for n, f := range st.flags {
					has := func(flag string) bool { return slices.Contains(strings.Split(f, ","), flag) }
					if (!q.Stale || has(FlagStale)) && (!q.Unused || has(FlagUnused)) && (!q.Expiring || has(FlagExpiring)) &&
						strings.HasPrefix(n, strings.TrimSuffix(q.Q, "-")) {
						want = append(want, n)
					}
				}
				slices.Sort(want)
				if !slices.Equal(ids, want) {
					t.Errorf("day %d: list %+v = %v, want %v", dayN, Query{Stale: q.Stale, Unused: q.Unused, Expiring: q.Expiring, Q: q.Q}, ids, want)
				}
			}
			for i, r := range []hygieneStore{s, replica} {
				c, err := r.HygieneCounts(ctx, testHygiene)
				if err != nil {
					t.Fatal(err)
				}
				if c != st.counts {
					t.Errorf("day %d: counts (store %d) = %+v, want %+v", dayN, i, c, st.counts)
				}
			}
			exp, err := s.Expiring(ctx, testHygiene.ExpiringWithin, 10)
			if err != nil {
				t.Fatal(err)
			}
			var en []string
			for _, k := range exp {
				en = append(en, names[k.ID])
			}
			var wantExp []string
			for n, f := range st.flags {
				if strings.Contains(f, FlagExpiring) {
					wantExp = append(wantExp, n)
				}
			}
			slices.Sort(en)
			slices.Sort(wantExp)
			if !slices.Equal(en, wantExp) {
				t.Errorf("day %d: Expiring = %v, want %v", dayN, en, wantExp)
			}
		}
	}
	t.Run("memory", func(t *testing.T) {
		clk := clocktest.New(t0)
		s := NewMemStore(clk.Now)
		run(t, s, s, clk)
	})
	t.Run("redis two replicas", func(t *testing.T) {
		srv := redistest.Start(t)
		clk := clocktest.New(t0)
		run(t, NewStore(srv.Client(t), "test:", clk.Now), NewStore(srv.Client(t), "test:", clk.Now), clk)
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestHygieneCountsReadIndexesOnly shows with INFO commandstats that counting reads the
// hygiene sets only: no key record is read, however many keys there are.
func TestHygieneCountsReadIndexesOnly(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	clk := clocktest.New(t0)
	s := NewStore(rdb, "authgate:", clk.Now)
	ctx := t.Context()
	for i := range 50 {
		k, _, h := newKey(t, "k")
		k.CreatedAt = t0.Add(time.Duration(i) * hday)
		if err := s.Create(ctx, k, h); err != nil {
			t.Fatal(err)
		}
	}
	clk.Set(t0.Add(95 * hday)) // half of the keys expired: the first count sweeps them
	if _, err := s.HygieneCounts(ctx, testHygiene); err != nil {
		t.Fatal(err)
	}
	admin := srv.Client(t)
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	c, err := s.HygieneCounts(ctx, testHygiene)
	if err != nil {
		t.Fatal(err)
	}
	if c.Active+c.Expired != 50 || c.Expired == 0 {
		t.Fatalf("counts = %+v, want 50 keys, some expired", c)
	}
	for cmd := range commandStats(t, admin) {
		switch cmd {
		case "exists", "evalsha", "zrangebyscore", "zcount", "zcard":
		default:
			t.Errorf("HygieneCounts ran %s; want only reads of the hygiene sets", cmd)
		}
	}
}

// TestHygieneSetsFilledOnce checks that a store whose hygiene sets are missing (written
// by an older version) gets them filled from the records on the first count.
func TestHygieneSetsFilledOnce(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	clk := clocktest.New(t0)
	s := NewStore(rdb, "authgate:", clk.Now)
	s.batch = 3
	ctx := t.Context()
	var revoked string
	for i := range 10 {
		k, _, h := newKey(t, "k")
		k.CreatedAt = t0.Add(time.Duration(i) * hday)
		switch i % 3 {
		case 0:
			k.ExpiresAt = nil
		case 1:
			k.ExpiresAt = ptr(t0.Add(95 * hday))
		case 2:
			k.ExpiresAt = ptr(t0.Add(50 * hday))
		}
		if err := s.Create(ctx, k, h); err != nil {
			t.Fatal(err)
		}
		revoked = k.ID
	}
	if _, err := s.Revoke(ctx, revoked, t0); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(92 * hday))
	want, err := s.HygieneCounts(ctx, testHygiene)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, s.hKey("live"), s.hKey("age"), s.hKey("use"), s.hKey("expired"), s.hKey("ready")).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := NewStore(rdb, "authgate:", clk.Now).HygieneCounts(ctx, testHygiene)
	if err != nil {
		t.Fatal(err)
	}
	if exp := (Counts{Active: 6, Expiring: 3, Stale: 2, Unused: 6, Expired: 3}); got != exp || want != exp {
		t.Fatalf("counts after refill = %+v, before = %+v; want %+v", got, want, exp)
	}
}
