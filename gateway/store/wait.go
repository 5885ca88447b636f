package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated is returned by WaitReplicas when fewer replicas than required
// confirmed a write in time. The write happened on the primary, but a failover before it
// reaches a replica would lose it; callers answer that the outcome is not guaranteed.
var ErrNotReplicated = errors.New("store: write not confirmed by enough replicas in time")

// waiter decides how many replicas WaitReplicas waits for. With Auto the number is
// found once, at the first wait that can ask Redis, and kept for the process's life.
type waiter struct {
	replicas int // -1: auto, not decided yet
	timeout  time.Duration

	mu      sync.Mutex
	decided bool
	auto    int       // the number found in auto mode
	checked time.Time // when auto mode last found no replica
}

// WaitReplicas makes sure the writes already made to keys (store keys, without the
// KeyPrefix) have reached the configured number of replicas: for each distinct hash
// slot among keys, it sends, on one connection to the primary that serves the slot, a
// marker write in that slot and WAIT. Redis's WAIT counts the replicas that acknowledged
// every write made on that connection, and so every earlier write to the slot, whichever
// connection made it: the replication stream is ordered. It returns ErrNotReplicated
// when fewer replicas confirm within the timeout, and a wrapped error when Redis cannot
// be reached. With no replicas configured (or found, in auto mode) it does nothing.
func (r *Redis) WaitReplicas(ctx context.Context, keys ...string) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	n, err := r.waitFor(ctx)
	if err != nil {
		return fmt.Errorf("store: wait replicas: %w", err)
	}
	if n == 0 || len(keys) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, k := range keys {
		full := r.Key(k)
		h := hashPart(full)
		if seen[h] {
			continue
		}
		seen[h] = true
		if err := r.waitOne(ctx, full, h, n); err != nil {
			return err
		}
	}
	return nil
}

// hashPart is the part of key Redis Cluster hashes: the hash tag when there is a
// non-empty one, else the whole key.
func hashPart(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// waitOne writes the marker "{h}:wait" (in key's slot, since its tag is key's hash
// part) and WAITs, pipelined on one connection to key's primary.
func (r *Redis) waitOne(ctx context.Context, key, h string, n int) error {
	var node redis.Cmdable = r.rdb
	if cc, ok := r.rdb.(*redis.ClusterClient); ok {
		c, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return fmt.Errorf("store: wait replicas: find the primary: %w", err)
		}
		node = c
	}
	marker := "{" + h + "}:wait"
	if strings.ContainsAny(h, "{}") {
		// Not expressible as a tag; only a single node or Sentinel can have such a key
		// waited on (one primary holds everything).
		marker = r.prefix + "wait"
	}
	var wait *redis.Cmd
	_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, marker, "1", time.Second)
		wait = p.Do(ctx, "WAIT", n, r.wait.timeout.Milliseconds())
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: wait replicas: %w", err)
	}
	got, err := wait.Int()
	if err != nil {
		return fmt.Errorf("store: wait replicas: %w", err)
	}
	if got < n {
		return fmt.Errorf("%w (%d of %d within %s)", ErrNotReplicated, got, n, r.wait.timeout)
	}
	return nil
}

// redetect is how long auto mode trusts a check that found no replica before it asks
// again (a replica may still be syncing when the gateway starts).
const redetect = 5 * time.Second

// waitFor returns how many replicas to wait for. In auto mode: 1 with Sentinel; with
// Cluster, 1 when every slot range lists a replica; with one address, 1 when the server
// has a connected replica; else 0. Once a replica has been found the answer stays 1 for
// the process's life (a replica that goes away then makes writes fail, not skip the
// wait); a check that finds none is repeated at most every 5s.
func (r *Redis) waitFor(ctx context.Context) (int, error) {
	w := &r.wait
	if w.replicas >= 0 {
		return w.replicas, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.decided || time.Since(w.checked) < redetect {
		return w.auto, nil
	}
	n, err := r.detectReplicas(ctx)
	if err != nil {
		return 0, err
	}
	w.auto, w.checked = min(n, 1), time.Now()
	w.decided = w.auto > 0
	return w.auto, nil
}

// detectReplicas returns the smallest number of replicas any primary has.
func (r *Redis) detectReplicas(ctx context.Context) (int, error) {
	switch c := r.rdb.(type) {
	case *redis.ClusterClient:
		// CLUSTER NODES, not SLOTS: SLOTS leaves out replicas that have not reported
		// an offset yet, which on a quiet new cluster can take a while.
		txt, err := c.ClusterNodes(ctx).Result()
		if err != nil {
			return 0, err
		}
		return leastReplicas(txt), nil
	default:
		if r.sentinel {
			return 1, nil
		}
		info, err := r.rdb.Info(ctx, "replication").Result()
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
				return strconv.Atoi(v)
			}
		}
		return 0, nil
	}
}

// WaitingFor returns how many replicas WaitReplicas waits for: the configured number,
// or in auto mode the number decided (-1 until it is).
func (r *Redis) WaitingFor() int {
	if r.wait.replicas >= 0 {
		return r.wait.replicas
	}
	r.wait.mu.Lock()
	defer r.wait.mu.Unlock()
	if !r.wait.decided && r.wait.checked.IsZero() {
		return -1
	}
	return r.wait.auto
}

// leastReplicas reads CLUSTER NODES and returns the smallest number of replicas, not
// failed, that a primary serving slots has.
func leastReplicas(nodes string) int {
	primaries := map[string]int{} // primary ID -> replicas
	var replicaOf []string
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || strings.Contains(f[2], "fail") {
			continue
		}
		switch {
		case strings.Contains(f[2], "master") && len(f) > 8: // it serves slots
			primaries[f[0]] += 0
		case strings.Contains(f[2], "slave"):
			replicaOf = append(replicaOf, f[3])
		}
	}
	for _, id := range replicaOf {
		if _, ok := primaries[id]; ok {
			primaries[id]++
		}
	}
	least := -1
	for _, n := range primaries {
		if least < 0 || n < least {
			least = n
		}
	}
	return max(least, 0)
}
