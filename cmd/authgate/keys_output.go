package main

import (
	"encoding/json"
	"fmt"
	"github.com/authgate/authgate/gateway/admin"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// timeLayout is how tables show times: UTC to the minute.
const timeLayout = "2006-01-02 15:04"

func fmtTime(t *time.Time, none string) string {
	if t == nil || t.IsZero() {
		return none
	}
	return t.UTC().Format(timeLayout)
}

func fmtList(s []string, none string) string {
	if len(s) == 0 {
		return none
	}
	return strings.Join(s, ",")
}

func fmtRateLimit(rl *admin.RateLimitJSON) string {
	if rl == nil {
		return "default"
	}
	per := rl.Per
	if per == "" {
		per = "1m"
	}
	return strconv.Itoa(rl.Requests) + "/" + per
}

func fmtExpiresIn(days int) string {
	if days == 0 {
		return "never"
	}
	return strconv.Itoa(days) + " days"
}

// printKeyTable prints keys as an aligned table, one key a line.
func printKeyTable(w io.Writer, o output, keys []admin.KeyView) error {
	rows := make([][]string, len(keys))
	for i, k := range keys {
		rows[i] = []string{k.ID, k.Name, k.Environment, k.Type, fmtTeam(k.TeamOf()),
			k.Status, fmtList(k.Hygiene, "-"), fmtList(k.Scopes, "-"), fmtTime(&k.CreatedAt, "-"), fmtTime(k.ExpiresAt, "never"),
			fmtTime(k.LastUsedAt, "never"), k.Start + "…"}
	}
	return o.table(w, []string{"ID", "NAME", "ENV", "TYPE", "TEAM", "STATUS", "HYGIENE", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "START"},
		rows, "no keys")
}

// fmtTeam shows a key's team: "*" is every team, "" none.
func fmtTeam(t string) string {
	switch t {
	case "*":
		return "* (all)"
	case "":
		return "-"
	}
	return t
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cell keeps a value on one table cell: no tabs or line breaks.
func cell(s string) string {
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

// printKey prints one key as "field: value" lines, then the plaintext if the answer
// has it (create, rotate).
func printKey(w io.Writer, k admin.KeyView) error {
	rows := [][2]string{
		{"id", k.ID},
		{"name", k.Name},
		{"description", orDash(k.Description)},
		{"type", k.Type},
		{"environment", k.Environment},
		{"team", fmtTeam(k.TeamOf())},
		{"status", k.Status},
		{"hygiene", fmtList(k.Hygiene, "-")},
		{"scopes", fmtList(k.Scopes, "(all of the owner's)")},
		{"allowed ips", fmtList(k.AllowedIPs, "any")},
		{"rate limit", fmtRateLimit(k.RateLimit)},
		{"created by", k.CreatedBy},
		{"minted by", orDash(k.MintedBy)},
		{"created at", fmtTime(&k.CreatedAt, "-")},
		{"expires in", fmtExpiresIn(k.ExpiresInDays)},
		{"expires at", fmtTime(k.ExpiresAt, "never")},
		{"last used at", fmtTime(k.LastUsedAt, "never")},
		{"revoked at", fmtTime(k.RevokedAt, "-")},
		{"start", k.Start + "…"},
	}
	if k.ReplacedBy != "" {
		rows = append(rows, [2]string{"replaced by", k.ReplacedBy}, [2]string{"ends at", fmtTime(k.HardExpiresAt, "-")})
	}
	if err := fieldLines(w, rows); err != nil {
		return err
	}
	if k.Secret != "" {
		_, err := fmt.Fprintf(w, "\nkey: %s\n\nThis is the only time the key is shown: store it now (a secret manager, a CI secret).\nThe gateway keeps only its hash and cannot show it again.\n", k.Secret)
		return err
	}
	return nil
}

// activityJSON is the answer of GET /api-keys/{id}/activity/.
type activityJSON struct {
	Recent []struct {
		Time     time.Time `json:"time"`
		Method   string    `json:"method"`
		Path     string    `json:"path"`
		Route    string    `json:"route"`
		Status   int       `json:"status"`
		ClientIP string    `json:"client_ip"`
	} `json:"recent"`
	Daily []struct {
		Date     string `json:"date"`
		Requests int64  `json:"requests"`
	} `json:"daily"`
}

// printActivity prints the daily counts (days with requests) and the recent requests.
func printActivity(w io.Writer, body []byte) error {
	var a activityJSON
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("keys activity: unexpected answer: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var total int64
	fmt.Fprintln(tw, "DATE\tREQUESTS")
	for _, d := range a.Daily {
		total += d.Requests
		if d.Requests > 0 {
			fmt.Fprintf(tw, "%s\t%d\n", d.Date, d.Requests)
		}
	}
	fmt.Fprintf(tw, "total\t%d\n", total)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(a.Recent) == 0 {
		_, err := fmt.Fprintln(w, "no recent requests")
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tMETHOD\tPATH\tROUTE\tSTATUS\tCLIENT IP")
	for _, e := range a.Recent {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Method, cell(e.Path),
			cell(e.Route), e.Status, e.ClientIP)
	}
	return tw.Flush()
}
