package main

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// durationBuckets are the histogram upper bounds in seconds (the Prometheus
// client library's defaults, spelled out so the series never change with it).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// metrics holds the service's series in a registry of its own: only these
// four, without the client library's go_* and process_* collectors (the
// global default registry's), which would add series and per-scrape work.
type metrics struct {
	// inFlight is read directly when a drain times out, and by the gauge.
	inFlight atomic.Int64

	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	handler   http.Handler // serves the registry in the text exposition format
}

func newMetrics() *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests handled, by handler and status code.",
		}, []string{"handler", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time spent handling HTTP requests, by handler.",
			Buckets: durationBuckets,
		}, []string{"handler"}),
	}
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "http_requests_in_flight",
		Help: "HTTP requests currently being handled.",
	}, func() float64 { return float64(m.inFlight.Load()) })
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "build_info",
		Help:        "Build information; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	buildInfo.Set(1)

	reg := prometheus.NewRegistry()
	reg.MustRegister(m.requests, m.durations, inFlight, buildInfo)
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

func (m *metrics) observe(handler string, code int, d time.Duration) {
	m.requests.WithLabelValues(handler, strconv.Itoa(code)).Inc()
	m.durations.WithLabelValues(handler).Observe(d.Seconds())
}
