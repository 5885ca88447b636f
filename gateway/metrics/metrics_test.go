package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/gateway/metrics"
)

// TestKnownLabelValuesExistAtStart: the counters whose label values are known are
// exported at 0 before their first event, so alerts and rate() see them from the start.
func TestKnownLabelValuesExistAtStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	for name, want := range map[string]int{
		"authgate_config_reloads_total": 2, // success, failure
		"authgate_tls_reloads_total":    2,
		"authgate_store_errors_total":   5, // ping, key_lookup, owner_lookup, token_revocation, hygiene
	} {
		if got, err := testutil.GatherAndCount(reg, name); err != nil || got != want {
			t.Errorf("%s: %d series (%v), want %d at start", name, got, err, want)
		}
	}
	if v := testutil.ToFloat64(m.StoreErrors.WithLabelValues("key_lookup")); v != 0 {
		t.Errorf("authgate_store_errors_total{op=key_lookup} = %v at start, want 0", v)
	}
}
