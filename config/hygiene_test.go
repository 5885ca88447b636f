package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestHygieneDefaults(t *testing.T) {
	cfg, err := Parse("x.yaml", []byte("listen: \":8080\"\n"), getenv)
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.APIKeys.Hygiene
	day := 24 * time.Hour
	if h.MaxAge.Duration() != 90*day || h.UnusedAfter.Duration() != 30*day || h.ExpiringWithin.Duration() != 7*day {
		t.Fatalf("hygiene defaults = %v %v %v, want 90d 30d 7d", h.MaxAge, h.UnusedAfter, h.ExpiringWithin)
	}
	if cfg.APIKeys.MaxExpiryDays != 0 || len(cfg.Notify.Webhooks) != 0 {
		t.Fatalf("max_expiry_days = %d, webhooks = %d; want 0, 0", cfg.APIKeys.MaxExpiryDays, len(cfg.Notify.Webhooks))
	}
}

func TestHygieneAndWebhooksParse(t *testing.T) {
	const secret = "whsec-do-not-print"
	cfg, err := Parse("x.yaml", []byte(`api_keys:
  max_expiry_days: 90
  hygiene: {max_age: 30d, unused_after: 36h, expiring_within: 0}
notify:
  webhooks:
    - {url: "https://hooks.example.com/authgate", secret: "${WH}", events: [key.created, key.expiring]}
    - {url: "http://127.0.0.1:9999/", secret: "other"}
`), func(k string) string {
		if k == "WH" {
			return secret
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.APIKeys.Hygiene
	if h.MaxAge.Duration() != 30*24*time.Hour || h.UnusedAfter.Duration() != 36*time.Hour || h.ExpiringWithin != 0 {
		t.Fatalf("hygiene = %v %v %v", h.MaxAge, h.UnusedAfter, h.ExpiringWithin)
	}
	if h.MaxAge.String() != "30d" || h.UnusedAfter.String() != "36h0m0s" {
		t.Fatalf("String() = %q %q", h.MaxAge.String(), h.UnusedAfter.String())
	}
	if cfg.APIKeys.MaxExpiryDays != 90 {
		t.Fatalf("max_expiry_days = %d", cfg.APIKeys.MaxExpiryDays)
	}
	w := cfg.Notify.Webhooks
	if len(w) != 2 || w[0].Secret.Value() != secret || strings.Join(w[0].Events, ",") != "key.created,key.expiring" || len(w[1].Events) != 0 {
		t.Fatalf("webhooks = %+v", w)
	}
	b, _ := json.Marshal(cfg.Notify)
	for _, s := range []string{fmt.Sprint(cfg.Notify), fmt.Sprintf("%+v", cfg.Notify), fmt.Sprintf("%#v", cfg.Notify), string(b)} {
		if strings.Contains(s, secret) {
			t.Fatalf("webhook secret printed: %s", s)
		}
	}
}

func TestHygieneAndWebhooksRefused(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want []string
	}{
		{"api_keys:\n  hygiene: {max_age: 90}\n", []string{`x.yaml:2: api_keys.hygiene.max_age: invalid duration "90" (write e.g. 90d, 36h; 0 turns it off)`}},
		{"api_keys:\n  hygiene: {unused_after: -3d}\n", []string{`x.yaml:2: api_keys.hygiene.unused_after: invalid duration "-3d" (write e.g. 90d, 36h; 0 turns it off)`}},
		{"api_keys:\n  hygiene: {expiring_within: -1h}\n", []string{`x.yaml:2: api_keys.hygiene.expiring_within: must be >= 0 (0 turns the flag off), got -1h0m0s`}},
		{"api_keys:\n  max_expiry_days: -1\n", []string{`x.yaml:2: api_keys.max_expiry_days: must be 0 (no bound) or a positive number of days, got -1`}},
		{"api_keys:\n  max_expiry_days: 30\n", []string{`api_keys.default_expiry_days: 90 is beyond max_expiry_days 30`}},
		{"notify:\n  webhooks:\n    - {url: \"ftp://x/\", secret: \"s\"}\n", []string{`x.yaml:3: notify.webhooks[0].url: must be an http or https URL`}},
		{"notify:\n  webhooks:\n    - {url: \"https://x/\"}\n", []string{`x.yaml:3: notify.webhooks[0].secret: required: every delivery is signed with it`}},
		{"notify:\n  webhooks:\n    - url: \"https://x/\"\n      secret: s\n      events: [key.created, key.deleted]\n", []string{`x.yaml:5: notify.webhooks[0].events[1]: unknown event "key.deleted"`}},
	} {
		_, err := Parse("x.yaml", []byte(tt.yaml), getenv)
		if err == nil {
			t.Errorf("%q: accepted", tt.yaml)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q:\n got %v\nwant %s", tt.yaml, err, w)
			}
		}
	}
}
