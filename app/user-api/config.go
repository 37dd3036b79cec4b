package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"
)

type config struct {
	listen         string
	drainTimeout   time.Duration
	faultErrorRate float64
	faultLatency   time.Duration
	faultHealth    bool
	showVersion    bool
}

// envFallbacks names the environment variable systemd uses for each flag.
// A slice, not a map, so errors are reported in a stable order.
var envFallbacks = []struct{ flag, env string }{
	{"listen", "USER_API_LISTEN"},
	{"drain-timeout", "USER_API_DRAIN_TIMEOUT"},
	{"fault-error-rate", "USER_API_FAULT_ERROR_RATE"},
	{"fault-latency", "USER_API_FAULT_LATENCY"},
	{"fault-health", "USER_API_FAULT_HEALTH"},
}

// parseConfig reads the flags in args; a flag that is not given falls back to
// its environment variable (read with getenv), then to its default. Usage
// goes to help, and only for -h; errors are returned for the caller to report.
func parseConfig(args []string, getenv func(string) string, help io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("user-api", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.listen, "listen", ":8000", "listen address (env USER_API_LISTEN)")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 20*time.Second, "how long in-flight requests may run after SIGTERM (env USER_API_DRAIN_TIMEOUT)")
	fs.Float64Var(&c.faultErrorRate, "fault-error-rate", 0, "fault: share 0..1 of GET / answered 500, spread evenly (env USER_API_FAULT_ERROR_RATE)")
	fs.DurationVar(&c.faultLatency, "fault-latency", 0, "fault: delay added to every GET / (env USER_API_FAULT_LATENCY)")
	fs.BoolVar(&c.faultHealth, "fault-health", false, "fault: /healthz always answers 503 (env USER_API_FAULT_HEALTH)")
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(help, "usage: user-api [flags]")
			fs.SetOutput(help)
			fs.PrintDefaults()
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.showVersion {
		return c, nil
	}

	// source records where each value came from, to name it in errors.
	source := map[string]string{}
	fs.Visit(func(f *flag.Flag) { source[f.Name] = "-" + f.Name })
	for _, fb := range envFallbacks {
		v := getenv(fb.env)
		if source[fb.flag] != "" || v == "" {
			continue
		}
		if err := fs.Set(fb.flag, v); err != nil {
			return c, fmt.Errorf("invalid value %q for %s: %v", v, fb.env, err)
		}
		source[fb.flag] = fb.env
	}

	invalid := func(name, why string) error {
		return fmt.Errorf("invalid value %q for %s: %s", fs.Lookup(name).Value, source[name], why)
	}
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		return c, invalid("listen", err.Error())
	}
	if c.drainTimeout <= 0 {
		return c, invalid("drain-timeout", "must be positive")
	}
	if !(c.faultErrorRate >= 0 && c.faultErrorRate <= 1) { // also rejects NaN
		return c, invalid("fault-error-rate", "must be between 0 and 1")
	}
	if c.faultLatency < 0 {
		return c, invalid("fault-latency", "must not be negative")
	}
	return c, nil
}
