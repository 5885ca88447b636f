// Package demoupstream is the small API `make run` puts behind the gateway, so a first
// curl has something to reach. It echoes what it received, identity headers included.
package demoupstream

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
)

// Handler answers GET /health with {"status":"ok"} and every other request with a JSON
// echo of its method, path, query and the X-Auth-*, X-Forwarded-* and X-Request-Id
// headers it arrived with.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"status": "ok", "service": "demo-upstream"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		headers := map[string]string{}
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if strings.HasPrefix(k, "X-Auth-") || strings.HasPrefix(k, "X-Forwarded-") || k == "X-Request-Id" {
				headers[k] = r.Header.Get(k)
			}
		}
		writeJSON(w, map[string]any{"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery, "headers": headers})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
