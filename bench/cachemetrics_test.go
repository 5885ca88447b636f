package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestScrapeCacheGateway reads the counts from a real gateway's registry, served the way
// the ops listener serves /metrics, after one miss and two hits.
func TestScrapeCacheGateway(t *testing.T) {
	keys, err := newJWTKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.name == "authgate-jwt-eddsa" })
	if i < 0 {
		t.Fatal("no authgate-jwt-eddsa row")
	}
	sc, err := scenarios[i].withCredential(keys, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, _, reg := benchGateway(t, sc, keys)
	ops := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer ops.Close()

	before, err := scrapeCache(t.Context(), ops.Client(), ops.URL)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if status, _, _ := get(t, s, sc.path, sc.header); status != http.StatusOK {
			t.Fatalf("status %d, want 200", status)
		}
	}
	after, err := scrapeCache(t.Context(), ops.Client(), ops.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := after.sub(before), (cacheLookupCounts{Hits: 2, Misses: 1}); got != want {
		t.Errorf("lookups during the requests %+v, want %+v", got, want)
	}
	if got := after.sub(before).hitRatio(); got != 2.0/3 {
		t.Errorf("hit ratio %v, want 2/3", got)
	}
}

func TestParseCacheCounts(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    cacheLookupCounts
		wantErr bool
	}{
		{name: "no lookups yet", in: "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 7\n"},
		{
			name: "every result",
			in: `# HELP authgate_credential_cache_total Credential cache lookups by result (hit, miss, negative_hit).
# TYPE authgate_credential_cache_total counter
authgate_credential_cache_total{result="hit"} 1.234567e+06
authgate_credential_cache_total{result="miss"} 42
authgate_credential_cache_total{result="negative_hit"} 3
authgate_credential_cache_total{result="other"} 1000
`,
			want: cacheLookupCounts{Hits: 1234567, Misses: 45},
		},
		{name: "not the text format", in: "authgate_credential_cache_total{result=\"hit\" 1\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCacheCounts(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if r := (cacheLookupCounts{}).hitRatio(); r != 0 {
		t.Errorf("hit ratio without lookups = %v, want 0", r)
	}
}

func TestScrapeCacheErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	if _, err := scrapeCache(t.Context(), srv.Client(), srv.URL); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("err = %v, want the status", err)
	}
	srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := scrapeCache(ctx, http.DefaultClient, srv.URL); err == nil {
		t.Error("cancelled: no error")
	}
}

// FuzzParseCacheCounts: whatever a /metrics answer holds, parsing neither panics nor
// returns counts with an error.
func FuzzParseCacheCounts(f *testing.F) {
	f.Add("authgate_credential_cache_total{result=\"hit\"} 3\nauthgate_credential_cache_total{result=\"miss\"} 1\n")
	f.Add("# TYPE authgate_credential_cache_total counter\nauthgate_credential_cache_total{result=\"hit\"} NaN\n")
	f.Add("authgate_credential_cache_total 1\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := parseCacheCounts(strings.NewReader(in))
		if err != nil && c != (cacheLookupCounts{}) {
			t.Errorf("error %v with counts %+v", err, c)
		}
	})
}
