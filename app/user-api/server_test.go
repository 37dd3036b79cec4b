package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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

func TestErrorRateFaultIsExactAndSparesTheFirstRequests(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		first int // the first request answered 500
	}{{0.05, 20}, {0.02, 50}, {0.03, 34}, {0.5, 2}} {
		s := newServer(config{faultErrorRate: tc.rate}, "h")
		failed, first := 0, 0
		for i := 1; i <= 1000; i++ {
			if do(s, "GET", "/").Code == 500 {
				failed++
				if first == 0 {
					first = i
				}
			}
		}
		if want := int(tc.rate * 1000); failed != want || first != tc.first {
			t.Errorf("rate %v: %d of 1000 failed, the first at %d; want %d, the first at %d", tc.rate, failed, first, want, tc.first)
		}
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
