package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/user"
)

const usersUsage = `usage: authgate users <command> [flags]

commands (admins only):
  create --email E --role R [--org O] [--password-stdin]
                        the password is asked twice on the terminal, or read from
                        standard input with --password-stdin
  list [--search S] [--role R]
  show USER             USER is a user ID (usr_…) or an email; "me" is the caller
  set-role USER ROLE    one of policy.roles
  disable USER | enable USER
                        a disabled user cannot log in; their tokens, refresh tokens and
                        personal keys stop working at once
  delete USER
  reset-mfa USER        remove the user's TOTP (a lost phone); they may enrol again

connection:
  --addr URL      management API (default $AUTHGATE_ADDR, else the saved login's,
                  else http://localhost:8080)
  --prefix PATH   auth_api.prefix (default /api/auth)
  --token T       credential (default $AUTHGATE_TOKEN, else the one saved by
                  'authgate login' or 'authgate token set')
  --config FILE   instead of --addr: work directly on the Redis store of FILE (gateway
                  down, first admin)
  --cacert FILE   trust this CA certificate (PEM) for the gateway's TLS (default $AUTHGATE_CACERT)

output: -o table|json|yaml (--json: -o json), -q/--quiet (IDs only), --no-headers
`

// userBackend is where the users commands act: the management API (remoteUsers) or the
// configured store itself (directUsers). Every method but remove returns the API's JSON.
type userBackend interface {
	create(ctx context.Context, f admin.UserFields) ([]byte, error)
	list(ctx context.Context, q url.Values) ([]byte, error)
	get(ctx context.Context, id string) ([]byte, error)
	edit(ctx context.Context, id string, f admin.UserFields) ([]byte, error)
	remove(ctx context.Context, id string) error
	close() error
}

// userTarget reports whether cmd acts on one user, and the words its output starts with.
func userTarget(cmd string) (done string, ok bool) {
	switch cmd {
	case "show", "delete":
		return "", true
	case "set-role":
		return "changed the role of", true
	case "disable":
		return "disabled", true
	case "enable":
		return "enabled", true
	case "reset-mfa":
		return "removed the TOTP of", true
	}
	return "", false
}

func usersCmd(ctx context.Context, args []string, getenv func(string) string, p *prompter, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usersUsage)
		return errors.New("users: no command")
	}
	cmd, args := args[0], args[1:]
	done, targeted := userTarget(cmd)
	switch {
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, usersUsage)
		return nil
	case cmd != "create" && cmd != "list" && !targeted:
		fmt.Fprint(stderr, usersUsage)
		return fmt.Errorf("users: unknown command %q", cmd)
	}
	fl := flag.NewFlagSet("users "+cmd, flag.ContinueOnError)
	fl.SetOutput(stderr)
	var kf keysFlags
	kf.register(fl)
	var (
		email, role, org, search string
		fromStdin                bool
	)
	switch cmd {
	case "create":
		fl.StringVar(&email, "email", "", "the user's email (required)")
		fl.StringVar(&role, "role", "", "one of policy.roles (required)")
		fl.StringVar(&org, "org", "", "organisation")
		fl.BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
	case "list":
		fl.StringVar(&search, "search", "", "users whose email contains this")
		fl.StringVar(&role, "role", "", "users with this role")
	}
	pos, err := parseInterleaved(fl, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the flag set has printed its usage
	}
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := kf.out.check("users " + cmd); err != nil {
		return err
	}

	wantArgs := 0 // create, list
	switch {
	case cmd == "set-role":
		wantArgs = 2
	case targeted:
		wantArgs = 1
	}
	if len(pos) != wantArgs {
		switch wantArgs {
		case 0:
			return fmt.Errorf("users %s: unexpected argument %q", cmd, pos[0])
		case 1:
			return fmt.Errorf("users %s: want one user (an ID or an email), e.g. authgate users %s alice@example.com", cmd, cmd)
		default:
			return fmt.Errorf("users %s: want a user and a role, e.g. authgate users set-role alice@example.com viewer", cmd)
		}
	}

	var fields admin.UserFields
	switch cmd {
	case "create":
		if email == "" || role == "" {
			return errors.New("users create: --email and --role are required")
		}
		fields.Email, fields.Role = &email, &role
		if set["org"] {
			fields.Organization = &org
		}
		pw, err := newUserPassword(p, fromStdin)
		if err != nil {
			return fmt.Errorf("users create: %w", err)
		}
		fields.Password = &pw
	case "set-role":
		fields.Role = &pos[1]
	case "disable", "enable":
		disabled := cmd == "disable"
		fields.Disabled = &disabled
	case "reset-mfa":
		off := false
		fields.MFAEnabled = &off
	}

	b, err := openUserBackend(ctx, kf, set, getenv, stderr)
	if err != nil {
		return err
	}
	defer b.close()

	switch cmd {
	case "create":
		body, err := b.create(ctx, fields)
		if err != nil {
			return err
		}
		return printUserAnswer(stdout, kf.out, "created", body)
	case "list":
		q := url.Values{}
		if search != "" {
			q.Set("q", search)
		}
		if role != "" {
			q.Set("role", role)
		}
		body, err := b.list(ctx, q)
		if err != nil {
			return err
		}
		if kf.out.structured() {
			return kf.out.document(stdout, body)
		}
		var l struct {
			Users []user.User `json:"users"`
		}
		if err := json.Unmarshal(body, &l); err != nil {
			return fmt.Errorf("users list: unexpected answer: %w", err)
		}
		return printUserTable(stdout, kf.out, l.Users)
	}

	u, body, err := resolveUser(ctx, b, pos[0])
	if err != nil {
		return err
	}
	switch cmd {
	case "show":
		return printUserAnswer(stdout, kf.out, "", body)
	case "delete":
		if err := b.remove(ctx, u.ID); err != nil {
			return err
		}
		switch {
		case kf.out.structured():
			gone, _ := json.Marshal(map[string]any{"id": u.ID, "deleted": true}) // cannot fail
			return kf.out.document(stdout, gone)
		case kf.out.quiet:
			_, err := fmt.Fprintln(stdout, u.ID)
			return err
		}
		_, err := fmt.Fprintf(stdout, "deleted %s (%s)\n", u.ID, u.Email)
		return err
	}
	body, err = b.edit(ctx, u.ID, fields)
	if err != nil {
		return err
	}
	return printUserAnswer(stdout, kf.out, done, body)
}

// newUserPassword is the password of users create: piped in, else asked twice.
func newUserPassword(p *prompter, fromStdin bool) (string, error) {
	if fromStdin {
		return p.stdinSecret()
	}
	return p.newPassword()
}

// resolveUser finds the user named by arg: "me" (remote only), a user ID, or an email
// (looked up by list, matched exactly). It returns the user and its JSON.
func resolveUser(ctx context.Context, b userBackend, arg string) (user.User, []byte, error) {
	var u user.User
	if arg == "me" || user.IsID(arg) {
		body, err := b.get(ctx, arg)
		if err != nil {
			return u, nil, err
		}
		if err := json.Unmarshal(body, &u); err != nil {
			return u, nil, fmt.Errorf("users: unexpected answer: %w", err)
		}
		return u, body, nil
	}
	email := user.NormalizeEmail(arg)
	if !strings.Contains(email, "@") {
		return u, nil, fmt.Errorf("users: %q is neither a user ID (usr_…) nor an email", arg)
	}
	body, err := b.list(ctx, url.Values{"q": {email}})
	if err != nil {
		return u, nil, err
	}
	var l struct {
		Users []json.RawMessage `json:"users"`
	}
	if err := json.Unmarshal(body, &l); err != nil {
		return u, nil, fmt.Errorf("users: unexpected answer: %w", err)
	}
	for _, raw := range l.Users {
		if err := json.Unmarshal(raw, &u); err != nil {
			return user.User{}, nil, fmt.Errorf("users: unexpected answer: %w", err)
		}
		if u.Email == email {
			return u, raw, nil
		}
	}
	return user.User{}, nil, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no user with email " + email}
}

// printUserAnswer prints a user answer: as a document with -o json|yaml, the ID with
// --quiet, else "<done> ID" (unless done is "") and the user's fields.
func printUserAnswer(w io.Writer, o output, done string, body []byte) error {
	if o.structured() {
		return o.document(w, body)
	}
	var u user.User
	if err := json.Unmarshal(body, &u); err != nil {
		return fmt.Errorf("users: unexpected answer: %w", err)
	}
	if o.quiet {
		_, err := fmt.Fprintln(w, u.ID)
		return err
	}
	if done != "" {
		fmt.Fprintf(w, "%s %s\n\n", done, u.ID)
	}
	return printUser(w, u)
}
