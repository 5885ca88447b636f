package activity

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const dayLayout = "2006-01-02"

// dayRetention is how long daily counts are kept.
const dayRetention = 400 * 24 * time.Hour

// RedisSink keeps activity in Redis: a list of JSON events per key
// ("<prefix>activity:<id>", LPUSH + LTRIM to Keep) and a hash of counts per day
// ("<prefix>activity-daily:<id>", HINCRBY on the UTC date). A batch is one pipeline; in a
// Cluster, go-redis splits it by slot.
type RedisSink struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisSink returns a sink on rdb whose keys start with prefix (store.redis.key_prefix).
func NewRedisSink(rdb redis.UniversalClient, prefix string) *RedisSink {
	return &RedisSink{rdb: rdb, prefix: prefix}
}

func (s *RedisSink) recentKey(id string) string { return s.prefix + "activity:" + id }
func (s *RedisSink) dailyKey(id string) string  { return s.prefix + "activity-daily:" + id }

func (s *RedisSink) ipsKey(id string) string { return s.prefix + "activity-ips:" + id }

// Write stores batch in one pipeline. The client IPs each key was used from are kept in a
// set ("<prefix>activity-ips:<id>"); an SADD that adds reports a new IP.
func (s *RedisSink) Write(ctx context.Context, batch []Event) ([]Event, error) {
	byKey := map[string][]any{}
	counts := map[string]map[string]int64{}
	firstFrom := map[[2]string]Event{} // key, IP -> first event of the batch from there
	for _, e := range batch {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("activity: encode: %w", err)
		}
		byKey[e.KeyID] = append(byKey[e.KeyID], b)
		if counts[e.KeyID] == nil {
			counts[e.KeyID] = map[string]int64{}
		}
		counts[e.KeyID][e.Time.UTC().Format(dayLayout)]++
		if _, seen := firstFrom[[2]string{e.KeyID, e.ClientIP}]; !seen && e.ClientIP != "" {
			firstFrom[[2]string{e.KeyID, e.ClientIP}] = e
		}
	}
	type probe struct {
		e   Event
		cmd *redis.IntCmd
	}
	var probes []probe
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, events := range byKey {
			p.LPush(ctx, s.recentKey(id), events...)
			p.LTrim(ctx, s.recentKey(id), 0, Keep-1)
			for day, n := range counts[id] {
				p.HIncrBy(ctx, s.dailyKey(id), day, n)
			}
			p.Expire(ctx, s.dailyKey(id), dayRetention)
		}
		for pair, e := range firstFrom {
			probes = append(probes, probe{e, p.SAdd(ctx, s.ipsKey(pair[0]), pair[1])})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("activity: write %d events: %w", len(batch), err)
	}
	var fresh []Event
	for _, pr := range probes {
		if pr.cmd.Val() == 1 {
			fresh = append(fresh, pr.e)
		}
	}
	return fresh, nil
}

// Recent returns keyID's last n events, newest first.
func (s *RedisSink) Recent(ctx context.Context, keyID string, n int) ([]Event, error) {
	raw, err := s.rdb.LRange(ctx, s.recentKey(keyID), 0, int64(min(n, Keep))-1).Result()
	if err != nil {
		return nil, fmt.Errorf("activity: recent: %w", err)
	}
	out := make([]Event, 0, len(raw))
	for _, r := range raw {
		var e Event
		if err := json.Unmarshal([]byte(r), &e); err != nil {
			return nil, fmt.Errorf("activity: decode: %w", err)
		}
		e.KeyID = keyID
		out = append(out, e)
	}
	return out, nil
}

// Daily returns keyID's counts for the last days days, oldest first.
func (s *RedisSink) Daily(ctx context.Context, keyID string, days int, now time.Time) ([]Day, error) {
	out := dayRange(days, now)
	fields := make([]string, len(out))
	for i, d := range out {
		fields[i] = d.Date
	}
	vals, err := s.rdb.HMGet(ctx, s.dailyKey(keyID), fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("activity: daily: %w", err)
	}
	for i, v := range vals {
		if str, ok := v.(string); ok {
			out[i].Requests, _ = strconv.ParseInt(str, 10, 64)
		}
	}
	return out, nil
}

// dayRange is the days days up to now's UTC date, oldest first, with zero counts.
func dayRange(days int, now time.Time) []Day {
	out := make([]Day, days)
	today := now.UTC()
	for i := range days {
		out[i].Date = today.AddDate(0, 0, i-days+1).Format(dayLayout)
	}
	return out
}

// MemorySink keeps activity in process, for the memory store. Each key's recent events
// are a ring of Keep slots, so a busy key costs no copying. It is safe for concurrent use.
type MemorySink struct {
	mu     sync.Mutex
	recent map[string]*ring
	daily  map[string]map[string]int64
	ips    map[string]map[string]bool // key -> client IPs it was used from
}

// ring holds the last Keep events of one key; next is where the next event goes.
type ring struct {
	events []Event
	next   int
}

func (r *ring) add(e Event) {
	if len(r.events) < Keep {
		r.events = append(r.events, e)
		return
	}
	r.events[r.next] = e
	r.next = (r.next + 1) % Keep
}

// newest returns the last n events, newest first.
func (r *ring) newest(n int) []Event {
	n = min(n, len(r.events))
	out := make([]Event, 0, n)
	last := len(r.events) - 1 // before the ring wraps, the newest is last
	if len(r.events) == Keep {
		last = (r.next - 1 + Keep) % Keep
	}
	for i := range n {
		out = append(out, r.events[(last-i+len(r.events))%len(r.events)])
	}
	return out
}

// NewMemorySink returns an empty MemorySink.
func NewMemorySink() *MemorySink {
	return &MemorySink{recent: map[string]*ring{}, daily: map[string]map[string]int64{}, ips: map[string]map[string]bool{}}
}

// Write stores batch.
func (s *MemorySink) Write(_ context.Context, batch []Event) ([]Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var fresh []Event
	for _, e := range batch {
		if e.ClientIP != "" {
			if s.ips[e.KeyID] == nil {
				s.ips[e.KeyID] = map[string]bool{}
			}
			if !s.ips[e.KeyID][e.ClientIP] {
				s.ips[e.KeyID][e.ClientIP] = true
				fresh = append(fresh, e)
			}
		}
		r := s.recent[e.KeyID]
		if r == nil {
			r = &ring{}
			s.recent[e.KeyID] = r
		}
		r.add(e)
		if s.daily[e.KeyID] == nil {
			s.daily[e.KeyID] = map[string]int64{}
		}
		s.daily[e.KeyID][e.Time.UTC().Format(dayLayout)]++
	}
	return fresh, nil
}

// Recent returns keyID's last n events, newest first.
func (s *MemorySink) Recent(_ context.Context, keyID string, n int) ([]Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.recent[keyID]
	if r == nil {
		return []Event{}, nil
	}
	return r.newest(n), nil
}

// Daily returns keyID's counts for the last days days, oldest first.
func (s *MemorySink) Daily(_ context.Context, keyID string, days int, now time.Time) ([]Day, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := dayRange(days, now)
	for i := range out {
		out[i].Requests = s.daily[keyID][out[i].Date]
	}
	return out, nil
}
