// Command authgate is the gateway binary: serve, config validate, keys, users, login,
// version.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/authgate/authgate/cmd/authgate/internal/earlyhup"
)

func main() {
	ctx := context.Background()
	// earlyhup subscribed `serve` to SIGHUP during initialisation, before the configuration
	// is read: a reload signal arriving while the gateway starts would otherwise kill the
	// process. serve reloads once for it as soon as it can.
	if hup := earlyhup.Take(); hup != nil {
		ctx = withHangup(ctx, hup)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runIO(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		stop()
		var es exitStatus
		if errors.As(err, &es) {
			os.Exit(int(es)) // the command said all it had to say
		}
		fmt.Fprintln(os.Stderr, "authgate:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// hangupKey carries serve's SIGHUP channel in the context: the process subscribes to
// SIGHUP before anything else (earlyhup), and serve reads that channel once it can reload.
type hangupKey struct{}

// withHangup returns ctx carrying hup, a channel already subscribed to SIGHUP.
func withHangup(ctx context.Context, hup <-chan os.Signal) context.Context {
	return context.WithValue(ctx, hangupKey{}, hup)
}

// hangupFrom returns the SIGHUP channel subscribed at start, or nil.
func hangupFrom(ctx context.Context) <-chan os.Signal {
	hup, _ := ctx.Value(hangupKey{}).(<-chan os.Signal)
	return hup
}

const usage = `usage: authgate <command> [flags]

commands:
  serve [--config gateway.yaml] [--demo-upstream 127.0.0.1:9000]
                           run the gateway (without --config: the embedded default)
  config validate --config gateway.yaml
                           check a configuration file; print every problem
  keys create|list|show|edit|refresh|rotate|revoke|activity ... [-o table|json|yaml] [-q]
                           manage API keys through the management API (--addr, --token)
                           or directly on the store (--config gateway.yaml);
                           see authgate keys help
  keys generate [--env live|test] [--config F | --prefix sk]
                           print a new well-formed API key (prefix: api_keys.prefix
                           of --config or $AUTHGATE_CONFIG); touches nothing
  policy explain [--config F] "METHOD /path" [--scopes a,b] [--role r] [--team t]
                           whether the route policy lets such a request through, and
                           why (exit 0 allow, 1 deny)
  users create|list|show|set-role|disable|enable|delete|reset-mfa ... [-o json|yaml] [-q]
                           manage users (admins only), through the API or --config;
                           see authgate users help
  teams create|list|show|rename|delete|add-member|remove-member ... [-o json|yaml] [-q]
                           manage teams and their members (admins), through the API or
                           --config; see authgate teams help
  login --email E [--addr URL] [--password-stdin] [--totp CODE]
                           log in to the built-in issuer; save the access and refresh
                           tokens for the remote commands
  logout                   end the saved login session and forget its tokens
  mfa enroll [--password-stdin]
                           turn on TOTP for the logged-in account: shows the otpauth URI
                           and a QR code, then confirms the app's first code
  token set <credential>   save the credential remote commands send (ends a saved login)
  token remove             delete the saved credential
  version                  print the version, the commit and the build date
`

// run executes one command with an empty standard input (no terminal): what tests of
// commands that never read it use.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runIO(ctx, args, getenv, strings.NewReader(""), stdout, stderr)
}

// runIO executes one command. It takes the process's resources as arguments so tests can
// call it; stdin is read by login and users create (passwords), and prompted on when it
// is a terminal.
func runIO(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command")
	}
	switch args[0] {
	case "serve":
		return serveCmd(ctx, args[1:], getenv, stdout, stderr)
	case "config":
		if len(args) < 2 || args[1] != "validate" {
			fmt.Fprint(stderr, usage)
			return fmt.Errorf("unknown config command")
		}
		return validateCmd(args[2:], getenv, stdout, stderr)
	case "keys":
		return keysCmd(ctx, args[1:], getenv, stdout, stderr)
	case "policy":
		return policyCmd(args[1:], getenv, stdout, stderr)
	case "token":
		return tokenCmd(ctx, args[1:], getenv, stdout, stderr)
	case "teams":
		return teamsCmd(ctx, args[1:], getenv, stdout, stderr)
	case "users":
		return usersCmd(ctx, args[1:], getenv, newPrompter(stdin, stderr), stdout, stderr)
	case "login":
		return loginCmd(ctx, args[1:], getenv, newPrompter(stdin, stderr), stdout, stderr)
	case "logout":
		return logoutCmd(ctx, args[1:], getenv, stdout, stderr)
	case "mfa":
		return mfaCmd(ctx, args[1:], getenv, newPrompter(stdin, stderr), stdout, stderr)
	case "version", "--version":
		_, err := fmt.Fprint(stdout, versionLine())
		return err
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
