package launch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// parse loads a config in which ${DIR} is dir.
func parse(t *testing.T, yaml, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) { return dir, k == "DIR" })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func TestEnvironmentIsExplicit(t *testing.T) {
	book := t.TempDir()
	cfg := parse(t, `
workspaces: {book: "${DIR}"}
servers:
  n:
    command: [prog]
    env: {TOKEN: secret, PATH: /custom/bin}
    workspaces: [{name: book}]
  c:
    runtime: container
    container: {image: img}
    env: {TOKEN: other}
    workspaces: [{name: book, target: /w}]
`, book)
	gateway := map[string]string{"PATH": "/usr/bin", "HOME": "/home/gw", "LANG": "C.UTF-8", "SECRET_OF_THE_GATEWAY": "x"}
	l := New(cfg, &Options{Getenv: func(k string) (string, bool) { v, ok := gateway[k]; return v, ok }})
	dir, _ := filepath.EvalSymlinks(book)
	for name, want := range map[string][]string{
		// The server's PATH wins over the gateway's; HOME and LANG come
		// from the gateway; nothing else of its environment.
		"n": {"HOME=/home/gw", "LANG=C.UTF-8", "PATH=/custom/bin", "TOKEN=secret", "MCPGW_WORKSPACE_BOOK=" + dir},
		// A container gets its own env only, and the path it sees.
		"c": {"TOKEN=other", "MCPGW_WORKSPACE_BOOK=/w"},
	} {
		if diff := cmp.Diff(want, l.env(cfg.Servers[name])); diff != "" {
			t.Errorf("env of %s (-want +got):\n%s", name, diff)
		}
	}
}

type nopHandler struct{}

func (nopHandler) HandleMessage(*jsonrpc.Message) {}
func (nopHandler) HandleClose(error)              {}

func TestStartRefusals(t *testing.T) {
	dir := t.TempDir()
	cfg := parse(t, `
workspaces: {book: "${DIR}"}
servers:
  missing:
    command: [mcpgw-no-such-program]
    sandbox: none
  moved:
    command: [prog]
    workspaces: [{name: book}]
`, dir)
	l := New(cfg, nil)
	if err := l.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	if _, err := l.Start(t.Context(), cfg.Servers["missing"], nopHandler{}); err == nil || !strings.Contains(err.Error(), "mcpgw-no-such-program") {
		t.Errorf("missing command: %v, want an error naming it", err)
	}
	if err := l.Check(t.Context(), cfg.Servers["missing"]); err == nil {
		t.Error("readiness of a missing command: no error")
	}
	// The workspace is replaced by a symlink after the load: the start is
	// refused (the path checked at load is not what it resolves to now).
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Start(t.Context(), cfg.Servers["moved"], nopHandler{}); err == nil || !strings.Contains(err.Error(), `starting server "moved"`) {
		t.Errorf("swapped workspace: %v, want the start refused", err)
	}
}

func TestClosedLauncherStartsNothing(t *testing.T) {
	cfg := parse(t, `
servers:
  s: {command: [sh], sandbox: none}
`, "")
	l := New(cfg, nil)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Start(t.Context(), cfg.Servers["s"], nopHandler{}); !errors.Is(err, errClosed) {
		t.Errorf("start after Close: %v, want %v", err, errClosed)
	}
}

func TestStartNative(t *testing.T) {
	cfg := parse(t, `
servers:
  sh:
    command: [sh, -c, 'read line; printf "%s\n" "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"home\":\"$$HOME\"}}"; sleep 30']
    sandbox: none
    timeouts: {kill_grace: 1s}
`, "")
	l := New(cfg, &Options{Getenv: func(k string) (string, bool) {
		if k == "HOME" {
			return "/home/gw", true
		}
		return "", false
	}})
	if err := l.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	b, err := l.Start(t.Context(), cfg.Servers["sh"], nopHandler{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := b.Roundtrip(ctx, &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: []byte("0"), Method: "ping"})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.Result); got != `{"home":"/home/gw"}` {
		t.Errorf("result %s: the child did not get the gateway's HOME", got)
	}
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// close stdin → 1s → SIGTERM: sh and its sleep are gone well before
	// the sleep would end.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stopping took %s", d)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A missing workdir is named, with the key that sets it, both when a
// process starts (with or without the sandbox, whose shim would otherwise
// fail to exec as "fork/exec <gateway binary>") and in readiness.
func TestMissingWorkdirIsNamed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, `
servers:
  sandboxed: {command: [sh], workdir: "${DIR}"}
  plain: {command: [sh], workdir: "${DIR}", sandbox: none}
  notadir: {command: [sh], workdir: "`+file+`", sandbox: none}
`, dir)
	l := New(cfg, nil)
	if err := l.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	for name, want := range map[string]string{
		"sandboxed": "working directory " + dir + " does not exist; create it or change servers.sandboxed.workdir",
		"plain":     "working directory " + dir + " does not exist; create it or change servers.plain.workdir",
		"notadir":   "working directory " + file + " is not a directory; change servers.notadir.workdir",
	} {
		if _, err := l.Start(t.Context(), cfg.Servers[name], nopHandler{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("start of %s: %v, want %q", name, err, want)
		}
		if err := l.Check(t.Context(), cfg.Servers[name]); err == nil || !strings.Contains(err.Error(), want) {
			if name == "sandboxed" && err != nil && strings.Contains(err.Error(), "landlock") {
				continue // no Landlock here: readiness reports that first
			}
			t.Errorf("readiness of %s: %v, want %q", name, err, want)
		}
	}
}
