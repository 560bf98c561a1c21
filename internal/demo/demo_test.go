package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// connect serves a demo server with opts over in-memory transports and
// returns a client session connected to it. Cleanup closes the session and
// the server and reports an error from Serve.
func connect(t testing.TB, opts *Options, copts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	s, err := New("test-version", opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	cs, wait := connectServer(t, s, t.Context(), copts)
	t.Cleanup(func() {
		if err := cs.Close(); err != nil {
			t.Errorf("closing client session: %v", err)
		}
		if err := wait(); err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("closing server: %v", err)
		}
	})
	return cs
}

// connectServer starts s.Serve(serveCtx, ...) and connects a client to it.
// wait blocks until Serve returns and returns its error.
func connectServer(t testing.TB, s *Server, serveCtx context.Context, copts *mcp.ClientOptions) (cs *mcp.ClientSession, wait func() error) {
	t.Helper()
	st, ct := mcp.NewInMemoryTransports()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(serveCtx, st) }()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "demo-test", Version: "1"}, copts).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatalf("connecting client: %v", err)
	}
	return cs, func() error { return <-errc }
}

// callTool calls a tool and fails the test on a protocol error; tool errors
// are returned in the result.
func callTool(t testing.TB, cs *mcp.ClientSession, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("calling %s(%v): %v", name, args, err)
	}
	return res
}

// text concatenates the text content of res.
func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// decode unmarshals the JSON text content of a successful result into v.
func decode(t testing.TB, res *mcp.CallToolResult, v any) {
	t.Helper()
	if res.IsError {
		t.Fatalf("unexpected tool error: %s", text(res))
	}
	if err := json.Unmarshal([]byte(text(res)), v); err != nil {
		t.Fatalf("decoding %q: %v", text(res), err)
	}
}

func TestInitializeAndListTools(t *testing.T) {
	cs := connect(t, nil, nil)
	info := cs.InitializeResult().ServerInfo
	if info.Name != "mcpgw-demo" || info.Version != "test-version" {
		t.Errorf("serverInfo = %q %q, want mcpgw-demo test-version", info.Name, info.Version)
	}
	res, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
		if tool.Name == "sleep" {
			b, err := json.Marshal(tool.InputSchema)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), `"maximum":300`) {
				t.Errorf("sleep input schema lacks maximum 300: %s", b)
			}
		}
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"echo", "list_files", "now", "read_file", "sleep"}, names); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
}

func TestEcho(t *testing.T) {
	cs := connect(t, nil, nil)
	for _, in := range []string{"hello", "", "multi\nline ✓"} {
		res := callTool(t, cs, "echo", map[string]any{"text": in})
		if res.IsError || text(res) != in {
			t.Errorf("echo(%q) = %q (isError %v), want the text back", in, text(res), res.IsError)
		}
	}
	if res := callTool(t, cs, "echo", map[string]any{}); !res.IsError {
		t.Errorf("echo without text succeeded with %q, want a tool error", text(res))
	}
}

func TestNow(t *testing.T) {
	cs := connect(t, nil, nil)
	tests := []struct {
		name     string
		timezone string
		wantZone string
		wantErr  string
	}{
		{name: "local", timezone: "", wantZone: "Local"},
		{name: "utc", timezone: "UTC", wantZone: "UTC"},
		{name: "tokyo", timezone: "Asia/Tokyo", wantZone: "Asia/Tokyo"},
		{name: "unknown", timezone: "Mars/Olympus_Mons", wantErr: `unknown time zone "Mars/Olympus_Mons"`},
		{name: "path", timezone: "../../etc/passwd", wantErr: "unknown time zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := map[string]any{}
			if tt.timezone != "" {
				args["timezone"] = tt.timezone
			}
			before := time.Now().Truncate(time.Second)
			res := callTool(t, cs, "now", args)
			after := time.Now()
			if tt.wantErr != "" {
				if !res.IsError || !strings.Contains(text(res), tt.wantErr) {
					t.Fatalf("now(%q) = %q (isError %v), want a tool error containing %q", tt.timezone, text(res), res.IsError, tt.wantErr)
				}
				return
			}
			var got nowResult
			decode(t, res, &got)
			if got.Timezone != tt.wantZone {
				t.Errorf("timezone = %q, want %q", got.Timezone, tt.wantZone)
			}
			ts, err := time.Parse(time.RFC3339, got.Time)
			if err != nil {
				t.Fatalf("time %q is not RFC 3339: %v", got.Time, err)
			}
			if ts.Before(before) || ts.After(after) {
				t.Errorf("time %s is outside [%s, %s]", ts, before, after)
			}
			if ts.Unix() != got.Unix {
				t.Errorf("unix = %d, want %d to match time %s", got.Unix, ts.Unix(), got.Time)
			}
			if tt.timezone == "Asia/Tokyo" && !strings.HasSuffix(got.Time, "+09:00") {
				t.Errorf("time %q is not in UTC+9", got.Time)
			}
		})
	}
}

// testTree builds, under t.TempDir(), a root directory to serve and an
// outside directory next to it holding a secret that must stay unreachable.
func testTree(t testing.TB) (root string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	files := map[string]string{
		"root/hello.txt":     "hello, world\n",
		"root/sub/inner.txt": "inner\n",
		"root/exact.txt":     strings.Repeat("a", maxReadBytes),
		"root/big.txt":       strings.Repeat("a", maxReadBytes+1),
		"root/binary.bin":    "\xff\xfe\x00",
		"outside/secret.txt": "secret\n",
	}
	for name, content := range files {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"link-in":      "hello.txt",
		"link-sub":     "sub",
		"link-out-abs": filepath.Join(outside, "secret.txt"),
		"link-out-rel": "../outside/secret.txt",
		"link-out-dir": outside,
		"sub/link-up":  "../../outside",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestReadFile(t *testing.T) {
	cs := connect(t, &Options{Root: testTree(t)}, nil)
	tests := []struct {
		name    string
		path    string
		want    string
		wantErr string
	}{
		{name: "file", path: "hello.txt", want: "hello, world\n"},
		{name: "nested", path: "sub/inner.txt", want: "inner\n"},
		{name: "dot segments inside root", path: "./sub/../hello.txt", want: "hello, world\n"},
		{name: "symlink inside root", path: "link-in", want: "hello, world\n"},
		{name: "through symlinked dir", path: "link-sub/inner.txt", want: "inner\n"},
		{name: "exactly 1 MiB", path: "exact.txt", want: strings.Repeat("a", maxReadBytes)},
		{name: "over 1 MiB", path: "big.txt", wantErr: "larger than the 1 MiB read_file limit"},
		{name: "missing", path: "nope.txt", wantErr: `reading "nope.txt": no such file or directory`},
		{name: "directory", path: "sub", wantErr: "is a directory"},
		{name: "not utf-8", path: "binary.bin", wantErr: "not UTF-8 text"},
		{name: "empty path", path: "", wantErr: "path is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := callTool(t, cs, "read_file", map[string]any{"path": tt.path})
			if tt.wantErr != "" {
				if !res.IsError || !strings.Contains(text(res), tt.wantErr) {
					t.Fatalf("read_file(%q) = %.100q (isError %v), want a tool error containing %q", tt.path, text(res), res.IsError, tt.wantErr)
				}
				return
			}
			if res.IsError {
				t.Fatalf("read_file(%q): tool error %q", tt.path, text(res))
			}
			if got := text(res); got != tt.want {
				t.Errorf("read_file(%q) = %.100q, want %.100q", tt.path, got, tt.want)
			}
		})
	}
}

func TestListFiles(t *testing.T) {
	cs := connect(t, &Options{Root: testTree(t)}, nil)
	tests := []struct {
		name    string
		args    map[string]any
		want    listFilesResult
		wantErr string
	}{
		{
			name: "default is root",
			args: map[string]any{},
			want: listFilesResult{Path: ".", Entries: []fileEntry{
				{Name: "big.txt", Type: "file", Size: maxReadBytes + 1},
				{Name: "binary.bin", Type: "file", Size: 3},
				{Name: "exact.txt", Type: "file", Size: maxReadBytes},
				{Name: "hello.txt", Type: "file", Size: 13},
				{Name: "link-in", Type: "symlink"},
				{Name: "link-out-abs", Type: "symlink"},
				{Name: "link-out-dir", Type: "symlink"},
				{Name: "link-out-rel", Type: "symlink"},
				{Name: "link-sub", Type: "symlink"},
				{Name: "sub", Type: "dir"},
			}},
		},
		{
			name: "subdirectory",
			args: map[string]any{"path": "sub"},
			want: listFilesResult{Path: "sub", Entries: []fileEntry{
				{Name: "inner.txt", Type: "file", Size: 6},
				{Name: "link-up", Type: "symlink"},
			}},
		},
		{
			name: "symlinked directory inside root",
			args: map[string]any{"path": "link-sub"},
			want: listFilesResult{Path: "link-sub", Entries: []fileEntry{
				{Name: "inner.txt", Type: "file", Size: 6},
				{Name: "link-up", Type: "symlink"},
			}},
		},
		{name: "file", args: map[string]any{"path": "hello.txt"}, wantErr: `listing "hello.txt": `},
		{name: "missing", args: map[string]any{"path": "nope"}, wantErr: `listing "nope": no such file or directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := callTool(t, cs, "list_files", tt.args)
			if tt.wantErr != "" {
				if !res.IsError || !strings.Contains(text(res), tt.wantErr) {
					t.Fatalf("list_files(%v) = %q (isError %v), want a tool error containing %q", tt.args, text(res), res.IsError, tt.wantErr)
				}
				return
			}
			var got listFilesResult
			decode(t, res, &got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("list_files(%v) (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func TestListFilesTruncates(t *testing.T) {
	root := t.TempDir()
	for i := range maxListEntries + 5 {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("f%04d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cs := connect(t, &Options{Root: root}, nil)
	var got listFilesResult
	decode(t, callTool(t, cs, "list_files", nil), &got)
	if len(got.Entries) != maxListEntries || !got.Truncated {
		t.Errorf("list_files of %d entries returned %d, truncated=%v; want %d, true", maxListEntries+5, len(got.Entries), got.Truncated, maxListEntries)
	}
	if !slices.IsSortedFunc(got.Entries, func(a, b fileEntry) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("entries are not sorted by name")
	}
}

// TestEscapes checks that neither file tool reaches outside the root, however
// the path is spelled.
func TestEscapes(t *testing.T) {
	cs := connect(t, &Options{Root: testTree(t)}, nil)
	paths := []string{
		"..",
		"../x",
		"../outside/secret.txt",
		"sub/../../outside/secret.txt",
		"/",
		"/etc/passwd",
		"link-out-abs",
		"link-out-rel",
		"link-out-dir",
		"link-out-dir/secret.txt",
		"sub/link-up",
		"sub/link-up/secret.txt",
	}
	for _, tool := range []string{"read_file", "list_files"} {
		for _, p := range paths {
			t.Run(tool+"/"+p, func(t *testing.T) {
				res := callTool(t, cs, tool, map[string]any{"path": p})
				if !res.IsError || !strings.Contains(text(res), "path escapes from parent") {
					t.Errorf("%s(%q) = %.200q (isError %v), want a tool error saying the path escapes", tool, p, text(res), res.IsError)
				}
				if strings.Contains(text(res), "secret\n") || strings.Contains(text(res), "secret.txt\",\"type") {
					t.Errorf("%s(%q) leaked what is outside the root: %q", tool, p, text(res))
				}
			})
		}
	}
}

func TestSleepRejectsBadDurations(t *testing.T) {
	cs := connect(t, nil, nil)
	for _, secs := range []any{-1, 300.5, 301, "ten"} {
		res := callTool(t, cs, "sleep", map[string]any{"seconds": secs})
		if !res.IsError {
			t.Errorf("sleep(%v) = %q, want a tool error", secs, text(res))
		}
	}
}

// progressRecorder collects progress notifications received by a client.
type progressRecorder struct {
	mu       sync.Mutex
	progress []float64
	first    chan struct{} // closed on the first notification
	once     sync.Once
}

func newProgressRecorder() *progressRecorder {
	return &progressRecorder{first: make(chan struct{})}
}

func (r *progressRecorder) handle(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
	r.mu.Lock()
	r.progress = append(r.progress, req.Params.Progress)
	r.mu.Unlock()
	r.once.Do(func() { close(r.first) })
}

func (r *progressRecorder) got() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.progress)
}

func TestSleepProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newProgressRecorder()
		cs := connect(t, nil, &mcp.ClientOptions{ProgressNotificationHandler: rec.handle})

		start := time.Now()
		params := &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"seconds": 3.5}}
		params.SetProgressToken("tok")
		res, err := cs.CallTool(t.Context(), params)
		if err != nil {
			t.Fatalf("sleep: %v", err)
		}
		var got sleepResult
		decode(t, res, &got)
		if elapsed := time.Since(start); elapsed != 3500*time.Millisecond || got.Slept != 3.5 {
			t.Errorf("sleep(3.5) took %s and reported %gs, want 3.5s", elapsed, got.Slept)
		}
		synctest.Wait() // let the client deliver every notification
		if diff := cmp.Diff([]float64{1, 2, 3}, rec.got()); diff != "" {
			t.Errorf("progress (-want +got):\n%s", diff)
		}

		// Without a progress token there are no notifications.
		if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"seconds": 2}}); err != nil {
			t.Fatalf("sleep: %v", err)
		}
		synctest.Wait()
		if n := len(rec.got()); n != 3 {
			t.Errorf("sleep without a progress token sent %d notifications", n-3)
		}
	})
}

// handlerDone returns a channel that receives the time at which each
// tools/call handler of s returns.
func handlerDone(s *Server) <-chan time.Time {
	done := make(chan time.Time, 10)
	s.mcp.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			res, err := next(ctx, method, req)
			if method == "tools/call" {
				done <- time.Now()
			}
			return res, err
		}
	})
	return done
}

func TestSleepCancelledByClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New("v", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		done := handlerDone(s)
		rec := newProgressRecorder()
		cs, wait := connectServer(t, s, t.Context(), &mcp.ClientOptions{ProgressNotificationHandler: rec.handle})

		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-rec.first
			cancel()
		}()
		params := &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"seconds": 300}}
		params.SetProgressToken(7)
		if _, err := cs.CallTool(ctx, params); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled sleep returned %v, want context.Canceled", err)
		}
		cancelled := time.Now()
		// In the bubble, a handler that ignored the cancellation would only
		// return once fake time had run on to the end of the sleep.
		if stopped := <-done; stopped.Sub(cancelled) != 0 {
			t.Errorf("sleep handler ran on for %s after cancellation", stopped.Sub(cancelled))
		}
		if err := cs.Close(); err != nil {
			t.Errorf("closing client: %v", err)
		}
		// The SDK may still be writing the cancelled call's outcome when the
		// client closes the in-memory pipe; that write failing is a clean end.
		if err := wait(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("Serve: %v", err)
		}
	})
}

func TestServeCancelInterruptsSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New("v", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		rec := newProgressRecorder()
		serveCtx, stopServe := context.WithCancel(t.Context())
		cs, wait := connectServer(t, s, serveCtx, &mcp.ClientOptions{ProgressNotificationHandler: rec.handle})

		callErr := make(chan error, 1)
		go func() {
			params := &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"seconds": 300}}
			params.SetProgressToken("t")
			_, err := cs.CallTool(t.Context(), params)
			callErr <- err
		}()
		<-rec.first
		stopServe()
		stopped := time.Now()
		if err := wait(); err != nil {
			t.Errorf("Serve after cancellation: %v", err)
		}
		if d := time.Since(stopped); d != 0 {
			t.Errorf("Serve took %s to return after cancellation, want no wait for the sleep", d)
		}
		<-callErr // the call fails or returns a tool error; either way it ends
		if err := cs.Close(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("closing client: %v", err)
		}
	})
}

// TestRun drives the stdio entry point over pipes, as `mcpgw demo-server`
// would be driven by a gateway.
func TestRun(t *testing.T) {
	clientIn, serverOut := io.Pipe()
	serverIn, clientOut := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- Run(t.Context(), serverIn, serverOut, "1.2.3") }()

	cs, err := mcp.NewClient(&mcp.Implementation{Name: "demo-test", Version: "1"}, nil).
		Connect(t.Context(), &mcp.IOTransport{Reader: clientIn, Writer: clientOut}, nil)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	if v := cs.InitializeResult().ServerInfo.Version; v != "1.2.3" {
		t.Errorf("server version = %q, want 1.2.3", v)
	}
	if res := callTool(t, cs, "echo", map[string]any{"text": "over stdio"}); text(res) != "over stdio" {
		t.Errorf("echo = %q, want %q", text(res), "over stdio")
	}
	if err := cs.Close(); err != nil {
		t.Errorf("closing client: %v", err)
	}
	if err := <-errc; err != nil {
		t.Errorf("Run after the client hung up = %v, want nil", err)
	}
}

// A sandboxed server may not read its working directory: it still serves
// the other tools, and the file tools explain what is missing.
func TestUnreadableRoot(t *testing.T) {
	cs := connect(t, &Options{Root: filepath.Join(t.TempDir(), "missing")}, nil)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "still here"}})
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "still here" {
		t.Fatalf("echo: %v %+v", err, res)
	}
	for _, tool := range []string{"list_files", "read_file"} {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"path": "x"}})
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if !res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "give it a workspace") {
			t.Errorf("%s: %+v, want a tool error saying a workspace is needed", tool, res.Content)
		}
	}
}
