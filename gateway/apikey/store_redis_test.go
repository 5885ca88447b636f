package apikey

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"
	"github.com/redis/go-redis/v9"
)

// commandStats returns the calls per command since the last CONFIG RESETSTAT, without
// the commands the test itself sends for counting.
func commandStats(t *testing.T, admin *redis.Client) map[string]int {
	t.Helper()
	info, err := admin.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^cmdstat_([a-z|]+):calls=(\d+)`)
	out := map[string]int{}
	for _, m := range re.FindAllStringSubmatch(info, -1) {
		if m[1] == "info" || m[1] == "config|resetstat" || m[1] == "config" {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		out[m[1]] = n
	}
	return out
}

// TestRedisByHashIsOneCommand uses INFO commandstats to show that the
// authentication lookup is one Redis command, found or not.
func TestRedisByHashIsOneCommand(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := NewStore(rdb, "authgate:", time.Now)
	ctx := t.Context()
	k, _, h := newKey(t, "counted")
	if err := s.Create(ctx, k, h); err != nil {
		t.Fatal(err)
	}
	admin := srv.Client(t)
	tests := []struct {
		name    string
		hash    [32]byte
		wantErr error
	}{
		{"found", h, nil},
		{"not found", [32]byte{42}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Both connections are open before the reset, so no handshake is counted.
			if err := rdb.Ping(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if err := admin.ConfigResetStat(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ByHash(ctx, tt.hash); !errors.Is(err, tt.wantErr) {
				t.Fatalf("ByHash = %v, want %v", err, tt.wantErr)
			}
			got := commandStats(t, admin)
			if len(got) != 1 || got["hmget"] != 1 {
				t.Errorf("commands run by ByHash = %v, want exactly map[hmget:1]", got)
			}
		})
	}
}

// TestRedisLayout checks that every key carries the prefix and the {apikeys} hash
// tag, so that the scripts stay in one Cluster slot, and that nothing stored holds
// the plaintext.
func TestRedisLayout(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := NewStore(rdb, "authgate:", time.Now)
	ctx := t.Context()
	k, plain, h := newKey(t, "laid out")
	if err := s.Create(ctx, k, h); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchLastUsed(ctx, map[string]time.Time{k.ID: t0}); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	// record, ids, 4 global and 4 per-creator indexes, the creator's active set, and the
	// hygiene set of expired keys (the key expired at t0+90d, long before now)
	if len(keys) != 12 {
		t.Errorf("got %d keys %v, want 12", len(keys), keys)
	}
	for _, key := range keys {
		if !strings.HasPrefix(key, "authgate:{apikeys}:") {
			t.Errorf("key %q lacks the prefix and hash tag", key)
		}
		var vals []string
		switch typ := rdb.Type(ctx, key).Val(); typ {
		case "hash":
			m := rdb.HGetAll(ctx, key).Val()
			for f, v := range m {
				vals = append(vals, f, v)
			}
		case "zset":
			vals = rdb.ZRange(ctx, key, 0, -1).Val()
		default:
			t.Errorf("key %q has type %s", key, typ)
		}
		for _, v := range vals {
			if strings.Contains(v, plain[StartLen:]) {
				t.Errorf("key %q holds the plaintext", key)
			}
		}
	}
}
