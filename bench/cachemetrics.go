package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// cacheMetric is the gateway's counter of credential cache lookups, by result. API keys
// and tokens share it, so a row's figures are the difference over that row's rounds alone.
const cacheMetric = "authgate_credential_cache_total"

// cacheLookupCounts are authgate_credential_cache_total's values at one moment.
type cacheLookupCounts struct {
	Hits   int64 // result="hit"
	Misses int64 // result="miss" (stale entries count as misses), plus "negative_hit"
}

// sub is c minus an earlier reading.
func (c cacheLookupCounts) sub(before cacheLookupCounts) cacheLookupCounts {
	return cacheLookupCounts{Hits: c.Hits - before.Hits, Misses: c.Misses - before.Misses}
}

// hitRatio is Hits over all lookups; 0 without any.
func (c cacheLookupCounts) hitRatio() float64 {
	return ratio(float64(c.Hits), float64(c.Hits+c.Misses))
}

// scrapeCache reads authgate_credential_cache_total from a gateway's /metrics at
// metricsURL (the ops listener).
func scrapeCache(ctx context.Context, client *http.Client, metricsURL string) (cacheLookupCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return cacheLookupCounts{}, fmt.Errorf("metrics: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return cacheLookupCounts{}, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return cacheLookupCounts{}, fmt.Errorf("metrics: GET %s: status %d", metricsURL, resp.StatusCode)
	}
	c, err := parseCacheCounts(resp.Body)
	if err != nil {
		return cacheLookupCounts{}, fmt.Errorf("metrics: GET %s: %w", metricsURL, err)
	}
	return c, nil
}

// parseCacheCounts reads authgate_credential_cache_total from the Prometheus text format.
// A gateway that has not looked anything up yet has no sample: zero counts.
func parseCacheCounts(r io.Reader) (cacheLookupCounts, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return cacheLookupCounts{}, err
	}
	var c cacheLookupCounts
	mf, ok := mfs[cacheMetric]
	if !ok {
		return c, nil
	}
	for _, m := range mf.GetMetric() {
		v := int64(m.GetCounter().GetValue())
		for _, l := range m.GetLabel() {
			if l.GetName() != "result" {
				continue
			}
			switch l.GetValue() {
			case "hit":
				c.Hits += v
			case "miss", "negative_hit":
				c.Misses += v
			}
		}
	}
	return c, nil
}
