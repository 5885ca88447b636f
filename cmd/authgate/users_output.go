package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/authgate/authgate/gateway/user"
)

func userStatus(u user.User) string {
	if u.Disabled {
		return "disabled"
	}
	return "active"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// printUserTable prints users as an aligned table, one user a line.
func printUserTable(w io.Writer, users []user.User) {
	if len(users) == 0 {
		fmt.Fprintln(w, "no users")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tROLE\tORGANIZATION\tSTATUS\tMFA\tCREATED")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, cell(u.Email), cell(u.Role),
			cell(orDash(u.Organization)), userStatus(u), onOff(u.MFAEnabled), fmtTime(&u.CreatedAt, "-"))
	}
	_ = tw.Flush()
}

// printUser prints one user as "field: value" lines.
func printUser(w io.Writer, u user.User) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	rows := [][2]string{
		{"id", u.ID},
		{"email", u.Email},
		{"role", u.Role},
		{"organization", orDash(u.Organization)},
		{"teams", fmtList(u.Teams, "-")},
		{"status", userStatus(u)},
		{"mfa", onOff(u.MFAEnabled)},
		{"created at", fmtTime(&u.CreatedAt, "-")},
		{"updated at", fmtTime(&u.UpdatedAt, "-")},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], cell(r[1]))
	}
	return tw.Flush()
}
