package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// TestLoggerDurationsAsText: the serve logger writes durations as "30s", not as
// 30000000000 nanoseconds, also inside groups.
func TestLoggerDurationsAsText(t *testing.T) {
	var buf bytes.Buffer
	newLogger("info", &buf).Info("draining", slog.Duration("shutdown_timeout", 30*time.Second),
		slog.Group("redis", slog.Duration("read_timeout", 200*time.Millisecond)), slog.Int("n", 3))
	var line struct {
		Shutdown string `json:"shutdown_timeout"`
		Redis    struct {
			Read string `json:"read_timeout"`
		} `json:"redis"`
		N int `json:"n"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %s: %v", buf.Bytes(), err)
	}
	if line.Shutdown != "30s" || line.Redis.Read != "200ms" || line.N != 3 {
		t.Fatalf("log line %s: want shutdown_timeout 30s, redis.read_timeout 200ms, n 3", buf.Bytes())
	}
}
