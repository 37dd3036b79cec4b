package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// TestDebianLockListsTheLibraries: the Go libraries compiled into user-api
// (every package outside the standard library) come from exactly the Go
// library packages of debian-packages.lock: none missing, none left over.
func TestDebianLockListsTheLibraries(t *testing.T) {
	gocmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gocmd, "list", "-deps",
		"-f", `{{if not .Standard}}{{if ne .Name "main"}}{{.Dir}}/{{index .GoFiles 0}}{{end}}{{end}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	files := strings.Fields(string(out))
	if len(files) == 0 {
		t.Fatal("go list names no library package")
	}
	out, err = exec.Command("dpkg-query", append([]string{"-S"}, files...)...).Output()
	if err != nil {
		t.Fatalf("dpkg-query -S %v: %v", files, err)
	}
	compiled := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		owners, _, _ := strings.Cut(line, ": ")
		for _, owner := range strings.Split(owners, ", ") {
			compiled[strings.Split(owner, ":")[0]] = true // no :arch
		}
	}

	text, err := os.ReadFile("debian-packages.lock")
	if err != nil {
		t.Fatal(err)
	}
	locked := map[string]bool{}
	for _, line := range strings.Split(string(text), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "=")
		out, err := exec.Command("dpkg-query", "-L", name).Output()
		if err != nil {
			t.Fatalf("dpkg-query -L %s: %v", name, err)
		}
		// A Go library package: it installs sources under /usr/share/gocode/src.
		if strings.Contains(string(out), "/usr/share/gocode/src/") {
			locked[name] = true
		}
	}
	if !reflect.DeepEqual(locked, compiled) {
		t.Errorf("debian-packages.lock's Go libraries %v, the compiled ones %v", sorted(locked), sorted(compiled))
	}
}

func sorted(set map[string]bool) []string {
	names := make([]string, 0, len(set))
	for name := range set {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
