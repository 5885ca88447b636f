package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/store"
)

// listenForGateways is how long a direct-mode change listens to an invalidation channel
// to learn which gateways run before it announces the change: they send a heartbeat at
// least every 250ms.
const listenForGateways = 600 * time.Millisecond

// invalidation is a cache tag to drop on one invalidation channel.
type invalidation struct {
	channel string
	tag     string
}

// settle makes a change written directly to Redis as safe and as visible as the
// management API makes it. First it waits until store.redis.wait_replicas Redis replicas
// have the writes in the hash slots of slots (gateway.KeysSlotKey, …): when they do not confirm in time, the change may be
// lost in a failover, and settle returns a store_unavailable error so the command fails
// and can be retried. Then it tells every running gateway to drop the tags from its
// cache and waits for each gateway's confirmation; a gateway that does not confirm is
// warned about (the change is stored, and a gateway cut off from Redis does not trust its
// cache).
func settle(ctx context.Context, st *store.Redis, cfg *config.Config, warn func(string, ...any), slots []string, invs ...invalidation) error {
	if warn == nil {
		warn = func(string, ...any) {}
	}
	werr := st.WaitReplicas(ctx, slots...)
	byChannel := map[string][]string{}
	var order []string
	for _, inv := range invs {
		if _, ok := byChannel[inv.channel]; !ok {
			order = append(order, inv.channel)
		}
		byChannel[inv.channel] = append(byChannel[inv.channel], inv.tag)
	}
	for _, ch := range order {
		n, err := credcache.Announce(ctx, st, ch, listenForGateways, byChannel[ch]...)
		switch {
		case err != nil:
			warn("authgate: warning: the change is stored, but running gateways were not told (%v); they see it within store.cache.ttl (%s)\n",
				err, cfg.Store.Cache.TTL)
		case n > 0:
			warn("authgate: warning: the change is stored, but %d running gateway(s) did not confirm it (crashed, or cut off from Redis); "+
				"one cut off serves what it had cached, this change not applied, until it reaches Redis again (on_store_error: serve_cached), "+
				"or nothing (fail_closed); see authgate_invalidation_unconfirmed_total\n", n)
		}
	}
	if werr != nil {
		if errors.Is(werr, store.ErrNotReplicated) {
			return &apiError{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
				Message: fmt.Sprintf("the change is written to the Redis primary but no replica confirmed it in time, so a failover could lose it; run the command again (%v)", werr)}
		}
		return directErr(werr)
	}
	return nil
}
