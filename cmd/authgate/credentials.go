package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway/apikey"
)

// credentials is what `authgate token set` and `authgate login` save for remote commands.
// A file written by `token set` has Token only; one written by login has every field.
type credentials struct {
	// Token is the credential remote commands send: an API key, or login's access token.
	Token string `json:"token"`
	// Refresh is login's refresh token: remote commands renew Token with it once when the
	// gateway at Addr answers expired_token.
	Refresh string `json:"refresh,omitempty"`
	// Email is the user who logged in (the default of the next login's --email).
	Email string `json:"email,omitempty"`
	// Addr is the gateway that issued the tokens; the refresh token is sent nowhere else.
	Addr string `json:"addr,omitempty"`
}

// credentialsPath is $XDG_CONFIG_HOME/authgate/credentials.json, else
// $HOME/.config/authgate/credentials.json.
func credentialsPath(getenv func(string) string) (string, error) {
	if dir := getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "authgate", "credentials.json"), nil
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "authgate", "credentials.json"), nil
	}
	return "", errors.New("credentials: neither XDG_CONFIG_HOME nor HOME is set")
}

// saveCredentials writes c readable by its owner only: the directory 0700, the file 0600,
// written to a temporary file first so a crash never leaves half a credential.
func saveCredentials(path string, c credentials) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*.json")
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this finds nothing
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("credentials: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	return nil
}

// loadCredentials reads the saved credential; a missing file is fs.ErrNotExist.
func loadCredentials(path string) (credentials, error) {
	var c credentials
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("credentials: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("credentials: %s is not valid JSON: %w", path, err)
	}
	return c, nil
}

const tokenUsage = `usage: authgate token set [--prefix PATH] [--cacert FILE] <credential> | authgate token remove

token set saves the credential remote commands send (an API key or an access token). When
it replaces a login saved by 'authgate login', it warns and ends that login at its gateway
first (POST {prefix}/logout/), so its refresh token stops working; when the gateway cannot
be told, it says so and the refresh token stays valid until it expires.
`

func tokenCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	path, err := credentialsPath(getenv)
	if err != nil {
		return err
	}
	if len(args) == 1 && args[0] == "remove" {
		err := os.Remove(path)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintln(stdout, "no saved credential")
			return nil
		}
		if err != nil {
			return fmt.Errorf("token remove: %w", err)
		}
		fmt.Fprintf(stdout, "removed %s\n", path)
		return nil
	}
	if len(args) == 0 || args[0] != "set" {
		fmt.Fprint(stderr, tokenUsage)
		return errors.New("token: bad arguments")
	}
	fl := flag.NewFlagSet("token set", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, tokenUsage) }
	prefix := fl.String("prefix", "/api/auth", "auth_api.prefix of the saved login's gateway")
	cacert := fl.String("cacert", "", "CA certificate (PEM) of the saved login's gateway")
	pos, err := parseInterleaved(fl, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, tokenUsage)
		return errors.New("token set: want one credential")
	}
	tok := strings.TrimSpace(pos[0])
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return errors.New("token set: the credential must be one word (an API key or an access token)")
	}
	old, err := loadCredentials(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("token set: %w", err)
	}
	if old.Refresh != "" && old.Addr != "" {
		fmt.Fprintf(stderr, "authgate: warning: this replaces the login of %s at %s; ending it there\n", orDash(old.Email), old.Addr)
		if err := endLogin(ctx, "token set", path, old, *prefix, *cacert, getenv, stderr); err != nil {
			fmt.Fprintf(stderr, "authgate: warning: %s was not told (%v): that login's refresh token stays valid until it expires\n", old.Addr, err)
		} else {
			fmt.Fprintf(stderr, "authgate: ended that login: its refresh token is revoked\n")
		}
	}
	if err := saveCredentials(path, credentials{Token: tok}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "saved to %s (mode 0600)\n", path)
	return nil
}

func keysCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "generate" {
		return keysCmdManage(ctx, args, getenv, stdout, stderr) // keys.go
	}
	fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := fs.String("env", apikey.Live, "environment: live or test")
	prefix := fs.String("prefix", "", "key prefix (default: api_keys.prefix of --config)")
	path := fs.String("config", "", "configuration file whose api_keys.prefix to use (default: $AUTHGATE_CONFIG, else the embedded gateway.yaml)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *prefix == "" {
		if *path == "" {
			*path = getenv("AUTHGATE_CONFIG")
		}
		// Only the prefix is read: the file's secrets need not be set to make a key.
		cfg, err := loadConfigWith(*path, config.Options{Getenv: getenv, Uses: []string{"api_keys.prefix"}})
		if err != nil {
			return fmt.Errorf("keys generate: %w", err)
		}
		*prefix = cfg.APIKeys.Prefix
	}
	k, err := apikey.Generate(*prefix, *env)
	if err != nil {
		return fmt.Errorf("keys generate: %w", err)
	}
	fmt.Fprintln(stdout, k)
	return nil
}
