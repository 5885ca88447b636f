package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/webhook"
)

// defaultHygieneInterval is how often authgate_api_keys is refreshed and expiring keys are
// announced (docs/operations.md).
const defaultHygieneInterval = time.Minute

// expiringBatch bounds the keys one refresh announces as key.expiring; the rest follow at
// the next refreshes.
const expiringBatch = 1000

// hygieneOf is api_keys.hygiene as the key records use it.
func hygieneOf(cfg *config.Config) apikey.Hygiene {
	h := cfg.APIKeys.Hygiene
	return apikey.Hygiene{MaxAge: h.MaxAge.Duration(), UnusedAfter: h.UnusedAfter.Duration(),
		ExpiringWithin: h.ExpiringWithin.Duration()}
}

// endpointsOf is notify.webhooks as the notifier uses them.
func endpointsOf(cfg *config.Config) []webhook.Endpoint {
	out := make([]webhook.Endpoint, len(cfg.Notify.Webhooks))
	for i, w := range cfg.Notify.Webhooks {
		out[i] = webhook.Endpoint{URL: w.URL, Secret: []byte(w.Secret.Value()), Events: w.Events}
	}
	return out
}

// watchHygiene refreshes the hygiene gauge and announces expiring keys every interval
// until ctx is done. Each refresh reads counts from the store's hygiene sets (never every
// key), so every replica reports the same store-wide numbers.
func (s *Server) watchHygiene(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		err := s.refreshHygiene(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			s.logger.Error("api key hygiene refresh failed; authgate_api_keys keeps its last values", slog.String("error", err.Error()))
			failing = true
		case err == nil && failing:
			s.logger.Info("api key hygiene refresh works again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refreshHygiene sets authgate_api_keys{state} from the store and emits key.expiring once
// per key and expiry (claimed with SETNX in the store, so one replica sends it).
func (s *Server) refreshHygiene(ctx context.Context) error {
	if s.breaker.Open() {
		return fmt.Errorf("store unreachable")
	}
	h := hygieneOf(s.Config())
	c, err := s.keys.records.HygieneCounts(ctx, h)
	if err != nil {
		s.metrics.StoreErrors.WithLabelValues("hygiene").Inc()
		return err
	}
	for state, n := range map[string]int64{"active": c.Active, "expiring": c.Expiring, "stale": c.Stale,
		"unused": c.Unused, "expired": c.Expired} {
		s.metrics.APIKeys.WithLabelValues(state).Set(float64(n))
	}
	if h.ExpiringWithin <= 0 || !s.keys.notifier.Wants(webhook.KeyExpiring) {
		return nil
	}
	ks, err := s.keys.records.Expiring(ctx, h.ExpiringWithin, expiringBatch)
	if err != nil {
		s.metrics.StoreErrors.WithLabelValues("hygiene").Inc()
		return err
	}
	now := time.Now()
	for _, k := range ks {
		if k.ExpiresAt == nil {
			continue
		}
		claim := fmt.Sprintf("webhook:expiring:%s:%d", k.ID, k.ExpiresAt.UnixMilli())
		// Kept until the key has expired, so a later refresh of this window never sends it
		// again; a refresh that moves the expiry makes a new window (a new claim).
		ok, err := s.store.SetNX(ctx, claim, []byte("1"), k.ExpiresAt.Sub(now)+time.Hour)
		if err != nil {
			s.metrics.StoreErrors.WithLabelValues("hygiene").Inc()
			return err
		}
		if ok {
			s.keys.notifier.Emit(ctx, webhook.NewEvent(webhook.KeyExpiring, now, webhook.Data{Key: webhook.KeyOf(k)}))
		}
	}
	return nil
}

// hygieneInterval is Options.HygieneInterval, else defaultHygieneInterval.
func (s *Server) hygieneInterval() time.Duration {
	if s.opts.HygieneInterval > 0 {
		return s.opts.HygieneInterval
	}
	return defaultHygieneInterval
}
