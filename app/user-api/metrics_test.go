package main

import (
	"io"
	"math"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// wantBuckets are the bounds the duration histogram has always had; written
// out, not taken from durationBuckets, so that a change to those fails here.
var wantBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// scrape GETs /metrics, with the Accept header given unless empty, and
// decodes the answer in the format its Content-Type names.
func scrape(t *testing.T, s *server, accept string) (*httptest.ResponseRecorder, map[string]*dto.MetricFamily) {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %q", rec.Code, rec.Body)
	}
	format := expfmt.ResponseFormat(rec.Header())
	if format == expfmt.FmtUnknown {
		t.Fatalf("GET /metrics: unknown Content-Type %q", rec.Header().Get("Content-Type"))
	}
	dec := expfmt.NewDecoder(strings.NewReader(rec.Body.String()), format)
	families := map[string]*dto.MetricFamily{}
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("decoding /metrics (%s): %v\n%s", format, err, rec.Body)
		}
		if families[mf.GetName()] != nil {
			t.Fatalf("family %s twice", mf.GetName())
		}
		families[mf.GetName()] = &mf
	}
	return rec, families
}

func labels(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// requestCounts maps "handler code" to http_requests_total.
func requestCounts(t *testing.T, families map[string]*dto.MetricFamily) map[string]float64 {
	t.Helper()
	counts := map[string]float64{}
	for _, m := range families["http_requests_total"].GetMetric() {
		l := labels(m)
		if len(l) != 2 || l["handler"] == "" || l["code"] == "" {
			t.Fatalf("http_requests_total with labels %v, want handler and code", l)
		}
		counts[l["handler"]+" "+l["code"]] = m.GetCounter().GetValue()
	}
	return counts
}

// durations maps the handler label to its http_request_duration_seconds,
// after checking the buckets' bounds and that their counts are cumulative.
func durations(t *testing.T, families map[string]*dto.MetricFamily) map[string]*dto.Histogram {
	t.Helper()
	hists := map[string]*dto.Histogram{}
	for _, m := range families["http_request_duration_seconds"].GetMetric() {
		l := labels(m)
		if len(l) != 1 || l["handler"] == "" {
			t.Fatalf("http_request_duration_seconds with labels %v, want handler", l)
		}
		h := m.GetHistogram()
		var bounds []float64
		var last uint64
		for _, b := range h.GetBucket() {
			if b.GetCumulativeCount() < last || b.GetCumulativeCount() > h.GetSampleCount() {
				t.Errorf("%s: bucket le=%g counts %d after %d, of %d", l["handler"], b.GetUpperBound(),
					b.GetCumulativeCount(), last, h.GetSampleCount())
			}
			last = b.GetCumulativeCount()
			if math.IsInf(b.GetUpperBound(), +1) { // written in the text format, implied in protobuf
				if last != h.GetSampleCount() {
					t.Errorf("%s: le=+Inf counts %d, count is %d", l["handler"], last, h.GetSampleCount())
				}
				continue
			}
			bounds = append(bounds, b.GetUpperBound())
		}
		if !reflect.DeepEqual(bounds, wantBuckets) {
			t.Errorf("%s: buckets %v, want %v", l["handler"], bounds, wantBuckets)
		}
		hists[l["handler"]] = h
	}
	return hists
}

// bucketCount is the cumulative count of h's bucket with upper bound le.
func bucketCount(t *testing.T, h *dto.Histogram, le float64) uint64 {
	t.Helper()
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	t.Fatalf("no bucket le=%g", le)
	return 0
}

// singleGauge is the value of the family name's only series, which must have the labels want.
func singleGauge(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	ms := families[name].GetMetric()
	if len(ms) != 1 || !reflect.DeepEqual(labels(ms[0]), want) {
		t.Fatalf("%s: %v, want one series labelled %v", name, ms, want)
	}
	return ms[0].GetGauge().GetValue()
}

func TestMetrics(t *testing.T) {
	const latency = 20 * time.Millisecond
	s := newServer(config{faultLatency: latency}, "h")
	do(s, "GET", "/")
	do(s, "GET", "/")
	do(s, "GET", "/nope")
	do(s, "GET", "/healthz")
	do(s, "POST", "/healthz")
	rec, families := scrape(t, s, "")
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}

	// Exactly the four families of the service, none of the client library's.
	names := []string{}
	for name := range families {
		names = append(names, name)
	}
	sort.Strings(names)
	if want := []string{"build_info", "http_request_duration_seconds", "http_requests_in_flight",
		"http_requests_total"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("families %v, want %v", names, want)
	}
	for name, want := range map[string]struct {
		typ  dto.MetricType
		help string
	}{
		"http_requests_total":           {dto.MetricType_COUNTER, "HTTP requests handled, by handler and status code."},
		"http_request_duration_seconds": {dto.MetricType_HISTOGRAM, "Time spent handling HTTP requests, by handler."},
		"http_requests_in_flight":       {dto.MetricType_GAUGE, "HTTP requests currently being handled."},
		"build_info":                    {dto.MetricType_GAUGE, "Build information; the value is always 1."},
	} {
		if mf := families[name]; mf.GetType() != want.typ || mf.GetHelp() != want.help {
			t.Errorf("%s: %v %q, want %v %q", name, mf.GetType(), mf.GetHelp(), want.typ, want.help)
		}
	}

	// The scrape itself is in flight, and counted only once it has finished.
	if got, want := requestCounts(t, families), map[string]float64{
		"root 200": 2, "other 404": 1, "healthz 200": 1, "healthz 405": 1,
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("http_requests_total %v, want %v", got, want)
	}
	hists := durations(t, families)
	for handler, want := range map[string]uint64{"root": 2, "other": 1, "healthz": 2} {
		if got := hists[handler].GetSampleCount(); got != want {
			t.Errorf("%s: duration count %d, want %d", handler, got, want)
		}
	}
	if len(hists) != 3 {
		t.Errorf("durations for %d handlers, want 3", len(hists))
	}
	root := hists["root"]
	// Both took at least 20ms.
	if n := bucketCount(t, root, 0.01); n != 0 {
		t.Errorf("root: le=0.01 counts %d, want 0", n)
	}
	if n := bucketCount(t, root, 10); n != 2 {
		t.Errorf("root: le=10 counts %d, want 2", n)
	}
	if sum := root.GetSampleSum(); sum < 2*latency.Seconds() {
		t.Errorf("root: duration sum %v, want >= %v", sum, 2*latency.Seconds())
	}
	if v := singleGauge(t, families, "http_requests_in_flight", map[string]string{}); v != 1 {
		t.Errorf("http_requests_in_flight %v, want 1 (the scrape)", v)
	}
	if v := singleGauge(t, families, "build_info", map[string]string{"version": version}); v != 1 {
		t.Errorf("build_info %v, want 1", v)
	}
	// The exposition's own lines, as scrapers and people read them.
	for _, line := range []string{
		"# TYPE http_requests_total counter",
		`http_request_duration_seconds_bucket{handler="root",le="0.005"} 0`,
		`http_request_duration_seconds_bucket{handler="root",le="+Inf"} 2`,
		`http_request_duration_seconds_count{handler="root"} 2`,
		"http_requests_in_flight 1",
		`build_info{version="` + version + `"} 1`,
	} {
		if !strings.Contains("\n"+rec.Body.String(), "\n"+line+"\n") {
			t.Errorf("metrics lack the line %q:\n%s", line, rec.Body)
		}
	}

	// The first scrape is counted once it has finished.
	_, families = scrape(t, s, "")
	if got := requestCounts(t, families)["metrics 200"]; got != 1 {
		t.Errorf("second scrape: metrics 200 counted %v, want 1", got)
	}
	if got := durations(t, families)["metrics"].GetSampleCount(); got != 1 {
		t.Errorf("second scrape: metrics duration count %d, want 1", got)
	}
}

// TestMetricsNoRequests: before any request the counters and histograms
// have no series, the gauges have theirs.
func TestMetricsNoRequests(t *testing.T) {
	_, families := scrape(t, newServer(config{}, "h"), "")
	if len(requestCounts(t, families)) != 0 || len(durations(t, families)) != 0 {
		t.Errorf("series before any request finished: %v", families)
	}
	if v := singleGauge(t, families, "build_info", map[string]string{"version": version}); v != 1 {
		t.Errorf("build_info %v, want 1", v)
	}
}

// TestMetricsProtobuf: a scraper asking for the protobuf format gets it, with
// the same series (the library's protobuf encoding is built from Debian's
// golang/protobuf 1.3 and google.golang.org/protobuf: this checks they fit).
func TestMetricsProtobuf(t *testing.T) {
	s := newServer(config{}, "h")
	do(s, "GET", "/")
	do(s, "GET", "/nope")
	rec, families := scrape(t, s, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	if f := expfmt.ResponseFormat(rec.Header()); f != expfmt.FmtProtoDelim {
		t.Fatalf("format %q, want protobuf", f)
	}
	if got, want := requestCounts(t, families), map[string]float64{"root 200": 1, "other 404": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("http_requests_total %v, want %v", got, want)
	}
	if got := durations(t, families)["root"].GetSampleCount(); got != 1 {
		t.Errorf("root: duration count %d, want 1", got)
	}
	if v := singleGauge(t, families, "http_requests_in_flight", map[string]string{}); v != 1 {
		t.Errorf("http_requests_in_flight %v, want 1", v)
	}
	if v := singleGauge(t, families, "build_info", map[string]string{"version": version}); v != 1 {
		t.Errorf("build_info %v, want 1", v)
	}
}
