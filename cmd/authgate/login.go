package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
)

const loginUsage = `usage: authgate login [--email E] [--addr URL] [--prefix PATH] [--cacert FILE] [--password-stdin] [--totp CODE]

Logs in to the gateway's built-in issuer and saves the access and refresh tokens (and the
address) for the remote commands, in the file 'authgate token set' uses (mode 0600). The
password is asked on the terminal without echo, or read from standard input with
--password-stdin; the TOTP code is asked when the account needs one and --totp is not given.

  --email E         the account (default: the one of the saved login)
  --addr URL        the gateway (default $AUTHGATE_ADDR, else the saved login's, else http://localhost:8080)
  --prefix PATH     auth_api.prefix (default /api/auth)
  --cacert FILE     trust this CA certificate (PEM) for the gateway's TLS (default $AUTHGATE_CACERT)
  --password-stdin  read the password from standard input
  --totp CODE       the current TOTP code

authgate logout [--prefix PATH] [--cacert FILE] ends the saved login on its gateway and forgets its tokens.
`

// loginAnswer is the answer of POST {prefix}/login/.
type loginAnswer struct {
	Access  string `json:"access"`
	Refresh string `json:"refresh"`
	User    struct {
		ID           string `json:"id"`
		Email        string `json:"email"`
		Organization string `json:"organization"`
		Role         string `json:"role"`
	} `json:"user"`
	MFAEnrollmentRequired bool `json:"mfa_enrollment_required"`
}

// loginBody is the body of POST {prefix}/login/.
type loginBody struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	TOTP     string `json:"totp,omitempty"`
}

func loginCmd(ctx context.Context, args []string, getenv func(string) string, p *prompter, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("login", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, loginUsage) }
	email := fl.String("email", "", "the account's email")
	addrFlag := fl.String("addr", "", "gateway address")
	prefix := fl.String("prefix", "/api/auth", "auth_api.prefix")
	fromStdin := fl.Bool("password-stdin", false, "read the password from standard input")
	totp := fl.String("totp", "", "the current TOTP code")
	cacert := fl.String("cacert", "", "CA certificate (PEM) of the gateway's TLS certificate")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("login: unexpected argument %q", fl.Arg(0))
	}
	path, saved, err := loadSaved(getenv)
	if err != nil {
		return err
	}
	if path == "" {
		_, err := credentialsPath(getenv)
		return fmt.Errorf("login: nowhere to save the tokens: %w", err)
	}
	if *email == "" {
		*email = saved.Email
	}
	if strings.TrimSpace(*email) == "" {
		return errors.New("login: --email is required")
	}
	addr, err := resolveAddr("login", *addrFlag, getenv, saved)
	if err != nil {
		return err
	}
	body := loginBody{Email: *email, TOTP: strings.TrimSpace(*totp)}
	if *fromStdin {
		body.Password, err = p.stdinSecret()
	} else {
		body.Password, err = p.secret(fmt.Sprintf("Password for %s at %s: ", *email, addr))
	}
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	tr, err := transportFor("login", *cacert, getenv)
	if err != nil {
		return err
	}
	c := &apiClient{what: "login", base: apiBase(addr, *prefix), client: &http.Client{Timeout: remoteTimeout, Transport: tr}}
	defer c.close()

	data, err := c.do(ctx, http.MethodPost, "/login/", body)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == "mfa_required" && body.TOTP == "" {
		if !p.interactive() {
			return fmt.Errorf("login: %w (pass --totp CODE)", err)
		}
		if body.TOTP, err = p.secret("TOTP code: "); err != nil {
			return fmt.Errorf("login: %w", err)
		}
		body.TOTP = strings.TrimSpace(body.TOTP)
		data, err = c.do(ctx, http.MethodPost, "/login/", body)
	}
	if err != nil {
		return err
	}
	var ans loginAnswer
	if err := json.Unmarshal(data, &ans); err != nil || ans.Access == "" {
		return errors.New("login: unexpected answer from the gateway")
	}
	if err := saveCredentials(path, credentials{Token: ans.Access, Refresh: ans.Refresh, Email: ans.User.Email, Addr: addr}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "logged in to %s as %s (%s, role %s); saved to %s (mode 0600)\n",
		addr, ans.User.Email, ans.User.ID, ans.User.Role, path)
	if ans.MFAEnrollmentRequired {
		fmt.Fprintln(stderr, "authgate: this account must turn on TOTP before it can do anything else: run authgate mfa enroll"+
			" (or use the web console) while this access token lasts; it cannot be renewed")
	}
	return nil
}

func logoutCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("logout", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, loginUsage) }
	prefix := fl.String("prefix", "/api/auth", "auth_api.prefix")
	cacert := fl.String("cacert", "", "CA certificate (PEM) of the gateway's TLS certificate")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("logout: unexpected argument %q", fl.Arg(0))
	}
	path, saved, err := loadSaved(getenv)
	if err != nil {
		return err
	}
	switch {
	case saved.Token == "":
		fmt.Fprintln(stdout, "not logged in")
		return nil
	case saved.Refresh == "" || saved.Addr == "":
		return errors.New("logout: the saved credential was not saved by `authgate login`; remove it with `authgate token remove`")
	}
	told := endLogin(ctx, "logout", path, saved, *prefix, *cacert, getenv, stderr)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("logout: %w", err)
	}
	if told != nil {
		return fmt.Errorf("logout: the saved tokens are removed, but %s was not told (%w): the refresh token stays valid until it expires", saved.Addr, told)
	}
	fmt.Fprintf(stdout, "logged out of %s (%s)\n", saved.Addr, saved.Email)
	return nil
}

// endLogin revokes the saved login's access token and refresh family at the gateway that
// issued them (POST logout). A 401 counts as done: the tokens were revoked or invalid
// already. It returns why the gateway could not be told.
func endLogin(ctx context.Context, what, path string, saved credentials, prefix, cacert string, getenv func(string) string, stderr io.Writer) error {
	tr, err := transportFor(what, cacert, getenv)
	if err != nil {
		return err
	}
	warn := func(format string, args ...any) { fmt.Fprintf(stderr, format, args...) }
	s, err := openSession(what, "", func(string) string { return "" }, path, saved, saved.Addr, prefix, tr, warn)
	if err != nil {
		return err
	}
	defer s.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	told := s.logout(ctx, apiBase(saved.Addr, prefix)+"/logout/")
	var ae *apiError
	if errors.As(told, &ae) && ae.Status == http.StatusUnauthorized {
		return nil // revoked or invalid already: the session has ended
	}
	return withTLSHint(told)
}

// logout is POST logout with the access token and the session's refresh token. An
// expired access token is renewed once first: logout then ends the renewed family. The
// session's auto-repeat is not used, as it would resend the refresh token that renewing
// has spent.
func (s *session) logout(ctx context.Context, u string) error {
	for {
		s.mu.Lock()
		tok, refresh := s.token, s.saved.Refresh
		s.mu.Unlock()
		err := s.logoutOnce(ctx, u, tok, refresh)
		var ae *apiError
		if !errors.As(err, &ae) || ae.Code != "expired_token" {
			return err
		}
		if _, ok := s.renew(ctx, tok); !ok {
			return err
		}
	}
}

func (s *session) logoutOnce(ctx context.Context, u, tok, refresh string) error {
	body, _ := json.Marshal(map[string]string{"refresh": refresh}) // cannot fail
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "authgate-cli/"+version())
	req.Header.Set("Authorization", authorization(tok))
	resp, err := s.base.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return answerError(resp.StatusCode, data)
}
