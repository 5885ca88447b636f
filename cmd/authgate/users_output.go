package main

import (
	"io"

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
func printUserTable(w io.Writer, o output, users []user.User) error {
	rows := make([][]string, len(users))
	for i, u := range users {
		rows[i] = []string{u.ID, u.Email, u.Role, orDash(u.Organization), userStatus(u), onOff(u.MFAEnabled), fmtTime(&u.CreatedAt, "-")}
	}
	return o.table(w, []string{"ID", "EMAIL", "ROLE", "ORGANIZATION", "STATUS", "MFA", "CREATED"}, rows, "no users")
}

// printUser prints one user as "field: value" lines.
func printUser(w io.Writer, u user.User) error {
	return fieldLines(w, [][2]string{
		{"id", u.ID},
		{"email", u.Email},
		{"role", u.Role},
		{"organization", orDash(u.Organization)},
		{"teams", fmtList(u.Teams, "-")},
		{"status", userStatus(u)},
		{"mfa", onOff(u.MFAEnabled)},
		{"created at", fmtTime(&u.CreatedAt, "-")},
		{"updated at", fmtTime(&u.UpdatedAt, "-")},
	})
}
