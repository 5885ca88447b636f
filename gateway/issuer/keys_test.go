package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// RFC 8037 Appendix A.1's Ed25519 key and A.3's thumbprint of it.
const (
	rfc8037D   = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
	rfc8037X   = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	rfc8037KID = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
)

// pemOf returns key as a PKCS#8 PEM block.
func pemOf(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// newEd25519 returns a new Ed25519 private key.
func newEd25519(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newP256 returns a new ECDSA P-256 private key.
func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeKeyFile writes data to a new key file (mode 0600) and returns its path.
func writeKeyFile(t testing.TB, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signing-key.pem")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadKeys loads the key file at path, failing the test on error or creation.
func loadKeys(t testing.TB, path string) *KeySet {
	t.Helper()
	ks, created, err := LoadOrCreateKeySet(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKeySet: %v", err)
	}
	if created {
		t.Fatalf("LoadOrCreateKeySet created %s, want it loaded", path)
	}
	return ks
}

func TestLoadOrCreateKeySetCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "keys")
	path := filepath.Join(dir, "signing-key.pem")
	ks, created, err := LoadOrCreateKeySet(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKeySet: %v", err)
	}
	if !created {
		t.Fatal("created = false for a missing file, want true")
	}
	if got := ks.Algorithms(); !slices.Equal(got, []string{"EdDSA"}) {
		t.Errorf("Algorithms = %v, want [EdDSA]", got)
	}
	if ks.Insecure() {
		t.Error("Insecure = true for a created file")
	}
	if len(ks.SigningKID()) != 43 {
		t.Errorf("SigningKID = %q, want 43 base64url characters", ks.SigningKID())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode = %o, want 600", got)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("directory mode = %o, want 700", got)
	}
	again := loadKeys(t, path)
	if again.SigningKID() != ks.SigningKID() {
		t.Errorf("reloaded SigningKID = %q, want %q", again.SigningKID(), ks.SigningKID())
	}
	assertOnlyFile(t, dir, "signing-key.pem")
}

// assertOnlyFile fails unless dir holds exactly the file name (no temporary files left).
func assertOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{name}) {
		t.Errorf("directory holds %v, want only %s", names, name)
	}
}

func TestLoadOrCreateKeySetConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "signing-key.pem")
	const n = 8
	var (
		wg      sync.WaitGroup
		kids    [n]string
		created [n]bool
		errs    [n]error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			ks, c, err := LoadOrCreateKeySet(path)
			errs[i], created[i] = err, c
			if err == nil {
				kids[i] = ks.SigningKID()
			}
		})
	}
	close(start)
	wg.Wait()
	nCreated := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if created[i] {
			nCreated++
		}
		if kids[i] != kids[0] {
			t.Errorf("goroutine %d got kid %q, goroutine 0 got %q", i, kids[i], kids[0])
		}
	}
	if nCreated != 1 {
		t.Errorf("%d goroutines report created, want exactly 1", nCreated)
	}
	if got := loadKeys(t, path).SigningKID(); got != kids[0] {
		t.Errorf("file's kid = %q, want %q", got, kids[0])
	}
	assertOnlyFile(t, dir, "signing-key.pem")
}

func TestKeySetInsecure(t *testing.T) {
	path := writeKeyFile(t, pemOf(t, newEd25519(t)))
	if loadKeys(t, path).Insecure() {
		t.Fatal("Insecure = true for mode 0600")
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if !loadKeys(t, path).Insecure() {
		t.Fatal("Insecure = false for mode 0640, want true")
	}
}

func TestThumbprintRFC8037(t *testing.T) {
	seed, err := base64.RawURLEncoding.DecodeString(rfc8037D)
	if err != nil {
		t.Fatal(err)
	}
	ks := loadKeys(t, writeKeyFile(t, pemOf(t, ed25519.NewKeyFromSeed(seed))))
	if got := ks.SigningKID(); got != rfc8037KID {
		t.Errorf("SigningKID = %q, want %q", got, rfc8037KID)
	}
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(ks.JWKS(), &doc); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	want := map[string]string{"kty": "OKP", "crv": "Ed25519", "x": rfc8037X, "kid": rfc8037KID, "alg": "EdDSA", "use": "sig"}
	if len(doc.Keys) != 1 || !mapsEqual(doc.Keys[0], want) {
		t.Errorf("JWKS keys = %v, want [%v]", doc.Keys, want)
	}
}

// mapsEqual reports whether a and b hold the same pairs.
func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestJWKSMixedKeys(t *testing.T) {
	ed, ec := newEd25519(t), newP256(t)
	ks := loadKeys(t, writeKeyFile(t, append(pemOf(t, ec), pemOf(t, ed)...)))
	if got := ks.Algorithms(); !slices.Equal(got, []string{"ES256", "EdDSA"}) {
		t.Errorf("Algorithms = %v, want [ES256 EdDSA]", got)
	}
	// Cross-check our thumbprints with go-jose's.
	wantKID := func(pub crypto.PublicKey) string {
		tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(tp)
	}
	ecKID, edKID := wantKID(ec.Public()), wantKID(ed.Public())
	if ks.SigningKID() != ecKID {
		t.Errorf("SigningKID = %q, want the P-256 key's %q", ks.SigningKID(), ecKID)
	}
	pub := ks.Public()
	if len(pub) != 2 || !ec.PublicKey.Equal(pub[ecKID]) || !ed.Public().(ed25519.PublicKey).Equal(pub[edKID]) {
		t.Errorf("Public = %v, want the two public keys by kid", pub)
	}

	var doc jose.JSONWebKeySet
	if err := json.Unmarshal(ks.JWKS(), &doc); err != nil {
		t.Fatalf("JWKS does not parse as a JWK set: %v", err)
	}
	if len(doc.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2", len(doc.Keys))
	}
	for i, want := range []struct {
		kid, alg string
		pub      crypto.PublicKey
	}{{ecKID, "ES256", ec.Public()}, {edKID, "EdDSA", ed.Public()}} {
		k := doc.Keys[i]
		if k.KeyID != want.kid || k.Algorithm != want.alg || k.Use != "sig" || !k.IsPublic() {
			t.Errorf("JWKS key %d = kid %q alg %q use %q public %v, want kid %q alg %q use sig public", i, k.KeyID, k.Algorithm, k.Use, k.IsPublic(), want.kid, want.alg)
		}
		if eq, ok := want.pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(k.Key) {
			t.Errorf("JWKS key %d holds another public key", i)
		}
	}
	if strings.Contains(string(ks.JWKS()), `"d"`) {
		t.Errorf("JWKS contains a private member: %s", ks.JWKS())
	}
}

func TestKeyFileErrors(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed := pemOf(t, newEd25519(t))
	sec1, err := x509.MarshalECPrivateKey(newP256(t))
	if err != nil {
		t.Fatal(err)
	}
	edBlock, _ := pem.Decode(ed)
	encrypted := pem.EncodeToMemory(&pem.Block{
		Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"},
		Bytes: edBlock.Bytes,
	})
	corrupt := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not DER at all")})
	tests := []struct {
		name     string
		data     []byte
		wantType bool // the error is errKeyType
	}{
		{"empty", nil, false},
		{"whitespace only", []byte(" \n\t\n"), false},
		{"not PEM", []byte("hello, world\n"), false},
		{"trailing garbage", append(slices.Clone(ed), "garbage"...), false},
		{"leading garbage", append([]byte("garbage\n"), ed...), false},
		{"RSA key", pemOf(t, rsaKey), true},
		{"P-384 key", pemOf(t, p384), true},
		{"second key is RSA", append(slices.Clone(ed), pemOf(t, rsaKey)...), true},
		{"SEC1 EC block", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), false},
		{"public key block", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), false},
		{"encrypted", encrypted, false},
		{"corrupt DER", corrupt, false},
		{"truncated PEM", ed[:len(ed)-30], false},
		{"same key twice", append(slices.Clone(ed), ed...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeKeyFile(t, tt.data)
			_, _, err := LoadOrCreateKeySet(path)
			if err == nil {
				t.Fatal("LoadOrCreateKeySet: no error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file %s", err, path)
			}
			if got := errors.Is(err, errKeyType); got != tt.wantType {
				t.Errorf("errors.Is(err, errKeyType) = %v, want %v (err: %v)", got, tt.wantType, err)
			}
			assertNoKeyMaterial(t, err.Error(), tt.data)
			if _, err := RotateKeyFile(path); err == nil {
				t.Error("RotateKeyFile of a bad file: no error")
			}
		})
	}
}

// assertNoKeyMaterial fails if msg contains a run of the base64 body of a PEM file.
func assertNoKeyMaterial(t *testing.T, msg string, data []byte) {
	t.Helper()
	for _, line := range strings.Split(string(data), "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(msg, line[:16]) {
			t.Errorf("error %q contains key material", msg)
		}
	}
}

func TestRotateKeyFile(t *testing.T) {
	path := writeKeyFile(t, pemOf(t, newP256(t)))
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	old := loadKeys(t, path)
	kid, err := RotateKeyFile(path)
	if err != nil {
		t.Fatalf("RotateKeyFile: %v", err)
	}
	if kid == old.SigningKID() {
		t.Fatal("RotateKeyFile returned the old kid")
	}
	ks := loadKeys(t, path)
	if ks.SigningKID() != kid {
		t.Errorf("SigningKID after rotation = %q, want %q", ks.SigningKID(), kid)
	}
	if _, ok := ks.Public()[old.SigningKID()]; !ok || len(ks.Public()) != 2 {
		t.Errorf("Public after rotation has %d keys, want 2 including the old %q", len(ks.Public()), old.SigningKID())
	}
	if got := ks.Algorithms(); !slices.Equal(got, []string{"EdDSA", "ES256"}) {
		t.Errorf("Algorithms after rotation = %v, want [EdDSA ES256]", got)
	}
	if ks.Insecure() {
		t.Error("rotated file is group/other readable, want mode 0600")
	}
	assertOnlyFile(t, filepath.Dir(path), filepath.Base(path))

	if _, err := RotateKeyFile(filepath.Join(t.TempDir(), "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("RotateKeyFile(missing) = %v, want os.ErrNotExist", err)
	}
}
