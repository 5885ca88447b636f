package ratelimit

import (
	"testing"
	"time"
)

func TestLimitText(t *testing.T) {
	for _, tt := range []struct {
		l    Limit
		want string
	}{
		{Limit{3, time.Minute}, "3 requests per 1m"},
		{Limit{1, time.Hour}, "1 request per 1h"},
		{Limit{100, 90 * time.Minute}, "100 requests per 1h30m"},
		{Limit{5, 30 * time.Second}, "5 requests per 30s"},
		{Limit{5, 1500 * time.Millisecond}, "5 requests per 1.5s"},
		{Limit{5, time.Hour + time.Second}, "5 requests per 1h0m1s"},
	} {
		if got := tt.l.Text(); got != tt.want {
			t.Errorf("%v.Text() = %q, want %q", tt.l, got, tt.want)
		}
	}
}
