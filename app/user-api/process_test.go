package main

// These tests build the real binary, version stamped like the Makefile does,
// and drive it as a subprocess with real signals.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

const testVersion = "9.9.9-test"

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "user-api-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "user-api")
	gocmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	code := 1
	if out, err := exec.Command(gocmd, "build", "-ldflags", "-X main.version="+testVersion, "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the binary: %v\n%s", err, out)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	cmd  *exec.Cmd
	addr string
	logs chan string // stderr after the start line, complete once the process exits
}

// start runs the binary on a free port and waits for its start line.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"-listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = []string{} // keep USER_API_* of the caller out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	r := bufio.NewReader(stderr)
	line, err := r.ReadString('\n')
	m := regexp.MustCompile(`version ` + regexp.QuoteMeta(testVersion) + ` listening on (\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("start line %q (%v)", line, err)
	}
	p := &proc{cmd: cmd, addr: m[1], logs: make(chan string, 1)}
	go func() {
		rest, _ := io.ReadAll(r)
		p.logs <- string(rest)
	}()
	return p
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// wait returns the exit code and the log lines after the start line.
func (p *proc) wait(t *testing.T) (int, string) {
	t.Helper()
	select {
	case logs := <-p.logs:
		p.cmd.Wait()
		return p.cmd.ProcessState.ExitCode(), logs
	case <-time.After(5 * time.Second):
		t.Fatal("process did not exit")
		return 0, ""
	}
}

type result struct {
	code int
	body string
	err  error
}

// getAsync sends GET url on its own connection and delivers the result later.
func getAsync(url string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		client := &http.Client{Transport: &http.Transport{}}
		resp, err := client.Get(url)
		if err != nil {
			ch <- result{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		ch <- result{resp.StatusCode, string(body), err}
	}()
	return ch
}

// waitInFlight polls /metrics until n requests besides the scrape are in flight.
func waitInFlight(t *testing.T, addr string, n int) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	want := fmt.Sprintf("\nhttp_requests_in_flight %d\n", n+1)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), want) {
			return
		}
	}
	t.Fatalf("never saw %d request(s) in flight", n)
}

func TestDrainOnSIGTERM(t *testing.T) {
	p := start(t, "-fault-latency", "500ms")
	// Accepted before SIGTERM, sends its request only during the drain.
	early, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	slow := getAsync("http://" + p.addr + "/")
	waitInFlight(t, p.addr, 1)

	p.signal(t, syscall.SIGTERM)

	// New connections are refused while the slow request is still running.
	for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
		c, err := net.Dial("tcp", p.addr)
		if errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		// A reset means the dial raced the listener closing; try again.
		if err == nil {
			c.Close()
		} else if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial during drain: %v, want connection refused", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections after SIGTERM")
		}
	}
	select {
	case r := <-slow:
		t.Fatalf("slow request finished before the listener closed: %+v", r)
	default:
	}

	// The already open connection is still served, and health reports draining.
	fmt.Fprint(early, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(early), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("X-App-Version") != testVersion {
		t.Errorf("/healthz during drain: %d version %q, want 503 %q", resp.StatusCode, resp.Header.Get("X-App-Version"), testVersion)
	}

	if r := <-slow; r.err != nil || r.code != 200 || !strings.Contains(r.body, testVersion) {
		t.Errorf("in-flight request: %+v, want 200 with the version", r)
	}
	code, logs := p.wait(t)
	if code != 0 || !strings.Contains(logs, "drained") {
		t.Errorf("exit %d, logs %q; want 0 and a drained line", code, logs)
	}
}

func TestDrainTimeout(t *testing.T) {
	p := start(t, "-fault-latency", "5s", "-drain-timeout", "200ms")
	slow := getAsync("http://" + p.addr + "/")
	waitInFlight(t, p.addr, 1)
	began := time.Now()
	p.signal(t, syscall.SIGTERM)

	code, logs := p.wait(t)
	if code != 1 || !strings.Contains(logs, "closed 1 in-flight request(s)") {
		t.Errorf("exit %d, logs %q; want 1 and a timeout line", code, logs)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("exit took %v with a 200ms drain timeout", d)
	}
	if r := <-slow; r.err == nil {
		t.Errorf("request outliving the drain timeout got an answer: %+v", r)
	}
}

func TestTricklingBodyIsCutOff(t *testing.T) {
	p := start(t)
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n")
	closed := make(chan time.Time, 1)
	go func() {
		io.Copy(io.Discard, conn) // until the server closes the connection
		closed <- time.Now()
	}()
	began := time.Now()
	ticker := time.NewTicker(200 * time.Millisecond) // one byte at a time, for longer than readTimeout
	defer ticker.Stop()
	for deadline := began.Add(readTimeout + 5*time.Second); time.Now().Before(deadline); {
		select {
		case at := <-closed:
			if d := at.Sub(began); d < readTimeout-time.Second || d > readTimeout+2*time.Second {
				t.Fatalf("connection closed after %v, want about %v", d, readTimeout)
			}
			return
		case <-ticker.C:
			conn.Write([]byte("x"))
		}
	}
	t.Fatalf("a body trickled for %v still holds its connection", readTimeout+5*time.Second)
}

func TestSIGINTWhenIdle(t *testing.T) {
	p := start(t)
	p.signal(t, os.Interrupt)
	if code, logs := p.wait(t); code != 0 {
		t.Errorf("exit %d, logs %q; want 0", code, logs)
	}
}

func TestVersionFlag(t *testing.T) {
	out, err := exec.Command(binPath, "-version").Output()
	if err != nil || string(out) != testVersion+"\n" {
		t.Errorf("-version: %q, %v; want %q", out, err, testVersion)
	}
}

func TestBadConfigExits2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{env: "USER_API_FAULT_ERROR_RATE=1.5", want: `invalid value "1.5" for USER_API_FAULT_ERROR_RATE`},
		{args: []string{"-fault-latency", "soon"}, want: `invalid value "soon" for flag -fault-latency`},
	} {
		cmd := exec.Command(binPath, tc.args...)
		cmd.Env = []string{tc.env}
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("args %q env %q: exit %d (%v), output %q; want 2 and %q", tc.args, tc.env, code, err, out, tc.want)
		}
	}
}
