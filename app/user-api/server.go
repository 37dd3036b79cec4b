package main

import (
	"encoding/json"
	"math"
	"net/http"
	"sync/atomic"
	"time"
)

type server struct {
	cfg      config
	host     string
	draining atomic.Bool // set on SIGTERM so load balancers stop sending traffic
	metrics  *metrics
	roots    atomic.Uint64 // GET / requests served, for the error-rate fault
}

func newServer(cfg config, host string) *server {
	return &server{cfg: cfg, host: host, metrics: newMetrics()}
}

// ServeHTTP routes on the exact path and records metrics for every request.
// The handler label is one of a fixed set so unknown paths cannot blow up
// the number of series.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.metrics.inFlight.Add(1)
	defer s.metrics.inFlight.Add(-1)
	w.Header().Set("X-App-Version", version)

	handler, serve := "other", http.NotFound
	switch r.URL.Path {
	case "/":
		handler, serve = "root", s.root
	case "/healthz":
		handler, serve = "healthz", s.healthz
	case "/metrics":
		handler, serve = "metrics", s.metrics.handler.ServeHTTP
	}
	if handler != "other" && r.Method != http.MethodGet && r.Method != http.MethodHead {
		serve = methodNotAllowed
	}
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	serve(rec, r)
	s.metrics.observe(handler, rec.code, time.Since(start))
}

func (s *server) root(w http.ResponseWriter, r *http.Request) {
	if s.cfg.faultLatency > 0 {
		t := time.NewTimer(s.cfg.faultLatency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return // client is gone, nobody to answer
		}
	}
	if injectedError(s.roots.Add(1), s.cfg.faultErrorRate) {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "injected fault"})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Service string `json:"service"`
		Version string `json:"version"`
		Host    string `json:"host"`
	}{"user-api", version, s.host})
}

// injectedError says whether the n-th GET / (from 1) fails under the error-rate fault: spread evenly, not drawn at
// random, so exactly that share of requests fails and the first ones - a deploy's smoke request - never do unless
// the rate is 1. A random draw failed a 5% version's single smoke request one time in twenty, so a test could not
// tell which check would stop it.
func injectedError(n uint64, rate float64) bool {
	return math.Floor(float64(n)*rate) > math.Floor(float64(n-1)*rate)
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.draining.Load():
		http.Error(w, "draining", http.StatusServiceUnavailable)
	case s.cfg.faultHealth:
		http.Error(w, "unhealthy (injected fault)", http.StatusServiceUnavailable)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	}
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

func writeJSON(w http.ResponseWriter, code int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// statusRecorder remembers the status code for the metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}
