package policy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestPathValue agrees with ServeMux's own r.PathValue for the patterns a team source
// may use.
func TestPathValue(t *testing.T) {
	tests := []struct{ pattern, path string }{
		{"GET /teams/{team}/sites/{$}", "/teams/acme/sites/"},
		{"GET /teams/{team}/sites/{id}/{$}", "/teams/acme/sites/7/"},
		{"/teams/{team}/", "/teams/acme/a/b/c"},
		{"GET example.com/t/{team}", "/t/x-1"},
		{"POST /{team}/x/{rest...}", "/a.b/x/y/z"},
	}
	for _, tt := range tests {
		mux := http.NewServeMux()
		var want string
		mux.HandleFunc(tt.pattern, func(w http.ResponseWriter, r *http.Request) { want = r.PathValue("team") })
		r := httptest.NewRequest("GET", "http://example.com"+tt.path, nil)
		if tt.pattern[:4] == "POST" {
			r.Method = "POST"
		}
		mux.ServeHTTP(httptest.NewRecorder(), r)
		got, ok := PathValue(tt.pattern, tt.path, "team")
		if !ok || got != want || want == "" {
			t.Errorf("PathValue(%q, %q) = %q, %v; ServeMux says %q", tt.pattern, tt.path, got, ok, want)
		}
	}
	if _, ok := PathValue("GET /teams/{id}/", "/teams/a/", "team"); ok {
		t.Error("a pattern without {team} has no team value")
	}
}
