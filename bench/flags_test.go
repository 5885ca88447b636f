package main

import (
	"io"
	"slices"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    []string // scenarios
		wantErr bool
	}{
		{name: "defaults run every row", args: nil, want: []string{"bare", "authgate-public", "authgate-apikey", "authgate-jwt-hs256", "authgate-jwt-eddsa", "authgate-jwt-hs256-uncached", "authgate-jwt-eddsa-uncached", "authgate-apikey-redis", "authgate-reject-401"}},
		{name: "baseline is always run", args: []string{"-scenarios", "authgate-public"}, want: []string{"bare", "authgate-public"}},
		{name: "duplicates and blanks ignored", args: []string{"-scenarios", "bare,,authgate-public,bare"}, want: []string{"bare", "authgate-public"}},
		{name: "unknown scenario", args: []string{"-scenarios", "nope"}, wantErr: true},
		{name: "round shorter than wrk allows", args: []string{"-duration", "500ms"}, wantErr: true},
		{name: "no rounds", args: []string{"-rounds", "0"}, wantErr: true},
		{name: "no tokens for the -uncached rows", args: []string{"-jwt-tokens", "0"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && !slices.Equal(o.scenarios, tt.want) {
				t.Errorf("got %v, want %v", o.scenarios, tt.want)
			}
		})
	}
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 5*time.Second || o.rounds != 3 || o.connections != 64 || o.rate != 0 || o.tool != "auto" || o.jwtTokens != 200000 {
		t.Errorf("got defaults %+v, want 5s, 3 rounds, 64 connections, max rate, auto, 200000 tokens", o)
	}
}
