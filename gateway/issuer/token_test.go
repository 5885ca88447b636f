package issuer

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/gateway/clocktest"
)

const testIssuer = "https://auth.example.com/"

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, time.UTC)

// newMinter returns a Minter on a key set made of keys, with a test clock at t0.
func newMinter(t testing.TB, keys ...any) (*Minter, *clocktest.Clock) {
	t.Helper()
	var data []byte
	for _, k := range keys {
		data = append(data, pemOf(t, k)...)
	}
	clk := clocktest.New(t0)
	return &Minter{Keys: loadKeys(t, writeKeyFile(t, data)), Issuer: testIssuer, TTL: time.Hour, Now: clk.Now}, clk
}

// segment decodes part i of a JWT into a map.
func segment(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMintParseRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		key  any
		alg  string
	}{
		{"Ed25519", newEd25519(t), "EdDSA"},
		{"P-256", newP256(t), "ES256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newMinter(t, tt.key)
			in := AccessClaims{Subject: "usr_1", Email: "a@example.com", Role: "admin", Org: "acme", AMR: []string{"pwd", "otp"}}
			tok, out, err := m.Mint(in)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			wantIAT := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			if !out.IssuedAt.Equal(wantIAT) || !out.ExpiresAt.Equal(wantIAT.Add(time.Hour)) {
				t.Errorf("Mint times = %s..%s, want %s..%s", out.IssuedAt, out.ExpiresAt, wantIAT, wantIAT.Add(time.Hour))
			}
			if len(out.ID) != 22 {
				t.Errorf("jti = %q, want 22 characters", out.ID)
			}
			got, err := m.Parse(tok, 0)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, out) {
				t.Errorf("Parse = %+v, want %+v", got, out)
			}

			hdr := segment(t, tok, 0)
			wantHdr := map[string]any{"alg": tt.alg, "typ": "JWT", "kid": m.Keys.SigningKID()}
			if !reflect.DeepEqual(hdr, wantHdr) {
				t.Errorf("header = %v, want %v", hdr, wantHdr)
			}
			iat := float64(wantIAT.Unix())
			wantBody := map[string]any{
				"iss": testIssuer, "sub": "usr_1", "aud": []any{testIssuer},
				"iat": iat, "nbf": iat, "exp": iat + 3600, "jti": out.ID,
				"email": "a@example.com", "role": "admin", "org": "acme", "amr": []any{"pwd", "otp"},
			}
			if body := segment(t, tok, 1); !reflect.DeepEqual(body, wantBody) {
				t.Errorf("claims = %v, want %v", body, wantBody)
			}
		})
	}
}

func TestMintEnrollOnly(t *testing.T) {
	m, _ := newMinter(t, newEd25519(t))
	tok, _, err := m.Mint(AccessClaims{Subject: "usr_1", AMR: []string{"pwd"}, EnrollOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := segment(t, tok, 1)["mfa_enroll"]; got != true {
		t.Errorf("mfa_enroll = %v, want true", got)
	}
	c, err := m.Parse(tok, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !c.EnrollOnly {
		t.Error("Parse: EnrollOnly = false, want true")
	}
}

func TestMintUniqueIDs(t *testing.T) {
	m, _ := newMinter(t, newEd25519(t))
	seen := map[string]bool{}
	for range 100 {
		_, c, err := m.Mint(AccessClaims{Subject: "usr_1"})
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.ID] {
			t.Fatalf("jti %q minted twice", c.ID)
		}
		seen[c.ID] = true
	}
}

func TestMinterNotSetUp(t *testing.T) {
	good, _ := newMinter(t, newEd25519(t))
	for _, m := range []*Minter{
		{Issuer: testIssuer, TTL: time.Hour},
		{Keys: good.Keys, TTL: time.Hour},
		{Keys: good.Keys, Issuer: testIssuer},
	} {
		if _, _, err := m.Mint(AccessClaims{Subject: "u"}); err == nil {
			t.Errorf("Mint with %+v: no error", m)
		}
		if _, err := m.Parse("a.b.c", 0); err == nil {
			t.Errorf("Parse with %+v: no error", m)
		}
	}
}

func TestParseAfterRotation(t *testing.T) {
	path := writeKeyFile(t, pemOf(t, newP256(t)))
	clk := clocktest.New(t0)
	m := &Minter{Keys: loadKeys(t, path), Issuer: testIssuer, TTL: time.Hour, Now: clk.Now}
	old, _, err := m.Mint(AccessClaims{Subject: "usr_1"})
	if err != nil {
		t.Fatal(err)
	}
	kid, err := RotateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m2 := &Minter{Keys: loadKeys(t, path), Issuer: testIssuer, TTL: time.Hour, Now: clk.Now}
	if _, err := m2.Parse(old, 0); err != nil {
		t.Errorf("token of the old key after rotation: %v", err)
	}
	fresh, _, err := m2.Mint(AccessClaims{Subject: "usr_1"})
	if err != nil {
		t.Fatal(err)
	}
	if h := segment(t, fresh, 0); h["kid"] != kid || h["alg"] != "EdDSA" {
		t.Errorf("new token header = %v, want kid %q alg EdDSA", h, kid)
	}
	if _, err := m.Parse(fresh, 0); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("new key's token on the old set = %v, want ErrTokenInvalid", err)
	}
}

// sign signs claims with method and key, with the given header fields added.
func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims, hdr map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range hdr {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseRefuses(t *testing.T) {
	ed, ec := newEd25519(t), newP256(t)
	m, clk := newMinter(t, ed, ec)
	edKID := m.Keys.SigningKID()
	var ecKID string
	for kid := range m.Keys.Public() {
		if kid != edKID {
			ecKID = kid
		}
	}
	other, _ := newMinter(t, newEd25519(t))
	otherIss := &Minter{Keys: m.Keys, Issuer: "https://evil.example.com/", TTL: time.Hour, Now: clk.Now}

	iat := jwt.NewNumericDate(t0)
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{
			"iss": testIssuer, "sub": "usr_1", "aud": []string{testIssuer}, "jti": "abc",
			"iat": iat, "nbf": iat, "exp": jwt.NewNumericDate(t0.Add(time.Hour)),
		}
	}
	without := func(claim string) jwt.MapClaims { c := valid(); delete(c, claim); return c }
	with := func(claim string, v any) jwt.MapClaims { c := valid(); c[claim] = v; return c }
	kid := map[string]any{"kid": edKID}

	mint := func(mm *Minter) string {
		tok, _, err := mm.Mint(AccessClaims{Subject: "usr_1"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	goodTok := mint(m)
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, valid()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	edPub := []byte(ed.Public().(ed25519.PublicKey))
	parts := strings.Split(goodTok, ".")

	tests := []struct {
		name    string
		token   string
		advance time.Duration
		leeway  time.Duration
		want    error // nil: accepted
	}{
		{"control: our hand-signed token", sign(t, jwt.SigningMethodEdDSA, ed, valid(), kid), 0, 0, nil},
		{"control: ES256 key of the set", sign(t, jwt.SigningMethodES256, ec, valid(), map[string]any{"kid": ecKID}), 0, 0, nil},
		{"control: expired but within leeway", goodTok, time.Hour + 20*time.Second, 30 * time.Second, nil},
		{"other key set", mint(other), 0, 0, ErrTokenInvalid},
		{"other key, our kid", sign(t, jwt.SigningMethodEdDSA, newEd25519(t), valid(), kid), 0, 0, ErrTokenInvalid},
		{"HS256 keyed with our public key", sign(t, jwt.SigningMethodHS256, edPub, valid(), kid), 0, 0, ErrTokenInvalid},
		{"alg none", noneTok, 0, 0, ErrTokenInvalid},
		{"ES256 header on the Ed25519 kid", sign(t, jwt.SigningMethodES256, ec, valid(), kid), 0, 0, ErrTokenInvalid},
		{"no kid", sign(t, jwt.SigningMethodEdDSA, ed, valid(), nil), 0, 0, ErrTokenInvalid},
		{"unknown kid", sign(t, jwt.SigningMethodEdDSA, ed, valid(), map[string]any{"kid": "nope"}), 0, 0, ErrTokenInvalid},
		{"typ at+jwt", sign(t, jwt.SigningMethodEdDSA, ed, valid(), map[string]any{"kid": edKID, "typ": "at+jwt"}), 0, 0, ErrTokenInvalid},
		{"expired", goodTok, time.Hour, 0, ErrTokenExpired},
		{"expired beyond leeway", goodTok, time.Hour + 31*time.Second, 30 * time.Second, ErrTokenExpired},
		{"wrong iss", mint(otherIss), 0, 0, ErrTokenInvalid},
		{"wrong aud", sign(t, jwt.SigningMethodEdDSA, ed, with("aud", []string{"api"}), kid), 0, 0, ErrTokenInvalid},
		{"no exp", sign(t, jwt.SigningMethodEdDSA, ed, without("exp"), kid), 0, 0, ErrTokenInvalid},
		{"no sub", sign(t, jwt.SigningMethodEdDSA, ed, without("sub"), kid), 0, 0, ErrTokenInvalid},
		{"no jti", sign(t, jwt.SigningMethodEdDSA, ed, without("jti"), kid), 0, 0, ErrTokenInvalid},
		{"not yet valid", sign(t, jwt.SigningMethodEdDSA, ed, with("nbf", jwt.NewNumericDate(t0.Add(time.Minute))), kid), 0, 0, ErrTokenInvalid},
		{"issued in the future", sign(t, jwt.SigningMethodEdDSA, ed, with("iat", jwt.NewNumericDate(t0.Add(time.Minute))), kid), 0, 0, ErrTokenInvalid},
		{"role is a number", sign(t, jwt.SigningMethodEdDSA, ed, with("role", 7), kid), 0, 0, ErrTokenInvalid},
		{"tampered claims", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin"}`)) + "." + parts[2], 0, 0, ErrTokenInvalid},
		{"empty", "", 0, 0, ErrTokenInvalid},
		{"garbage", "not.a.jwt", 0, 0, ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.Set(t0.Add(tt.advance))
			_, err := m.Parse(tt.token, tt.leeway)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %v, want %v", err, tt.want)
			}
			other := ErrTokenExpired
			if tt.want == ErrTokenExpired {
				other = ErrTokenInvalid
			}
			if errors.Is(err, other) {
				t.Errorf("Parse = %v, which also matches %v", err, other)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error contains the token")
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	ed := newEd25519(f)
	m, _ := newMinter(f, ed)
	good, _, err := m.Mint(AccessClaims{Subject: "usr_1", Email: "a@example.com", AMR: []string{"pwd"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good + "x")
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(`eyJhbGciOiJFZERTQSIsImtpZCI6WzFdfQ.e30.AA`)
	f.Fuzz(func(t *testing.T, token string) {
		c, err := m.Parse(token, time.Minute)
		if err != nil {
			if !errors.Is(err, ErrTokenInvalid) && !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("Parse error %v is neither ErrTokenInvalid nor ErrTokenExpired", err)
			}
			return
		}
		// Ed25519 signatures and strict base64 leave one encoding per token: only the
		// minted token itself can verify.
		if token != good || c.Subject != "usr_1" {
			t.Fatalf("Parse accepted a token other than the minted one: %q -> %+v", token, c)
		}
	})
}
