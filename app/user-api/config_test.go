package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigDefaults(t *testing.T) {
	got, err := parseConfig(nil, envMap(nil), io.Discard)
	want := config{listen: ":8000", drainTimeout: 20 * time.Second}
	if err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

func TestConfigEnvFallback(t *testing.T) {
	got, err := parseConfig(nil, envMap(map[string]string{
		"USER_API_LISTEN":           "127.0.0.1:9000",
		"USER_API_DRAIN_TIMEOUT":    "5s",
		"USER_API_FAULT_ERROR_RATE": "0.25",
		"USER_API_FAULT_LATENCY":    "150ms",
		"USER_API_FAULT_HEALTH":     "true",
	}), io.Discard)
	want := config{listen: "127.0.0.1:9000", drainTimeout: 5 * time.Second,
		faultErrorRate: 0.25, faultLatency: 150 * time.Millisecond, faultHealth: true}
	if err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

func TestConfigFlagWinsOverEnv(t *testing.T) {
	args := []string{"-listen", ":9001", "-drain-timeout=1s", "-fault-error-rate=1",
		"-fault-latency=2s", "-fault-health=false"}
	got, err := parseConfig(args, envMap(map[string]string{
		"USER_API_LISTEN":           ":9000",
		"USER_API_DRAIN_TIMEOUT":    "5s",
		"USER_API_FAULT_ERROR_RATE": "0.5",
		"USER_API_FAULT_LATENCY":    "not-a-duration", // ignored: the flag is given
		"USER_API_FAULT_HEALTH":     "true",
	}), io.Discard)
	want := config{listen: ":9001", drainTimeout: time.Second, faultErrorRate: 1, faultLatency: 2 * time.Second}
	if err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{env: map[string]string{"USER_API_FAULT_ERROR_RATE": "1.5"}, want: []string{"USER_API_FAULT_ERROR_RATE", "1.5"}},
		{env: map[string]string{"USER_API_FAULT_ERROR_RATE": "NaN"}, want: []string{"USER_API_FAULT_ERROR_RATE", "NaN"}},
		{env: map[string]string{"USER_API_FAULT_ERROR_RATE": "lots"}, want: []string{"USER_API_FAULT_ERROR_RATE", "lots"}},
		{args: []string{"-fault-error-rate=-0.1"}, want: []string{"-fault-error-rate", "-0.1"}},
		{env: map[string]string{"USER_API_FAULT_LATENCY": "soon"}, want: []string{"USER_API_FAULT_LATENCY", "soon"}},
		{env: map[string]string{"USER_API_FAULT_LATENCY": "-1s"}, want: []string{"USER_API_FAULT_LATENCY", "-1s"}},
		{args: []string{"-fault-latency=soon"}, want: []string{"-fault-latency", "soon"}},
		{env: map[string]string{"USER_API_DRAIN_TIMEOUT": "0s"}, want: []string{"USER_API_DRAIN_TIMEOUT", "0s"}},
		{args: []string{"-drain-timeout=20"}, want: []string{"-drain-timeout", "20"}},
		{env: map[string]string{"USER_API_FAULT_HEALTH": "maybe"}, want: []string{"USER_API_FAULT_HEALTH", "maybe"}},
		{env: map[string]string{"USER_API_LISTEN": "8000"}, want: []string{"USER_API_LISTEN", "8000"}},
		{args: []string{"-listen=8000"}, want: []string{"-listen", "8000"}},
		{args: []string{"serve"}, want: []string{"serve"}},
	} {
		_, err := parseConfig(tc.args, envMap(tc.env), io.Discard)
		if err == nil {
			t.Errorf("args %q env %v: no error", tc.args, tc.env)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("args %q env %v: error %q does not mention %q", tc.args, tc.env, err, w)
			}
		}
	}
}
