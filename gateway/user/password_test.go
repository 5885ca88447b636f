package user

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"
)

const goodPassword = "correct horse battery"

func TestHashPasswordRoundTrip(t *testing.T) {
	enc, err := HashPassword(goodPassword, TestParams)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	tests := []struct {
		name string
		pw   string
		want bool
	}{
		{"right", goodPassword, true},
		{"wrong", "correct horse battery!", false},
		{"case differs", "Correct horse battery", false},
		{"empty", "", false},
		{"too long", strings.Repeat("a", MaxPasswordBytes+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword(enc, tt.pw)
			if err != nil || ok != tt.want {
				t.Errorf("VerifyPassword = %v, %v, want %v, nil", ok, err, tt.want)
			}
		})
	}
}

func TestHashPasswordPHCFormat(t *testing.T) {
	enc, err := HashPassword(goodPassword, DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=65536,t=3,p=2\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$`)
	m := re.FindStringSubmatch(enc)
	if m == nil {
		t.Fatalf("got %q, want the PHC form $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>", enc)
	}
	for i, want := range []int{16, 32} {
		b, err := base64.RawStdEncoding.DecodeString(m[i+1])
		if err != nil || len(b) != want {
			t.Errorf("part %d decodes to %d bytes (%v), want %d", i+1, len(b), err, want)
		}
	}
	if ok, err := VerifyPassword(enc, goodPassword); !ok || err != nil {
		t.Errorf("VerifyPassword = %v, %v, want true, nil", ok, err)
	}
}

func TestHashPasswordUniqueSalts(t *testing.T) {
	seen := map[string]bool{}
	for range 5 {
		enc, err := HashPassword(goodPassword, TestParams)
		if err != nil {
			t.Fatal(err)
		}
		salt := strings.Split(enc, "$")[4]
		if seen[salt] {
			t.Fatalf("salt %s used twice", salt)
		}
		seen[salt] = true
	}
}

func TestHashPasswordRefuses(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		p    Params
	}{
		{"too short", "123456789", TestParams},
		{"too short in characters", "ééééééééé", TestParams}, // 18 bytes, 9 characters
		{"too long", strings.Repeat("a", MaxPasswordBytes+1), TestParams},
		{"not UTF-8", "abcdefghij\xff", TestParams},
		{"zero params", goodPassword, Params{}},
		{"memory too large", goodPassword, Params{Memory: MaxMemoryKiB + 1, Time: 1, Threads: 1}},
		{"memory below 8 per thread", goodPassword, Params{Memory: 15, Time: 1, Threads: 2}},
		{"time too large", goodPassword, Params{Memory: 1024, Time: MaxTime + 1, Threads: 1}},
		{"too many threads", goodPassword, Params{Memory: 1024, Time: 1, Threads: MaxThreads + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := HashPassword(tt.pw, tt.p)
			if !errors.Is(err, ErrInvalid) || enc != "" {
				t.Errorf("HashPassword = %q, %v, want ErrInvalid", enc, err)
			}
			if err != nil && tt.pw != goodPassword && strings.Contains(err.Error(), tt.pw) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
	// Exactly the limits are accepted.
	for _, pw := range []string{"ééééééééé!", strings.Repeat("a", MaxPasswordBytes)} {
		if _, err := HashPassword(pw, TestParams); err != nil {
			t.Errorf("HashPassword(%d bytes) = %v, want nil", len(pw), err)
		}
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	good, err := HashPassword(goodPassword, TestParams)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=..,t=..,p=.., salt, hash
	with := func(i int, v string) string {
		p := append([]string{}, parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	salt16 := parts[4]
	tests := []struct {
		name, enc string
	}{
		{"empty", ""},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", with(1, "argon2i")},
		{"argon2d", with(1, "argon2d")},
		{"version 16", with(2, "v=16")},
		{"no version", strings.Join(append(parts[:2:2], parts[3:]...), "$")},
		{"params reordered", with(3, "t=1,m=1024,p=1")},
		{"params missing", with(3, "m=1024,t=1")},
		{"params extra", with(3, "m=1024,t=1,p=1,k=1")},
		{"param not a number", with(3, "m=lots,t=1,p=1")},
		{"param negative", with(3, "m=-1,t=1,p=1")},
		{"param signed", with(3, "m=+1024,t=1,p=1")},
		{"param leading zero", with(3, "m=01024,t=1,p=1")},
		{"param overflows uint32", with(3, "m=4294967296,t=1,p=1")},
		{"memory too large", with(3, "m=4194304,t=1,p=1")}, // 4 GiB
		{"memory max+1", with(3, "m=262145,t=1,p=1")},
		{"memory zero", with(3, "m=0,t=1,p=1")},
		{"time too large", with(3, "m=1024,t=1000000,p=1")},
		{"time zero", with(3, "m=1024,t=0,p=1")},
		{"threads too many", with(3, "m=1024,t=1,p=255")},
		{"threads zero", with(3, "m=1024,t=1,p=0")},
		{"salt empty", with(4, "")},
		{"salt too short", with(4, "AAAA")},
		{"salt too long", with(4, strings.Repeat("A", 100))},
		{"salt padded", with(4, salt16+"==")},
		{"salt not base64", with(4, "!!!!!!!!!!!!!!!!!!!!!!")},
		{"hash empty", with(5, "")},
		{"hash too short", with(5, "AAAAAAAA")},
		{"hash not base64", with(5, strings.Repeat("*", 43))},
		{"trailing field", good + "$x"},
		{"no leading dollar", strings.TrimPrefix(good, "$")},
		{"huge", good + strings.Repeat("A", 10000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword(tt.enc, goodPassword)
			if ok || !errors.Is(err, ErrBadHash) {
				t.Errorf("VerifyPassword(%q) = %v, %v, want false, ErrBadHash", tt.enc, ok, err)
			}
		})
	}
}

// TestVerifyPasswordParamsFromString shows that verification takes the parameters
// from the stored string, so they can change later.
func TestVerifyPasswordParamsFromString(t *testing.T) {
	for _, p := range []Params{TestParams, {Memory: 2048, Time: 2, Threads: 2}} {
		enc, err := HashPassword(goodPassword, p)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := VerifyPassword(enc, goodPassword); !ok || err != nil {
			t.Errorf("params %+v: VerifyPassword = %v, %v, want true, nil", p, ok, err)
		}
	}
}

func TestVerifyDummy(t *testing.T) {
	if VerifyDummy(goodPassword) {
		t.Error("VerifyDummy = true, want false")
	}
	d, err := NewDummy(TestParams)
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", goodPassword, strings.Repeat("a", MaxPasswordBytes+1)} {
		if d.Verify(pw) {
			t.Errorf("Dummy.Verify(%d bytes) = true, want false", len(pw))
		}
	}
	// The dummy string is one VerifyPassword accepts, so it does the full work.
	if _, _, _, err := parseHash(d.encoded); err != nil {
		t.Errorf("dummy hash does not parse: %v", err)
	}
	if _, _, _, err := parseHash(defaultDummy.encoded); err != nil {
		t.Errorf("default dummy hash does not parse: %v", err)
	}
	if !strings.Contains(defaultDummy.encoded, "$m=65536,t=3,p=2$") {
		t.Errorf("default dummy %q does not use DefaultParams", defaultDummy.encoded)
	}
	if _, err := NewDummy(Params{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewDummy(zero) = %v, want ErrInvalid", err)
	}
}
