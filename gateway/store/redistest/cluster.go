package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterReady bounds how long StartCluster waits for the cluster to form, and how
// long the failover helpers wait for a new primary.
const clusterReady = 30 * time.Second

// ClusterNodeTimeout is cluster-node-timeout of the test clusters: a primary that has
// not answered for this long is failed over. Short, so failovers take seconds.
const ClusterNodeTimeout = 1000 * time.Millisecond

// Cluster is a Redis Cluster of real redis-server processes on loopback ports, owned by
// one test and torn down when it ends.
type Cluster struct {
	// Nodes are every node, primaries first as created (a failover changes roles: ask
	// Role or PrimaryFor).
	Nodes []*Server
}

// StartCluster starts primaries*(1+replicasPer) cluster-enabled servers, joins them
// with `redis-cli --cluster create` (each primary gets replicasPer replicas; the slots
// are spread evenly), and waits until every node reports cluster_state:ok and knows
// every other. It needs at least 3 primaries (Redis's minimum). Failover is fast:
// cluster-node-timeout is ClusterNodeTimeout and any replica may be promoted
// (cluster-replica-validity-factor 0).
func StartCluster(t testing.TB, primaries, replicasPer int) *Cluster {
	t.Helper()
	if primaries < 3 || replicasPer < 0 {
		t.Fatalf("redistest: a cluster needs at least 3 primaries, got %d (replicas %d)", primaries, replicasPer)
	}
	cli := requireCLI(t)
	c := &Cluster{}
	n := primaries * (1 + replicasPer)
	for range n {
		c.Nodes = append(c.Nodes, start(t, serverSpec{prepare: func(s *Server) error {
			bus, err := freePort()
			if err != nil {
				return err
			}
			s.extra = []string{"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-port", strconv.Itoa(bus),
				"--cluster-node-timeout", strconv.Itoa(int(ClusterNodeTimeout.Milliseconds())),
				"--cluster-replica-validity-factor", "0",
				"--cluster-allow-replica-migration", "no",
			}
			return nil
		}}))
	}
	args := []string{"--cluster", "create"}
	for _, s := range c.Nodes {
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasPer), "--cluster-yes")
	ctx, cancel := context.WithTimeout(t.Context(), clusterReady)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy(t)
	return c
}

// requireCLI returns redis-cli's path, next to redis-server or on PATH, or skips (fails
// with AUTHGATE_REQUIRE_REDIS=1) the test.
func requireCLI(t testing.TB) string {
	t.Helper()
	bin := requireBinary(t)
	if p := filepath.Join(filepath.Dir(bin), "redis-cli"); isExecutable(p) {
		return p
	}
	p, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli not found next to %s nor on PATH (it comes with redis-server's package, redis-tools): %v", bin, err)
	}
	return p
}

// Addrs returns every node's address, the seeds a cluster client needs.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		out[i] = s.Addr()
	}
	return out
}

// Client returns a cluster client for assertions on the raw data, closed when the test
// ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DialTimeout: 2 * time.Second,
		ReadTimeout: 2 * time.Second, MaxRedirects: 8})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// nodeInfo reads one section of INFO from s, as key/value pairs.
func nodeInfo(ctx context.Context, addr, cmd string, args ...any) (map[string]string, error) {
	rc := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer rc.Close()
	txt, err := rc.Do(ctx, append([]any{cmd}, args...)...).Text()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(txt, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// Role returns "master" or "slave" as s reports itself (INFO replication), or an error
// when it does not answer.
func Role(ctx context.Context, s *Server) (string, error) {
	m, err := nodeInfo(ctx, s.Addr(), "INFO", "replication")
	if err != nil {
		return "", fmt.Errorf("redistest: INFO replication on %s: %w", s.Addr(), err)
	}
	return m["role"], nil
}

// healthy reports why the cluster is not healthy yet: every running node must say
// cluster_state:ok, see as many nodes as are known, and agree which node serves each
// of the three test slots probed.
func (c *Cluster) healthy(ctx context.Context) error {
	var owner string
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		m, err := nodeInfo(ctx, s.Addr(), "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: %w", s.Addr(), err)
		}
		if m["cluster_state"] != "ok" {
			return fmt.Errorf("%s: cluster_state:%s", s.Addr(), m["cluster_state"])
		}
		if m["cluster_known_nodes"] != strconv.Itoa(len(c.Nodes)) {
			return fmt.Errorf("%s: knows %s nodes of %d", s.Addr(), m["cluster_known_nodes"], len(c.Nodes))
		}
		if m["cluster_slots_ok"] != "16384" {
			return fmt.Errorf("%s: %s slots ok", s.Addr(), m["cluster_slots_ok"])
		}
		if r, err := nodeInfo(ctx, s.Addr(), "INFO", "replication"); err != nil {
			return fmt.Errorf("%s: %w", s.Addr(), err)
		} else if r["role"] == "slave" && (r["master_link_status"] != "up" || r["master_sync_in_progress"] != "0") {
			return fmt.Errorf("%s: replica not in sync (link %s)", s.Addr(), r["master_link_status"])
		}
		o, err := slotOwner(ctx, s.Addr(), 0)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Addr(), err)
		}
		if owner != "" && o != owner {
			return fmt.Errorf("nodes disagree on slot 0: %s and %s", owner, o)
		}
		owner = o
	}
	return nil
}

// slotOwner returns the address of the primary addr believes serves slot.
func slotOwner(ctx context.Context, addr string, slot int) (string, error) {
	rc := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer rc.Close()
	slots, err := rc.ClusterSlots(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, r := range slots {
		if slot >= r.Start && slot <= r.End && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr, nil
		}
	}
	return "", fmt.Errorf("no node serves slot %d", slot)
}

// WaitHealthy waits until every running node reports cluster_state:ok with all slots
// served and the nodes agree on the slot map, for at most 30s.
func (c *Cluster) WaitHealthy(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(clusterReady)
	for {
		err := c.healthy(t.Context())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: cluster not healthy after %s: %v", clusterReady, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PrimaryFor returns the node that serves key now, as every running node agrees and
// the node itself confirms, and its replicas. It waits up to 30s for that agreement.
func (c *Cluster) PrimaryFor(t testing.TB, key string) (primary *Server, replicas []*Server) {
	t.Helper()
	slot := Slot(key)
	waitUntil(t, fmt.Sprintf("the nodes to agree on the primary of slot %d", slot), func(ctx context.Context) error {
		primary = nil
		for _, s := range c.Nodes {
			if !s.Running() {
				continue
			}
			addr, err := slotOwner(ctx, s.Addr(), slot)
			if err != nil {
				return err
			}
			if primary != nil && primary.Addr() != addr {
				return fmt.Errorf("nodes name %s and %s", primary.Addr(), addr)
			}
			if primary = c.byAddr(addr); primary == nil {
				return fmt.Errorf("%s is not a node of the cluster", addr)
			}
		}
		if primary == nil {
			return fmt.Errorf("no node is running")
		}
		if role, err := Role(ctx, primary); err != nil || role != "master" {
			return fmt.Errorf("%s: role %q, %v", primary.Addr(), role, err)
		}
		return nil
	})
	for _, s := range c.Nodes {
		if s == primary || !s.Running() {
			continue
		}
		m, err := nodeInfo(t.Context(), s.Addr(), "INFO", "replication")
		if err != nil {
			continue
		}
		if m["role"] == "slave" && m["master_port"] == strconv.Itoa(primary.port) {
			replicas = append(replicas, s)
		}
	}
	return primary, replicas
}

func (c *Cluster) byAddr(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// Failover sends CLUSTER FAILOVER to replica (a manual, coordinated failover: the
// primary stops writes, the replica catches up and takes over) and waits until the
// replica serves its slots and the cluster is healthy again.
func (c *Cluster) Failover(t testing.TB, replica *Server) {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr(), MaxRetries: -1})
	defer rc.Close()
	if err := rc.Do(t.Context(), "CLUSTER", "FAILOVER").Err(); err != nil {
		t.Fatalf("redistest: CLUSTER FAILOVER on %s: %v", replica.Addr(), err)
	}
	c.WaitPrimary(t, replica)
}

// WaitPrimary waits until s reports itself a primary and the cluster is healthy.
func (c *Cluster) WaitPrimary(t testing.TB, s *Server) {
	t.Helper()
	deadline := time.Now().Add(clusterReady)
	for {
		role, err := Role(t.Context(), s)
		if err == nil && role == "master" && c.healthyIgnoringDead(t.Context()) == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: %s not a healthy primary after %s (role %q, %v)", s.Addr(), clusterReady, role, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// healthyIgnoringDead is healthy, but a node that is down does not count as known.
func (c *Cluster) healthyIgnoringDead(ctx context.Context) error {
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		m, err := nodeInfo(ctx, s.Addr(), "CLUSTER", "INFO")
		if err != nil {
			return err
		}
		if m["cluster_state"] != "ok" || m["cluster_slots_ok"] != "16384" {
			return fmt.Errorf("%s: cluster_state:%s, %s slots ok", s.Addr(), m["cluster_state"], m["cluster_slots_ok"])
		}
	}
	return nil
}

// KillPrimaryFor kills (SIGKILL) the primary serving key and returns it and the replica
// that was promoted in its place, once the cluster serves every slot again.
func (c *Cluster) KillPrimaryFor(t testing.TB, key string) (killed, promoted *Server) {
	t.Helper()
	p, reps := c.PrimaryFor(t, key)
	if len(reps) == 0 {
		t.Fatalf("redistest: the primary of %q has no replica to promote", key)
	}
	p.Kill(t)
	deadline := time.Now().Add(clusterReady)
	for {
		for _, r := range reps {
			if role, err := Role(t.Context(), r); err == nil && role == "master" {
				c.WaitPrimary(t, r)
				return p, r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: no replica of %s promoted within %s", p.Addr(), clusterReady)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Slot returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of the hash tag (the
// part between the first "{" and the next "}", when not empty) or of the whole key,
// modulo 16384.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % 16384)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), Redis Cluster's key hash.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Rejoin restarts s, a node that was killed, and waits until it is back in the cluster
// as a replica in sync and the cluster is healthy.
func (c *Cluster) Rejoin(t testing.TB, s *Server) {
	t.Helper()
	s.Restart(t)
	waitUntil(t, s.Addr()+" to rejoin as a replica", func(ctx context.Context) error {
		m, err := nodeInfo(ctx, s.Addr(), "INFO", "replication")
		if err != nil {
			return err
		}
		if m["role"] != "slave" || m["master_link_status"] != "up" {
			return fmt.Errorf("role %s, link %s", m["role"], m["master_link_status"])
		}
		return c.healthy(ctx)
	})
}
