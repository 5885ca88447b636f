package nginxtest

import (
	"net/http"
	"reflect"
	"testing"
)

const page = "# Title\n\n```nginx\ntop\n```\n\n## nginx\n\ntext\n\n```nginx\nlocation / {}\n# not a heading\n```\n\n```yaml\na: 1\n```\n\n### sub\n\n```nginx\nsub\n```\n\n## Traefik\n\n```nginx\nother\n```\n"

func TestSectionAndBlocks(t *testing.T) {
	got := FencedBlocks(Section(page, "## nginx"), "nginx")
	if want := []string{"location / {}\n# not a heading\n", "sub\n"}; !reflect.DeepEqual(got, want) {
		t.Errorf("nginx blocks = %q, want %q", got, want)
	}
	if got := FencedBlocks(Section(page, "## nginx"), "yaml"); !reflect.DeepEqual(got, []string{"a: 1\n"}) {
		t.Errorf("yaml blocks = %q", got)
	}
	if got := FencedBlocks(Section(page, "## Traefik"), "nginx"); !reflect.DeepEqual(got, []string{"other\n"}) {
		t.Errorf("Traefik section blocks = %q", got)
	}
	if Section(page, "## Envoy") != "" {
		t.Errorf("a missing heading has a section")
	}
}

// TestStart: the configuration Start writes runs, and nginx answers on the address.
func TestStart(t *testing.T) {
	addr := Start(t, "        location / { return 204; }\n")
	c := &http.Client{Timeout: readyTimeout}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("nginx answered %d, want 204", resp.StatusCode)
	}
}
