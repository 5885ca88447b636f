package apikey

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestKeyStatus(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second), now.Add(time.Second)
	tests := []struct {
		name    string
		expires *time.Time
		revoked *time.Time
		want    string
	}{
		{"never expires", nil, nil, StatusActive},
		{"expires later", &future, nil, StatusActive},
		{"expired", &past, nil, StatusExpired},
		{"expires exactly now", &now, nil, StatusExpired},
		{"revoked", nil, &past, StatusRevoked},
		{"revoked and expired", &past, &past, StatusRevoked},
		{"revoked later than now still revoked", &future, &future, StatusRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := Key{ExpiresAt: tt.expires, RevokedAt: tt.revoked}
			if got := k.Status(now); got != tt.want {
				t.Errorf("Status = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if !validID(id) {
			t.Fatalf("NewID() = %q, not a valid ID", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "key_", "key_abc", "kez_" + strings.Repeat("a", 20), "key_" + strings.Repeat("-", 20), "key_" + strings.Repeat("a", 21)} {
		if validID(bad) {
			t.Errorf("validID(%q) = true, want false", bad)
		}
	}
}

func TestEncodeTimeOrder(t *testing.T) {
	times := []time.Time{
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
		time.Unix(0, int64(time.Millisecond)),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	var enc []string
	for _, tm := range times {
		e := encodeTime(tm)
		if len(e) != 16 {
			t.Fatalf("encodeTime(%v) = %q, want 16 hex digits", tm, e)
		}
		back, err := decodeTime(e)
		if err != nil || !back.Equal(tm) {
			t.Errorf("decodeTime(encodeTime(%v)) = %v, %v", tm, back, err)
		}
		enc = append(enc, e)
	}
	if !slices.IsSorted(enc) {
		t.Errorf("encoded times not in time order: %q", enc)
	}
	if timeUnused >= enc[0] || timeNever <= enc[len(enc)-1] {
		t.Errorf("sentinels do not bound real times")
	}
}

func TestQueryValidate(t *testing.T) {
	good, err := Query{Sort: SortName}.validate()
	if err != nil {
		t.Fatal(err)
	}
	if good.Order != Asc || good.Limit != DefaultLimit {
		t.Errorf("defaults for name: order %q limit %d, want asc %d", good.Order, good.Limit, DefaultLimit)
	}
	def, _ := Query{}.validate()
	if def.Sort != SortCreatedAt || def.Order != Desc {
		t.Errorf("defaults: sort %q order %q, want created_at desc", def.Sort, def.Order)
	}
	big, _ := Query{Limit: 5000}.validate()
	if big.Limit != MaxLimit {
		t.Errorf("limit 5000 became %d, want %d", big.Limit, MaxLimit)
	}
	nameCursor := good.nextCursor("abc\x00" + NewID())
	tests := []struct {
		name string
		q    Query
	}{
		{"unknown sort", Query{Sort: "id"}},
		{"unknown order", Query{Order: "up"}},
		{"unknown status", Query{Status: "dead"}},
		{"unknown environment", Query{Environment: "prod"}},
		{"negative limit", Query{Limit: -1}},
		{"garbage cursor", Query{Cursor: "!!!"}},
		{"cursor of another sort", Query{Sort: SortCreatedAt, Cursor: nameCursor}},
		{"cursor of another order", Query{Sort: SortName, Order: Desc, Cursor: nameCursor}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.q.validate(); !errors.Is(err, ErrInvalid) {
				t.Errorf("validate() = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := (Query{Sort: SortName, Cursor: nameCursor}).validate(); err != nil {
		t.Errorf("own cursor refused: %v", err)
	}
}

func TestRateLimitPerString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute: "1m", time.Hour: "1h", 90 * time.Minute: "1h30m", 30 * time.Second: "30s",
		500 * time.Millisecond: "500ms", 24 * time.Hour: "24h", 61 * time.Second: "1m1s",
	} {
		if got := (RateLimit{Per: d}).PerString(); got != want {
			t.Errorf("PerString(%v) = %q, want %q", d, got, want)
		}
	}
}
