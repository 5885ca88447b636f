package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

const mfaUsage = `usage: authgate mfa enroll [--password-stdin] [--no-qr] [--addr URL] [--prefix PATH] [--token T] [--cacert FILE]

Turns on TOTP for the account of the saved login (or of --token): asks for the current
password, shows the otpauth URI, its secret and a QR code to scan with an authenticator
app, then asks for the app's first code and confirms it. Once TOTP is on, every earlier
session of the account ends: log in again with 'authgate login --totp CODE'.

Without a terminal, standard input gives the password (--password-stdin: its first line)
and then the code (the next line), after the URI has been printed.

  --password-stdin  read the password from the first line of standard input
  --no-qr           print the URI and secret only
  --addr, --prefix, --token, --cacert
                    as for 'authgate keys' (the saved login's gateway by default)
`

// enrollAnswer is the answer of POST {prefix}/mfa/totp/enroll/.
type enrollAnswer struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
}

// maxCodeTries is how many codes a terminal user may type before the command gives up;
// the enrolment stays pending and can be started again.
const maxCodeTries = 3

func mfaCmd(ctx context.Context, args []string, getenv func(string) string, p *prompter, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "enroll" {
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, mfaUsage)
			return nil
		}
		fmt.Fprint(stderr, mfaUsage)
		return errors.New("mfa: want mfa enroll")
	}
	fl := flag.NewFlagSet("mfa enroll", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, mfaUsage) }
	var kf keysFlags
	fl.StringVar(&kf.addr, "addr", "", "gateway address")
	fl.StringVar(&kf.prefix, "prefix", "/api/auth", "auth_api.prefix")
	fl.StringVar(&kf.token, "token", "", "credential (default $AUTHGATE_TOKEN, else the saved login's)")
	fl.StringVar(&kf.cacert, "cacert", "", "CA certificate (PEM) of the gateway's TLS certificate")
	fromStdin := fl.Bool("password-stdin", false, "read the password from the first line of standard input")
	noQR := fl.Bool("no-qr", false, "print the URI and secret only")
	if err := fl.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("mfa enroll: unexpected argument %q", fl.Arg(0))
	}
	c, err := openRemote("mfa enroll", kf, getenv, stderr)
	if err != nil {
		return err
	}
	defer c.close()

	lines := bufio.NewReader(p.in)
	var password string
	switch {
	case *fromStdin:
		password, err = readLine(lines, "--password-stdin")
	default:
		password, err = p.secret("Current password: ")
	}
	if err != nil {
		return fmt.Errorf("mfa enroll: %w", err)
	}

	data, err := c.do(ctx, http.MethodPost, "/mfa/totp/enroll/", map[string]string{"current_password": password})
	if err != nil {
		return err
	}
	var ans enrollAnswer
	if err := json.Unmarshal(data, &ans); err != nil || ans.OTPAuthURL == "" {
		return errors.New("mfa enroll: unexpected answer from the gateway")
	}
	if err := printEnrollment(stdout, ans, !*noQR); err != nil {
		return err
	}

	for try := 1; ; try++ {
		var code string
		if p.interactive() {
			code, err = p.secret("Code from the app: ")
		} else {
			fmt.Fprint(stderr, "Code from the app: ")
			code, err = readLine(lines, "standard input")
			fmt.Fprintln(stderr)
		}
		if err != nil {
			return fmt.Errorf("mfa enroll: %w (the enrolment is pending: run authgate mfa enroll again)", err)
		}
		_, err = c.do(ctx, http.MethodPost, "/mfa/totp/verify/", map[string]string{"code": strings.TrimSpace(code)})
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == "invalid_totp" && p.interactive() && try < maxCodeTries {
			fmt.Fprintln(stderr, "authgate: that code is wrong or was used already; wait for the next one")
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	fmt.Fprintln(stdout, "TOTP is on.")
	fmt.Fprintln(stderr, "authgate: every earlier session of this account has ended (its refresh tokens are revoked);"+
		" log in again: authgate login --totp CODE")
	return nil
}

// printEnrollment shows what an authenticator app needs: the otpauth URI, its secret
// for typing in, and (withQR) the URI as a QR code drawn with half-block characters.
func printEnrollment(w io.Writer, ans enrollAnswer, withQR bool) error {
	if withQR {
		q, err := qrcode.New(ans.OTPAuthURL, qrcode.Medium)
		if err != nil {
			return fmt.Errorf("mfa enroll: QR code: %w", err)
		}
		if _, err := fmt.Fprintf(w, "Scan this with an authenticator app:\n\n%s\n", q.ToSmallString(false)); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "otpauth URI: %s\nsecret:      %s\n", ans.OTPAuthURL, ans.Secret)
	return err
}

// readLine reads one line of r without its line end; what names the source in errors.
func readLine(r *bufio.Reader, what string) (string, error) {
	s, err := r.ReadString('\n')
	if err != nil && (err != io.EOF || s == "") {
		if err == io.EOF {
			return "", fmt.Errorf("%s: nothing more to read", what)
		}
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if len(s) > maxSecret {
		return "", fmt.Errorf("%s: a line longer than %d bytes", what, maxSecret)
	}
	s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%s: an empty line", what)
	}
	return s, nil
}
