package gateway

import (
	"net/http"
	"net/http/pprof" // its init also registers on http.DefaultServeMux, which the gateway never serves
)

// handlePprof adds net/http/pprof's handlers under /debug/pprof/ to the ops mux. They
// answer only while ops_pprof is true in the configuration being served (so a reload turns
// profiling on or off), and 404 otherwise. They are never on the main listener.
func (s *Server) handlePprof(mux *http.ServeMux) {
	on := func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !s.Config().OpsPprof {
				http.NotFound(w, r)
				return
			}
			h(w, r)
		})
	}
	mux.Handle("GET /debug/pprof/", on(pprof.Index)) // also every named profile: heap, goroutine, block, ...
	mux.Handle("GET /debug/pprof/cmdline", on(pprof.Cmdline))
	mux.Handle("GET /debug/pprof/profile", on(pprof.Profile))
	mux.Handle("GET /debug/pprof/symbol", on(pprof.Symbol))
	mux.Handle("POST /debug/pprof/symbol", on(pprof.Symbol))
	mux.Handle("GET /debug/pprof/trace", on(pprof.Trace))
}
