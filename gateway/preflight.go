package gateway

import (
	"errors"
	"fmt"
	"strings"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/issuer"
	"github.com/authgate/authgate/gateway/jwtauth"
	"github.com/authgate/authgate/gateway/tlscert"
	"github.com/authgate/authgate/policy"
)

// ConfigOptions are the options every configuration the gateway runs is loaded with
// (`serve`, each reload, `config validate`): the file's own validation plus Preflight, so
// a file validate accepts is one serve starts with, short of the network.
func ConfigOptions(getenv func(string) string) config.Options {
	return config.Options{Getenv: getenv, Checks: []config.Check{Preflight}}
}

// LoadConfig loads the file at path with ConfigOptions.
func LoadConfig(path string, getenv func(string) string) (*config.Config, error) {
	return config.LoadWith(path, ConfigOptions(getenv))
}

// Preflight is every check New and Listen make of cfg that needs no network, by the same
// functions: the TLS certificate pair loads and matches; each JWT issuer's public key
// files load and fit its algorithms, and an HMAC secret is long enough for its
// algorithm; the issuer's signing key file, when it exists, loads; bootstrap.admin_key is
// a well-formed key of api_keys.prefix; the routes compile into the router. It reports
// every problem it finds.
func Preflight(cfg *config.Config) []config.FieldProblem {
	var ps []config.FieldProblem
	add := func(field string, err error) {
		ps = append(ps, config.FieldProblem{Field: field, Msg: err.Error()})
	}
	if cfg.TLS.CertFile != "" && cfg.TLS.KeyFile != "" {
		if _, err := tlscert.Load(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
			add("tls.cert_file", fmt.Errorf("the certificate and key do not load: %w", unwrapPrefix(err, "tlscert: ")))
		}
	}
	for i, ic := range cfg.JWT.Issuers {
		p := fmt.Sprintf("jwt.issuers[%d]", i)
		jc, err := jwtIssuer(ic)
		if err != nil {
			add(p+".public_key_files", err)
			continue
		}
		if err := jwtauth.Check(jc); err != nil {
			add(p, err)
		}
	}
	if cfg.Issuer.Enabled && cfg.Issuer.SigningKeyFile != "" {
		if err := issuer.CheckKeyFile(cfg.Issuer.SigningKeyFile); err != nil {
			add("issuer.signing_key_file", unwrapPrefix(err, "issuer: "))
		}
	}
	if err := checkBootstrapKey(cfg.Bootstrap.AdminKey.Value(), cfg.APIKeys.Prefix); err != nil {
		add("bootstrap.admin_key", err)
	}
	routes := make([]policy.Route, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		routes[i] = policy.Route{Name: rc.Name, Patterns: rc.Match}
	}
	if _, err := policy.NewRouter(routes, cfg.ReservedPatterns()); err != nil {
		add("routes", unwrapPrefix(err, "policy: "))
	}
	return ps
}

// jwtIssuer is the verifier's view of one jwt.issuers entry, with its public key files
// read.
func jwtIssuer(ic config.JWTIssuer) (jwtauth.IssuerConfig, error) {
	keys, err := jwtauth.LoadPublicKeyFiles(ic.PublicKeyFiles)
	if err != nil {
		return jwtauth.IssuerConfig{}, err
	}
	return jwtauth.IssuerConfig{Issuer: ic.Issuer, Audiences: ic.Audiences,
		Algorithms: ic.Algorithms, HMACSecret: []byte(ic.HMACSecret.Value()), PublicKeys: keys,
		JWKSURL: ic.JWKSURL, RoleClaim: ic.RoleClaim, TeamClaim: ic.TeamClaim}, nil
}

// checkBootstrapKey refuses a bootstrap.admin_key that is not a key of prefix, and says
// so plainly when it is a well-formed key of another prefix. The key is never in the
// message.
func checkBootstrapKey(key, prefix string) error {
	if key == "" {
		return nil
	}
	if _, err := apikey.Parse(key, prefix); err == nil {
		return nil
	}
	if other, _, ok := strings.Cut(key, "_"); ok && other != prefix {
		if _, err := apikey.Parse(key, other); err == nil {
			return fmt.Errorf("a key of prefix %q, but api_keys.prefix is %q (make one with `authgate keys generate --config FILE`, which reads the prefix)", other, prefix)
		}
	}
	return fmt.Errorf("not a well-formed key of prefix %q (make one with `authgate keys generate --config FILE`, which reads the prefix)", prefix)
}

// unwrapPrefix drops a package's "name: " prefix from err's text; the field says where.
func unwrapPrefix(err error, prefix string) error {
	s := err.Error()
	if t, ok := strings.CutPrefix(s, prefix); ok {
		return errors.New(t)
	}
	return err
}
