package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// durationBuckets are the histogram upper bounds in seconds (the Prometheus
// client library defaults).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type requestKey struct {
	handler string
	code    int
}

type histogram struct {
	buckets []uint64 // cumulative: buckets[i] counts observations <= durationBuckets[i]
	sum     float64
	count   uint64
}

// metrics is a hand-written Prometheus registry for the few series we export.
type metrics struct {
	inFlight atomic.Int64

	mu        sync.Mutex
	requests  map[requestKey]uint64
	durations map[string]*histogram // by handler
}

func newMetrics() *metrics {
	return &metrics{requests: map[requestKey]uint64{}, durations: map[string]*histogram{}}
}

func (m *metrics) observe(handler string, code int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[requestKey{handler, code}]++
	h := m.durations[handler]
	if h == nil {
		h = &histogram{buckets: make([]uint64, len(durationBuckets))}
		m.durations[handler] = h
	}
	s := d.Seconds()
	for i, le := range durationBuckets {
		if s <= le {
			h.buckets[i]++
		}
	}
	h.sum += s
	h.count++
}

// write renders all series in the Prometheus text exposition format, sorted
// so the output is stable.
func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()

	keys := make([]requestKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].handler != keys[j].handler {
			return keys[i].handler < keys[j].handler
		}
		return keys[i].code < keys[j].code
	})
	fmt.Fprintln(w, "# HELP http_requests_total HTTP requests handled, by handler and status code.")
	fmt.Fprintln(w, "# TYPE http_requests_total counter")
	for _, k := range keys {
		fmt.Fprintf(w, "http_requests_total{handler=%q,code=\"%d\"} %d\n", k.handler, k.code, m.requests[k])
	}

	handlers := make([]string, 0, len(m.durations))
	for h := range m.durations {
		handlers = append(handlers, h)
	}
	sort.Strings(handlers)
	fmt.Fprintln(w, "# HELP http_request_duration_seconds Time spent handling HTTP requests, by handler.")
	fmt.Fprintln(w, "# TYPE http_request_duration_seconds histogram")
	for _, name := range handlers {
		h := m.durations[name]
		for i, le := range durationBuckets {
			fmt.Fprintf(w, "http_request_duration_seconds_bucket{handler=%q,le=%q} %d\n", name, formatFloat(le), h.buckets[i])
		}
		fmt.Fprintf(w, "http_request_duration_seconds_bucket{handler=%q,le=\"+Inf\"} %d\n", name, h.count)
		fmt.Fprintf(w, "http_request_duration_seconds_sum{handler=%q} %s\n", name, formatFloat(h.sum))
		fmt.Fprintf(w, "http_request_duration_seconds_count{handler=%q} %d\n", name, h.count)
	}

	fmt.Fprintln(w, "# HELP http_requests_in_flight HTTP requests currently being handled.")
	fmt.Fprintln(w, "# TYPE http_requests_in_flight gauge")
	fmt.Fprintf(w, "http_requests_in_flight %d\n", m.inFlight.Load())

	fmt.Fprintln(w, "# HELP build_info Build information; the value is always 1.")
	fmt.Fprintln(w, "# TYPE build_info gauge")
	fmt.Fprintf(w, "build_info{version=\"%s\"} 1\n", labelEscaper.Replace(version))
}

// labelEscaper applies the exposition format's escaping to a label value
// that comes from outside (the build-time version); handler names are fixed.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
