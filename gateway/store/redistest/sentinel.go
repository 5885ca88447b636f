package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelDownAfter is down-after-milliseconds of the test sentinels: a primary that
// has not answered for this long is subjectively down; with the quorum (2 of 3) it is
// failed over.
const SentinelDownAfter = 1000 * time.Millisecond

// SentinelMaster is the name the test sentinels monitor the primary under.
const SentinelMaster = "authgate"

// Sentinel is a Sentinel-managed Redis: a primary, its replica and three sentinels
// (quorum 2), all real processes on loopback ports, owned by one test and torn down
// when it ends.
type Sentinel struct {
	// Data are the primary and the replica as started (a failover swaps their roles:
	// ask Primary).
	Data []*Server
	// Sentinels are the three sentinels.
	Sentinels []*Server
}

// StartSentinel starts a primary, one replica of it and three sentinels monitoring it
// as SentinelMaster with quorum 2, down-after-milliseconds SentinelDownAfter and a 5s
// failover-timeout. It waits until the replica is in sync and every sentinel knows the
// replica and the two other sentinels, so that a failover can be agreed on.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	primary := start(t, serverSpec{})
	replica := start(t, serverSpec{extra: []string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.port)}})
	st := &Sentinel{Data: []*Server{primary, replica}}
	waitUntil(t, "the replica to sync", func(ctx context.Context) error {
		m, err := nodeInfo(ctx, replica.Addr(), "INFO", "replication")
		if err != nil {
			return err
		}
		if m["master_link_status"] != "up" {
			return fmt.Errorf("master_link_status:%s", m["master_link_status"])
		}
		return nil
	})
	for range 3 {
		st.Sentinels = append(st.Sentinels, start(t, serverSpec{sentinel: true, prepare: func(s *Server) error {
			s.conf = filepath.Join(s.dir, "sentinel.conf")
			conf := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
				"sentinel down-after-milliseconds %[1]s %[3]d\n"+
				"sentinel failover-timeout %[1]s 5000\n"+
				"sentinel parallel-syncs %[1]s 1\n", SentinelMaster, primary.port, SentinelDownAfter.Milliseconds())
			return os.WriteFile(s.conf, []byte(conf), 0o600)
		}}))
	}
	for _, s := range st.Sentinels {
		waitUntil(t, "sentinel "+s.Addr()+" to know the set", func(ctx context.Context) error {
			m, err := sentinelMaster(ctx, s.Addr())
			if err != nil {
				return err
			}
			if m["num-other-sentinels"] != "2" || m["num-slaves"] != "1" {
				return fmt.Errorf("knows %s other sentinels and %s replicas", m["num-other-sentinels"], m["num-slaves"])
			}
			return nil
		})
	}
	return st
}

// waitUntil polls check until it returns nil, for at most 30s.
func waitUntil(t testing.TB, what string, check func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(clusterReady)
	for {
		err := check(t.Context())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: timed out after %s waiting for %s: %v", clusterReady, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sentinelMaster returns SENTINEL MASTER SentinelMaster from the sentinel at addr.
func sentinelMaster(ctx context.Context, addr string) (map[string]string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer sc.Close()
	return sc.Master(ctx, SentinelMaster).Result()
}

// Addrs returns the sentinels' addresses, what a Sentinel client is configured with.
func (st *Sentinel) Addrs() []string {
	out := make([]string, len(st.Sentinels))
	for i, s := range st.Sentinels {
		out[i] = s.Addr()
	}
	return out
}

// Client returns a Sentinel-aware client of the current primary, closed when the test
// ends.
func (st *Sentinel) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: SentinelMaster, SentinelAddrs: st.Addrs(),
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Primary returns the data server every running sentinel names as the primary, and the
// other one.
func (st *Sentinel) Primary(t testing.TB) (primary, replica *Server) {
	t.Helper()
	var addr string
	waitUntil(t, "the sentinels to agree on the primary", func(ctx context.Context) error {
		addr = ""
		for _, s := range st.Sentinels {
			if !s.Running() {
				continue
			}
			sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
			hp, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
			sc.Close()
			if err != nil {
				return err
			}
			a := net.JoinHostPort(hp[0], hp[1])
			if addr != "" && a != addr {
				return fmt.Errorf("sentinels name %s and %s", addr, a)
			}
			addr = a
		}
		return nil
	})
	for _, s := range st.Data {
		if s.Addr() == addr {
			primary = s
		} else {
			replica = s
		}
	}
	if primary == nil {
		t.Fatalf("redistest: the sentinels name %s, which is not one of the data servers", addr)
	}
	return primary, replica
}

// KillPrimary kills (SIGKILL) the current primary and waits until the sentinels have
// promoted the replica and it answers as a primary. It returns both.
func (st *Sentinel) KillPrimary(t testing.TB) (killed, promoted *Server) {
	t.Helper()
	killed, promoted = st.Primary(t)
	killed.Kill(t)
	st.WaitPrimary(t, promoted)
	return killed, promoted
}

// WaitPrimary waits until every running sentinel names s as the primary and s reports
// itself one.
func (st *Sentinel) WaitPrimary(t testing.TB, s *Server) {
	t.Helper()
	waitUntil(t, s.Addr()+" to be the primary", func(ctx context.Context) error {
		for _, sn := range st.Sentinels {
			if !sn.Running() {
				continue
			}
			sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
			hp, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
			sc.Close()
			if err != nil {
				return err
			}
			if a := net.JoinHostPort(hp[0], hp[1]); a != s.Addr() {
				return fmt.Errorf("sentinel %s names %s", sn.Addr(), a)
			}
		}
		role, err := Role(ctx, s)
		if err != nil {
			return err
		}
		if role != "master" {
			return fmt.Errorf("role %s", role)
		}
		return nil
	})
}

// Rejoin restarts s, a data server that was killed, as a replica of primary (as its
// configuration, rewritten by the sentinels, would make it on a real machine), and
// waits until it is in sync.
func (st *Sentinel) Rejoin(t testing.TB, s, primary *Server) {
	t.Helper()
	s.mu.Lock()
	s.extra = []string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.port)}
	s.mu.Unlock()
	s.Restart(t)
	waitUntil(t, s.Addr()+" to sync", func(ctx context.Context) error {
		m, err := nodeInfo(ctx, s.Addr(), "INFO", "replication")
		if err != nil {
			return err
		}
		if m["master_link_status"] != "up" {
			return fmt.Errorf("master_link_status:%s", m["master_link_status"])
		}
		return nil
	})
}
