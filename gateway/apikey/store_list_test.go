package apikey

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/clocktest"
)

// listFixture is a set of keys covering every filter, with ties in name, creation
// time, expiry and last use. The store's clock is at day 50.
type listFixture struct {
	keys []Key // index i is key i below
}

func day(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }

func newListFixture(t *testing.T, s store) listFixture {
	t.Helper()
	ctx := t.Context()
	specs := []struct {
		name, by, env, typ string
		created            time.Duration
		expires            *time.Time
		revoked            bool
	}{
		0: {"alpha prod", "alice", Live, Personal, 1 * time.Hour, nil, false},
		1: {"Alpha staging", "alice", Test, Personal, 2 * time.Hour, ptr(day(30)), false}, // expired
		2: {"beta", "bob", Live, Personal, 3 * time.Hour, ptr(day(90)), false},
		3: {"Beta two", "bob", Test, Admin, 4 * time.Hour, ptr(day(60)), true},
		4: {"gamma", "carol", Live, Personal, 5 * time.Hour, nil, true},
		5: {"delta", "alice", Live, Personal, 6 * time.Hour, ptr(day(365)), false},
		6: {"ALPHABET", "carol", Test, Personal, 7 * time.Hour, ptr(day(40)), false}, // expired
		7: {"Beta", "bob", Live, Personal, 8 * time.Hour, nil, false},                // name ties with 2
		8: {"zeta", "alice", Live, Personal, 8 * time.Hour, ptr(day(90)), false},     // ties with 7 and 2
	}
	var f listFixture
	for _, sp := range specs {
		k, _, h := newKey(t, sp.name)
		k.CreatedBy, k.Environment, k.Type = sp.by, sp.env, sp.typ
		k.CreatedAt, k.ExpiresAt = t0.Add(sp.created), sp.expires
		if err := s.Create(ctx, k, h); err != nil {
			t.Fatal(err)
		}
		if sp.revoked {
			var err error
			if k, err = s.Revoke(ctx, k.ID, day(5)); err != nil {
				t.Fatal(err)
			}
		}
		f.keys = append(f.keys, k)
	}
	used := map[string]time.Time{f.keys[0].ID: day(20), f.keys[2].ID: day(21), f.keys[5].ID: day(20)}
	if err := s.TouchLastUsed(ctx, used); err != nil {
		t.Fatal(err)
	}
	for i := range f.keys {
		if at, ok := used[f.keys[i].ID]; ok {
			f.keys[i].LastUsedAt = ptr(at)
		}
	}
	return f
}

// refCompare orders keys for sort independently of the stores' index encoding.
func refCompare(sort string) func(a, b Key) int {
	byTime := func(a, b *time.Time, nilFirst bool) int {
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return map[bool]int{true: -1, false: 1}[nilFirst]
		case b == nil:
			return map[bool]int{true: 1, false: -1}[nilFirst]
		}
		return a.Compare(*b)
	}
	return func(a, b Key) int {
		var c int
		switch sort {
		case SortName:
			c = strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
		case SortCreatedAt:
			c = a.CreatedAt.Compare(b.CreatedAt)
		case SortExpiresAt:
			c = byTime(a.ExpiresAt, b.ExpiresAt, false)
		case SortLastUsedAt:
			c = byTime(a.LastUsedAt, b.LastUsedAt, true)
		}
		return cmp.Or(c, strings.Compare(a.ID, b.ID))
	}
}

// listAll pages through q with q.Limit and fails on a duplicate or a bad cursor.
func listAll(t *testing.T, s store, q Query) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatalf("List(%+v): more than 100 pages", q)
		}
		p, err := s.List(context.Background(), q)
		if err != nil {
			t.Fatalf("List(%+v): %v", q, err)
		}
		if len(p.Keys) > q.Limit {
			t.Fatalf("List(%+v): %d keys, limit %d", q, len(p.Keys), q.Limit)
		}
		for _, k := range p.Keys {
			if seen[k.ID] {
				t.Fatalf("List(%+v): %s returned twice", q, k.ID)
			}
			seen[k.ID] = true
			out = append(out, k.ID)
		}
		if p.NextCursor == "" {
			return out
		}
		if len(p.Keys) != q.Limit {
			t.Fatalf("List(%+v): short page of %d with a next cursor", q, len(p.Keys))
		}
		q.Cursor = p.NextCursor
	}
}

// TestStoreListFiltersAndSorts checks every filter, alone and combined, under every
// sort field in both orders, paging two keys at a time.
func TestStoreListFiltersAndSorts(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, _ *clocktest.Clock) {
		f := newListFixture(t, s)
		all := []int{0, 1, 2, 3, 4, 5, 6, 7, 8}
		tests := []struct {
			name string
			q    Query
			want []int // fixture indexes, any order
		}{
			{"no filter", Query{}, all},
			{"q at the start", Query{Q: "alpha"}, []int{0, 1, 6}},
			{"q is case-insensitive", Query{Q: "ALP"}, []int{0, 1, 6}},
			{"q is a substring, not only a prefix", Query{Q: "pha"}, []int{0, 1, 6}},
			{"q inside words", Query{Q: "ta"}, []int{1, 2, 3, 5, 7, 8}},
			{"q across a space", Query{Q: "a s"}, []int{1}},
			{"q matching nothing", Query{Q: "omega"}, nil},
			{"q with ties", Query{Q: "beta"}, []int{2, 3, 7}},
			{"q matching one whole name", Query{Q: "beta two"}, []int{3}},
			{"created_by", Query{CreatedBy: "alice"}, []int{0, 1, 5, 8}},
			{"created_by unknown", Query{CreatedBy: "nobody"}, nil},
			{"created_by and q", Query{CreatedBy: "alice", Q: "alpha"}, []int{0, 1}},
			{"environment", Query{Environment: Test}, []int{1, 3, 6}},
			{"status active", Query{Status: StatusActive}, []int{0, 2, 5, 7, 8}},
			{"status expired", Query{Status: StatusExpired}, []int{1, 6}},
			{"status revoked", Query{Status: StatusRevoked}, []int{3, 4}},
			{"created_by and status", Query{CreatedBy: "bob", Status: StatusActive}, []int{2, 7}},
			{"environment and status", Query{Environment: Live, Status: StatusRevoked}, []int{4}},
			{"q and status", Query{Q: "alpha", Status: StatusExpired}, []int{1, 6}},
			{"everything", Query{Q: "b", CreatedBy: "bob", Environment: Live, Status: StatusActive}, []int{2, 7}},
			{"name is exact", Query{Name: "beta"}, []int{2}},
			{"name keeps its case", Query{Name: "Beta"}, []int{7}},
			{"name with a space", Query{Name: "Beta two"}, []int{3}},
			{"name is not a prefix", Query{Name: "bet"}, nil},
			{"name and created_by", Query{Name: "beta", CreatedBy: "bob"}, []int{2}},
			{"name of another creator", Query{Name: "beta", CreatedBy: "alice"}, nil},
			{"name and q", Query{Name: "Beta two", Q: "two"}, []int{3}},
			{"name and status", Query{Name: "Beta two", Status: StatusActive}, nil},
		}
		for _, tt := range tests {
			for _, sort := range sortFields {
				for _, order := range []string{Asc, Desc} {
					t.Run(fmt.Sprintf("%s/%s/%s", tt.name, sort, order), func(t *testing.T) {
						var want []Key
						for _, i := range tt.want {
							want = append(want, f.keys[i])
						}
						slices.SortFunc(want, refCompare(sort))
						if order == Desc {
							slices.Reverse(want)
						}
						q := tt.q
						q.Sort, q.Order, q.Limit = sort, order, 2
						got := listAll(t, s, q)
						if strings.Join(got, ",") != strings.Join(ids(want), ",") {
							t.Errorf("got %v,\nwant %v", names(f, got), names(f, ids(want)))
						}
					})
				}
			}
		}
	})
}

// TestStoreListSearchByID: q of the form "key_…" also finds the keys whose ID starts
// with it; a bare "key_" (every ID's start) does not list every key.
func TestStoreListSearchByID(t *testing.T) {
	forEachStore(t, func(t *testing.T, s store, _ *clocktest.Clock) {
		f := newListFixture(t, s)
		id := f.keys[4].ID
		for _, q := range []string{id, id[:12]} {
			got := listAll(t, s, Query{Q: q, Limit: 50})
			if !slices.Contains(got, id) {
				t.Errorf("q=%q: got %v, want %s among them", q, names(f, got), id)
			}
			if len(got) > 1 && q == id {
				t.Errorf("q=%q (a whole ID): got %d keys, want 1", q, len(got))
			}
		}
		if got := listAll(t, s, Query{Q: "key_", Limit: 50}); len(got) != 0 {
			t.Errorf(`q="key_": got %v, want none (no name contains it)`, names(f, got))
		}
		if got := listAll(t, s, Query{Q: strings.ToLower(id), Limit: 50}); slices.Contains(got, id) && strings.ToLower(id) != id {
			t.Errorf("q=%q: an ID matches case-sensitively only", strings.ToLower(id))
		}
	})
}

// names maps IDs to fixture names, for readable failures.
func names(f listFixture, got []string) []string {
	var out []string
	for _, id := range got {
		for _, k := range f.keys {
			if k.ID == id {
				out = append(out, k.Name)
			}
		}
	}
	return out
}

// TestStoreListPagination pages through 30 keys while keys are inserted before and
// after the cursor: no key is returned twice or skipped, the key inserted behind
// the cursor does not appear and the one ahead of it does.
func TestStoreListPagination(t *testing.T) {
	tests := []struct {
		name   string
		sort   string
		order  string
		behind func(i int) Key // a key that sorts before the current cursor
		ahead  func(i int) Key // a key that sorts after everything
	}{
		{
			name: "created_at asc", sort: SortCreatedAt, order: Asc,
			behind: func(i int) Key {
				return Key{Name: fmt.Sprintf("late %d", i), CreatedAt: t0.Add(-time.Duration(i+1) * time.Hour)}
			},
			ahead: func(i int) Key {
				return Key{Name: fmt.Sprintf("late %d", i), CreatedAt: t0.Add(time.Duration(1000+i) * time.Hour)}
			},
		},
		{
			name: "name desc", sort: SortName, order: Desc,
			behind: func(i int) Key { return Key{Name: fmt.Sprintf("zz %d", i), CreatedAt: t0} },
			ahead:  func(i int) Key { return Key{Name: fmt.Sprintf("aa %d", i), CreatedAt: t0} },
		},
		{
			name: "last_used_at desc", sort: SortLastUsedAt, order: Desc,
			// Never-used keys sort first in asc, so last in desc: ahead.
			behind: func(i int) Key {
				return Key{Name: fmt.Sprintf("used %d", i), CreatedAt: t0, LastUsedAt: ptr(day(900 + i))}
			},
			ahead: func(i int) Key { return Key{Name: fmt.Sprintf("unused %d", i), CreatedAt: t0} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, s store, _ *clocktest.Clock) {
				ctx := t.Context()
				create := func(k Key) string {
					t.Helper()
					base, _, h := newKey(t, k.Name)
					base.Name, base.CreatedAt, base.LastUsedAt = k.Name, k.CreatedAt, k.LastUsedAt
					if err := s.Create(ctx, base, h); err != nil {
						t.Fatal(err)
					}
					return base.ID
				}
				want := map[string]bool{}
				for i := range 30 {
					want[create(Key{
						Name:       fmt.Sprintf("key %02d", i),
						CreatedAt:  t0.Add(time.Duration(i) * time.Minute),
						LastUsedAt: ptr(day(100 + i/2)), // pairs tie
					})] = true
				}
				q := Query{Sort: tt.sort, Order: tt.order, Limit: 7}
				seen := map[string]bool{}
				unwanted := map[string]bool{}
				for pages := 0; ; pages++ {
					p, err := s.List(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					for _, k := range p.Keys {
						if seen[k.ID] {
							t.Fatalf("page %d: %s (%s) returned twice", pages, k.ID, k.Name)
						}
						seen[k.ID] = true
					}
					if p.NextCursor == "" {
						break
					}
					// Insert between pages: one key behind the cursor, one ahead.
					unwanted[create(tt.behind(pages))] = true
					want[create(tt.ahead(pages))] = true
					q.Cursor = p.NextCursor
				}
				for id := range want {
					if !seen[id] {
						t.Errorf("key %s skipped", id)
					}
				}
				for id := range unwanted {
					if seen[id] {
						t.Errorf("key %s inserted behind the cursor was returned", id)
					}
				}
				if len(seen) != len(want) {
					t.Errorf("saw %d keys, want %d", len(seen), len(want))
				}
			})
		})
	}
}
