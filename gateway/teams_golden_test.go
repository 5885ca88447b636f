package gateway_test

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestGatewayFollowsTeamsGolden replays policy/testdata/teams.golden, the team dimension
// of the golden policy table, against a real gateway serving policy/testdata/teams.yaml,
// over raw TCP so no client cleans the path. Each credential column is an API key with
// those scopes made for that team (a personal key of team-a or team-b, an admin key of
// all teams, a personal key of none). The gateway must forward exactly the allowed
// requests, as the cleaned path and with X-Auth-Team, and refuse the others with the
// same status and code.
func TestGatewayFollowsTeamsGolden(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "policy", "testdata", "teams.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, api, admin, addr := goldenGateway(t, raw)
	post := func(path, body string) answer {
		return rawRequest(t, addr, requestText("POST", path, "gw.test", "X-API-Key: "+admin,
			"Content-Type: application/json", "Content-Length: "+strconv.Itoa(len(body)))+body)
	}
	for _, team := range []string{"team-a", "team-b"} {
		if a := post("/api/auth/teams/", `{"id":"`+team+`","name":"`+team+`"}`); a.status != http.StatusCreated {
			t.Fatalf("create team %s: %d %s", team, a.status, a.body)
		}
	}
	keys := map[string]string{}
	keyFor := func(cred string) string {
		if k, ok := keys[cred]; ok {
			return k
		}
		s, team, _ := strings.Cut(cred, "|")
		scopes := []string{}
		if s != "-" {
			scopes = strings.Split(s, ",")
		}
		body := strings.TrimSuffix(keyBody(scopes), "}")
		switch team {
		case "*":
			body += `,"type":"admin","team":"*"}`
		case "-":
			body += `}` // the bootstrap key acts for every team: a personal key it makes without team has none
		default:
			body += `,"team":"` + team + `"}`
		}
		a := post("/api/auth/api-keys/", body)
		if a.status != http.StatusCreated {
			t.Fatalf("create key %s: %d %s", cred, a.status, a.body)
		}
		k := decodeJSON[struct {
			Key  string `json:"key"`
			Team string `json:"team"`
		}](t, a)
		if want := strings.TrimPrefix(team, "-"); k.Team != want {
			t.Fatalf("key %s: team %q, want %q", cred, k.Team, want)
		}
		keys[cred] = k.Key
		return k.Key
	}

	f, err := os.Open(filepath.Join("..", "policy", "testdata", "teams.golden"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	lines := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		lines++
		method, path, cred, verdict := fields[0], fields[1], fields[2], fields[4]
		before := api.count()
		a := rawRequest(t, addr, requestText(method, path, "gw.test", "X-API-Key: "+keyFor(cred), "X-Auth-Team: forged"))
		forwarded := api.count() - before
		switch verdict {
		case "ALLOW":
			clean, team := fields[len(fields)-2], fields[len(fields)-1]
			if a.status != http.StatusOK || forwarded != 1 {
				t.Errorf("%s: status %d, forwarded %d; want 200 forwarded (%s)", sc.Text(), a.status, forwarded, a.body)
				continue
			}
			got := api.requests()[before]
			if p, _, _ := strings.Cut(got.RequestURI, "?"); p != clean {
				t.Errorf("%s: forwarded as %s, want %s", sc.Text(), got.RequestURI, clean)
			}
			want := []string{team}
			if team == "-" {
				want = nil
			}
			if v := got.Header.Values("X-Auth-Team"); strings.Join(v, ",") != strings.Join(want, ",") {
				t.Errorf("%s: upstream X-Auth-Team %q, want %q", sc.Text(), v, want)
			}
		case "DENY":
			status, _ := strconv.Atoi(fields[5])
			code := fields[6]
			if forwarded != 0 || a.status != status || !strings.Contains(string(a.body), `"error":"`+code+`"`) {
				t.Errorf("%s: status %d, forwarded %d, body %s", sc.Text(), a.status, forwarded, a.body)
			}
		default:
			t.Fatalf("unknown verdict in %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines < 300 {
		t.Fatalf("replayed %d golden lines, want every one (over 300)", lines)
	}
}
