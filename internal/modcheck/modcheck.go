// Package modcheck measures what the product costs a module that depends on it: the
// dependency tests of store and httpsession build a throwaway consumer module with it and
// check that no module of the test harness, the benchmark or the peer libraries reaches
// the consumer's build list.
package modcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Banned are the parts of module paths that a consumer of the product must never get:
// the container harness and its dependencies, the libraries the benchmark compares with,
// the history checker, and this repository's other modules.
var Banned = []string{
	"testcontainers", "moby", "docker", "containerd", "gopsutil", "otel",
	"scs", "gorilla", "redigo", "boj", "rbcervilla", "porcupine",
	"hasession/hasession/cluster", "hasession/hasession/bench", "hasession/hasession/tests",
	"hasession/hasession/adapters",
}

// MaxSumLines bounds the go.sum of a module that imports store and httpsession.
const MaxSumLines = 30

// Consumer is what a throwaway module importing the product's packages ended up with.
type Consumer struct {
	Modules  []string // go list -m all: its own path first, then path and version of each
	SumLines int      // lines of its go.sum after go mod tidy
	GoMod    string   // its go.mod after go mod tidy
}

// NewConsumer builds, in a temporary directory, a module that imports pkgs (packages of
// the root module, which a replace directive points at this working tree), tidies it
// without go.work, and returns what it got. It skips when GOPROXY is off: go mod tidy
// fetches the modules missing from the module cache from the module proxy.
func NewConsumer(t testing.TB, pkgs ...string) Consumer {
	t.Helper()
	if proxy := strings.TrimSpace(goCmd(t, "", "env", "GOPROXY")); proxy == "off" {
		t.Skip("GOPROXY is off: a consumer module's go mod tidy needs the module proxy for what is not in the module cache")
	}
	root := strings.TrimSpace(goCmd(t, "", "list", "-m", "-f", "{{.Dir}}"))
	goVersion := strings.TrimSpace(goCmd(t, "", "list", "-m", "-f", "{{.GoVersion}}"))
	dir := t.TempDir()
	var imports strings.Builder
	for _, p := range pkgs {
		imports.WriteString("\t_ \"" + p + "\"\n")
	}
	write(t, filepath.Join(dir, "go.mod"), "module example.com/consumer\n\ngo "+goVersion+"\n\n"+
		"require github.com/hasession/hasession v0.0.0-00010101000000-000000000000\n\n"+
		"replace github.com/hasession/hasession => "+root+"\n")
	write(t, filepath.Join(dir, "main.go"), "package main\n\nimport (\n"+imports.String()+")\n\nfunc main() {}\n")
	goCmd(t, dir, "mod", "tidy")
	var c Consumer
	// go.mod and go.sum as tidy leaves them, as the consumer would commit them (go list
	// -m all adds the go.mod sums of the whole module graph to go.sum).
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(string(sum)); s != "" {
		c.SumLines = len(strings.Split(s, "\n"))
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	c.GoMod = string(gomod)
	goCmd(t, dir, "build", "./...")
	c.Modules = strings.Split(strings.TrimSpace(goCmd(t, dir, "list", "-m", "all")), "\n")
	return c
}

// BannedModules returns the modules of c's build list whose path contains a Banned part.
func (c Consumer) BannedModules() []string {
	var bad []string
	for _, m := range c.Modules[1:] {
		path, _, _ := strings.Cut(m, " ")
		for _, b := range Banned {
			if strings.Contains(path, b) {
				bad = append(bad, m)
				break
			}
		}
	}
	return bad
}

// goCmd runs the go command in dir (the current directory when empty) without go.work
// and with -mod=mod, and returns its standard output; it fails the test on an error.
func goCmd(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
