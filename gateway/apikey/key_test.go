package apikey

import (
	"errors"
	"strings"
	"testing"
)

func TestGenerateParseRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, env := range []string{Live, Test} {
		for range 200 {
			k, err := Generate("sk", env)
			if err != nil {
				t.Fatal(err)
			}
			if seen[k] {
				t.Fatalf("Generate repeated a key")
			}
			seen[k] = true
			if want := len("sk_"+env+"_") + SecretLen + CheckLen; len(k) != want {
				t.Fatalf("len(%q) = %d, want %d", k, len(k), want)
			}
			p, err := Parse(k, "sk")
			if err != nil {
				t.Fatalf("Parse(Generate()) = %v", err)
			}
			if p.Env != env || p.Start != k[:StartLen] {
				t.Fatalf("Parse = %+v, want env %s start %s", p, env, k[:StartLen])
			}
		}
	}
}

func TestParseRefusesMalformed(t *testing.T) {
	good, err := Generate("sk", Live)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct{ name, key, prefix string }{
		{"empty", "", "sk"},
		{"other prefix", good, "pk"},
		{"bad env", strings.Replace(good, "_live_", "_prod_", 1), "sk"},
		{"secret typo", flip(good, 10), "sk"},
		{"checksum typo", flip(good, len(good)-1), "sk"},
		{"truncated", good[:len(good)-1], "sk"},
		{"extended", good + "a", "sk"},
		{"non base62", good[:12] + "-" + good[13:], "sk"},
		{"made up", "sk_live_" + strings.Repeat("a", SecretLen+CheckLen), "sk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.key, tt.prefix); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%s) = %v, want ErrMalformed", tt.name, err)
			}
		})
	}
}

func TestGenerateRefusesBadInput(t *testing.T) {
	if _, err := Generate("sk", "prod"); err == nil {
		t.Error("Generate with env prod: want error")
	}
	if _, err := Generate("s_k", Live); err == nil {
		t.Error("Generate with '_' in prefix: want error")
	}
}

func TestHasher(t *testing.T) {
	k := "sk_live_example"
	plain, peppered, other := NewHasher(""), NewHasher("pepper"), NewHasher("pepper2")
	if plain.Hash(k) == peppered.Hash(k) || peppered.Hash(k) == other.Hash(k) {
		t.Fatal("pepper does not change the hash")
	}
	if peppered.Hash(k) != NewHasher("pepper").Hash(k) {
		t.Fatal("hash is not deterministic")
	}
	if plain.Hash(k) == plain.Hash(k+"x") {
		t.Fatal("different keys hash alike")
	}
}

func FuzzParse(f *testing.F) {
	good, _ := Generate("sk", Test)
	f.Add(good)
	f.Add("sk_live_")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s, "sk")
		if err != nil {
			return
		}
		if !strings.HasPrefix(s, "sk_"+p.Env+"_") || len(s) != len("sk_"+p.Env+"_")+SecretLen+CheckLen {
			t.Fatalf("Parse accepted %q", s)
		}
	})
}
