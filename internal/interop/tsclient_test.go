package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgw/mcpgw/internal/demo"
)

// The TypeScript SDK client (@modelcontextprotocol/sdk from npm, pinned in
// interop/package.json), run with Node by interop/client.mjs, through the
// gateway to the npm servers.

// runTS runs client.mjs and decodes the JSON object it prints.
func runTS(t *testing.T, f *fixture, transport, server, scenario string, args ...string) map[string]json.RawMessage {
	t.Helper()
	return runNode(t, f, f.node.client, append([]string{transport, f.url(server), scenario}, args...)...)
}

// runNode runs a client script of interop/ with args and decodes the one
// JSON object it prints; a script that reports {"fatal": …} fails the test.
func runNode(t *testing.T, f *fixture, script string, args ...string) map[string]json.RawMessage {
	t.Helper()
	return runNodeEnv(t, f, nil, script, args...)
}

// runNodeEnv is runNode with extra environment variables (NAME=value).
func runNodeEnv(t *testing.T, f *fixture, env []string, script string, args ...string) map[string]json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	name := filepath.Base(script)
	cmd := exec.CommandContext(ctx, f.node.node, append([]string{script}, args...)...)
	cmd.Dir = f.node.dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s %s: %v\nstderr:\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("%s output is not one JSON object: %v\n%s\nstderr:\n%s", name, err, stdout.String(), stderr.String())
	}
	if fatal, ok := out["fatal"]; ok {
		t.Fatalf("%s failed: %s\nstderr:\n%s", name, fatal, stderr.String())
	}
	t.Logf("%s %s: %s", name, strings.Join(args, " "), stdout.String())
	return out
}

// field decodes out[key] into a value of type T; a step that failed
// ({"error": …}) or is missing fails the test.
func field[T any](t *testing.T, out map[string]json.RawMessage, key string) T {
	t.Helper()
	var v T
	raw, ok := out[key]
	if !ok {
		t.Fatalf("client output lacks %q", key)
	}
	var failed struct {
		Error *string `json:"error"`
	}
	if json.Unmarshal(raw, &failed) == nil && failed.Error != nil {
		t.Fatalf("%s failed in the TypeScript client: %s", key, raw)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v in %s", key, err, raw)
	}
	return v
}

type progressStep struct {
	Progress float64 `json:"progress"`
	Total    float64 `json:"total"`
}

func TestEverythingTypeScript(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, srv := range everythingServers {
		for _, transport := range tsTransports {
			t.Run(srv.mode+"/"+transport, func(t *testing.T) {
				out := runTS(t, f, transport, srv.name, "everything")
				if name := field[struct{ Name string }](t, out, "server").Name; name != "mcp-servers/everything" {
					t.Errorf("server name = %q", name)
				}
				if transport == "streamable" {
					if v := field[string](t, out, "protocolVersion"); v != "2025-11-25" {
						t.Errorf("negotiated %q, want 2025-11-25", v)
					}
				}
				tools := field[[]string](t, out, "tools")
				for _, want := range []string{"echo", "get-sum", "trigger-long-running-operation", "trigger-sampling-request"} {
					if !slices.Contains(tools, want) {
						t.Errorf("tools/list lacks %q: %v", want, tools)
					}
				}
				checks := []struct {
					key  string
					want []string
				}{
					{"echo", []string{"Echo: hello from ts"}},
					{"sum", []string{"The sum of 2 and 40 is 42."}},
					{"prompt", []string{"What's weather in Lisbon, Portugal?"}},
				}
				for _, c := range checks {
					if diff := cmp.Diff(c.want, field[[]string](t, out, c.key)); diff != "" {
						t.Errorf("%s (-want +got):\n%s", c.key, diff)
					}
				}
				if prompts := field[[]string](t, out, "prompts"); !slices.Contains(prompts, "args-prompt") || !slices.Contains(prompts, "simple-prompt") {
					t.Errorf("prompts/list = %v", prompts)
				}
				if res := field[[]string](t, out, "resource"); len(res) != 1 || !strings.HasPrefix(res[0], "Resource 7: This is a plaintext resource") {
					t.Errorf("resources/read = %q", res)
				}
				if n := field[int](t, out, "resources"); n < 1 {
					t.Errorf("resources/list returned %d resources", n)
				}

				progress := field[struct {
					Wire, Seen []progressStep
					Text       []string
				}](t, out, "progress")
				want := []progressStep{{1, 3}, {2, 3}, {3, 3}}
				// Every step reached the client, in order, before the result.
				if diff := cmp.Diff(want, progress.Wire); diff != "" {
					t.Errorf("progress notifications on the wire (-want +got):\n%s", diff)
				}
				// The SDK hands the last one to onprogress only if it did not
				// arrive together with the result (see client.mjs).
				if len(progress.Seen) < 2 || !cmp.Equal(want[:len(progress.Seen)], progress.Seen) {
					t.Errorf("onprogress saw %v, want a prefix of %v of at least two", progress.Seen, want)
				}
				if diff := cmp.Diff([]string{"Long running operation completed. Duration: 0.3 seconds, Steps: 3."}, progress.Text); diff != "" {
					t.Errorf("long-running result (-want +got):\n%s", diff)
				}

				sampling := strings.Join(field[[]string](t, out, "sampling"), "")
				if !strings.Contains(sampling, `"text": "sampled by the interop client"`) || !strings.Contains(sampling, `"model": "interop-model"`) {
					t.Errorf("sampling result = %q, want the client's answer in it", sampling)
				}
				if transport == "streamable" {
					if st := field[struct{ StatusAfter int }](t, out, "terminate").StatusAfter; st != 404 {
						t.Errorf("POST after DELETE of the session: %d, want 404", st)
					}
				}
			})
		}
	}
}

func TestFilesystemTypeScript(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, srv := range []struct{ name, mode string }{{"fs", "launcher"}, {"fsd", "daemon"}} {
		for _, transport := range tsTransports {
			t.Run(srv.mode+"/"+transport, func(t *testing.T) {
				out := runTS(t, f, transport, srv.name, "filesystem", f.fsDir)
				if name := field[struct{ Name string }](t, out, "server").Name; name != "secure-filesystem-server" {
					t.Errorf("server name = %q", name)
				}
				if tools := field[[]string](t, out, "tools"); !slices.Contains(tools, "list_directory") || !slices.Contains(tools, "read_text_file") {
					t.Errorf("tools/list = %v", tools)
				}
				if diff := cmp.Diff([]string{"[FILE] hello.txt\n[DIR] sub"}, field[[]string](t, out, "list")); diff != "" {
					t.Errorf("list_directory (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]string{"hello interop\n"}, field[[]string](t, out, "read")); diff != "" {
					t.Errorf("read_text_file (-want +got):\n%s", diff)
				}
				outside := field[struct {
					IsError bool
					Text    []string
				}](t, out, "outside")
				if !outside.IsError || !strings.Contains(strings.Join(outside.Text, ""), "Access denied") {
					t.Errorf("read outside the served directory = %+v, want an access-denied tool error", outside)
				}
			})
		}
	}
}

// TestDemoTypeScript: the TypeScript client with a Go SDK server (mcpgw's
// demo server) behind the gateway.
func TestDemoTypeScript(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, srv := range []struct{ name, mode string }{{"demo", "launcher"}, {"demod", "daemon"}} {
		for _, transport := range tsTransports {
			t.Run(srv.mode+"/"+transport, func(t *testing.T) {
				out := runTS(t, f, transport, srv.name, "demo")
				if name := field[struct{ Name string }](t, out, "server").Name; name != demo.Name {
					t.Errorf("server name = %q", name)
				}
				if tools := field[[]string](t, out, "tools"); !slices.Contains(tools, "echo") || !slices.Contains(tools, "sleep") {
					t.Errorf("tools/list = %v", tools)
				}
				if diff := cmp.Diff([]string{"hello demo from ts"}, field[[]string](t, out, "echo")); diff != "" {
					t.Errorf("echo (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestRejectionsTypeScript checks the statuses the TypeScript client (or
// plain fetch from Node) gets for requests the gateway refuses before any
// process starts.
func TestRejectionsTypeScript(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	out := runTS(t, f, "streamable", "ev", "rejections")
	// The SDK reports the HTTP status of a failed connect as the error code.
	for key, want := range map[string]int{"unknownServer": 404, "badServerName": 400} {
		if got := field[struct{ Code int }](t, out, key).Code; got != want {
			t.Errorf("%s: SDK connect failed with code %d, want %d (%s)", key, got, want, out[key])
		}
	}
	for key, want := range map[string]int{
		"wrongAccept":       406,
		"wrongContentType":  415,
		"unknownSession":    404,
		"wrongMethod":       405,
		"unknownSSESession": 404,
	} {
		if got := field[int](t, out, key); got != want {
			t.Errorf("%s: status %d, want %d", key, got, want)
		}
	}
}
