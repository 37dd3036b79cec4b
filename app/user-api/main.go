// Command user-api is the reference web service the fleet deployer rolls out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// version is set at build time: go build -ldflags "-X main.version=1.1.0".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit code: 0 clean (or drained in
// time), 1 runtime failure or drain timeout, 2 bad configuration.
// readTimeout bounds reading a whole request, body included: a client trickling a body is cut off, so it cannot
// hold a drain until the drain timeout.
const readTimeout = 10 * time.Second

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	logger := log.New(stderr, "user-api: ", 0) // no timestamps: journald adds them

	cfg, err := parseConfig(args, getenv, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		logger.Print(err)
		return 2
	case cfg.showVersion:
		fmt.Fprintln(stdout, version)
		return 0
	}

	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}

	// Subscribe before listening so that a SIGTERM right after start drains too.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sigc)

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		logger.Print(err)
		return 1
	}
	s := newServer(cfg, host)
	srv := &http.Server{
		Handler: s,
		// Bound slow or idle clients; request handling itself is not limited.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          logger,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Printf("version %s listening on %s (drain-timeout %s; faults: error-rate=%g latency=%s health=%t)",
		version, ln.Addr(), cfg.drainTimeout, cfg.faultErrorRate, cfg.faultLatency, cfg.faultHealth)

	var sig os.Signal
	select {
	case err := <-serveErr:
		logger.Print(err)
		return 1
	case sig = <-sigc:
	}
	// Restore default handling: a second signal kills the process at once.
	signal.Stop(sigc)

	// Health checks fail from now on; Shutdown closes the listener and idle
	// connections, then waits for in-flight requests.
	s.draining.Store(true)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.drainTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		left := s.metrics.inFlight.Load()
		srv.Close()
		logger.Printf("got %v; drain not finished after %s (%v), closed %d in-flight request(s); exiting 1",
			sig, cfg.drainTimeout, err, left)
		return 1
	}
	logger.Printf("got %v; drained in %s; exiting 0", sig, time.Since(start).Round(time.Millisecond))
	return 0
}
