package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func do(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestRoot(t *testing.T) {
	rec := do(newServer(config{}, "test-host"), "GET", "/")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"service": "user-api", "version": version, "host": "test-host"}
	if len(body) != len(want) {
		t.Errorf("body %v, want %v", body, want)
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%q] = %q, want %q", k, body[k], v)
		}
	}
}

func TestVersionHeaderOnEveryResponse(t *testing.T) {
	s := newServer(config{}, "h")
	for _, path := range []string{"/", "/healthz", "/metrics", "/nope"} {
		if got := do(s, "GET", path).Header().Get("X-App-Version"); got != version {
			t.Errorf("%s: X-App-Version %q, want %q", path, got, version)
		}
	}
}

func TestUnknownPathAndMethod(t *testing.T) {
	s := newServer(config{}, "h")
	for _, path := range []string{"/nope", "/healthz/", "/index.html"} {
		if rec := do(s, "GET", path); rec.Code != 404 {
			t.Errorf("GET %s: %d, want 404", path, rec.Code)
		}
	}
	rec := do(s, "POST", "/")
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d Allow=%q, want 405", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestHealthz(t *testing.T) {
	if rec := do(newServer(config{}, "h"), "GET", "/healthz"); rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Errorf("ready: %d %q, want 200 ok", rec.Code, rec.Body)
	}
	if rec := do(newServer(config{faultHealth: true}, "h"), "GET", "/healthz"); rec.Code != 503 {
		t.Errorf("fault-health: %d, want 503", rec.Code)
	}
	s := newServer(config{}, "h")
	s.draining.Store(true)
	if rec := do(s, "GET", "/healthz"); rec.Code != 503 {
		t.Errorf("draining: %d, want 503", rec.Code)
	}
}

func TestErrorRateFault(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		code int
	}{{1, 500}, {0, 200}} {
		s := newServer(config{faultErrorRate: tc.rate}, "h")
		for i := 0; i < 50; i++ {
			rec := do(s, "GET", "/")
			if rec.Code != tc.code {
				t.Fatalf("rate %v: got %d, want %d", tc.rate, rec.Code, tc.code)
			}
			if tc.code == 500 && !strings.Contains(rec.Body.String(), `"error"`) {
				t.Fatalf("rate %v: body %q is not a JSON error", tc.rate, rec.Body)
			}
		}
	}
}

func TestMetrics(t *testing.T) {
	const latency = 20 * time.Millisecond
	s := newServer(config{faultLatency: latency}, "h")
	do(s, "GET", "/")
	do(s, "GET", "/")
	do(s, "GET", "/nope")
	do(s, "GET", "/healthz")
	rec := do(s, "GET", "/metrics")
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		lines[l] = true
	}
	for _, want := range []string{
		"# TYPE http_requests_total counter",
		`http_requests_total{handler="root",code="200"} 2`,
		`http_requests_total{handler="other",code="404"} 1`,
		`http_requests_total{handler="healthz",code="200"} 1`,
		"# TYPE http_request_duration_seconds histogram",
		`http_request_duration_seconds_bucket{handler="root",le="0.01"} 0`, // both took >= 20ms
		`http_request_duration_seconds_bucket{handler="root",le="10"} 2`,
		`http_request_duration_seconds_bucket{handler="root",le="+Inf"} 2`,
		`http_request_duration_seconds_count{handler="root"} 2`,
		"# TYPE http_requests_in_flight gauge",
		"http_requests_in_flight 1", // the scrape itself
		"# TYPE build_info gauge",
		`build_info{version="` + version + `"} 1`,
	} {
		if !lines[want] {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, name := range []string{"http_requests_total", "http_request_duration_seconds", "http_requests_in_flight", "build_info"} {
		if !strings.Contains(rec.Body.String(), "# HELP "+name+" ") {
			t.Errorf("metrics lack HELP for %s", name)
		}
	}
	_, rest, ok := strings.Cut(rec.Body.String(), `http_request_duration_seconds_sum{handler="root"} `)
	sum, err := strconv.ParseFloat(strings.SplitN(rest, "\n", 2)[0], 64)
	if !ok || err != nil || sum < 2*latency.Seconds() {
		t.Errorf("root duration sum %v (found %v, %v), want >= %v", sum, ok, err, 2*latency.Seconds())
	}

	// The first scrape is counted once it has finished.
	if body := do(s, "GET", "/metrics").Body.String(); !strings.Contains(body, `http_requests_total{handler="metrics",code="200"} 1`+"\n") {
		t.Errorf("second scrape does not count the first:\n%s", body)
	}
}
