package testserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mcpgw/mcpgw/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(EnvVar) == "1" {
		os.Exit(Main())
	}
	goleak.VerifyTestMain(m)
}

// readTimeout bounds each wait for the child, so a broken server fails the
// test instead of hanging it.
const readTimeout = 10 * time.Second

// child is a test server running as a child process of the test.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte // stdout lines; closed at EOF
	stderr *testutil.Buffer
	exited chan struct{} // closed once Wait has returned
	err    error         // Wait's error, set before exited is closed
	nextID int
}

// start runs the test binary as a test server with the extra environment
// entries env. Cleanup closes its stdin and waits for it, killing it if it
// does not exit.
func start(t testing.TB, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), EnvVar+"=1"), env...)
	c := &child{
		cmd:    cmd,
		lines:  make(chan []byte, 100),
		stderr: &testutil.Buffer{},
		exited: make(chan struct{}),
	}
	cmd.Stderr = c.stderr
	// A grandchild that holds stderr open must not keep Wait from returning.
	cmd.WaitDelay = readTimeout
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting test server: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			c.lines <- bytes.Clone(sc.Bytes())
		}
		close(c.lines)
		// Wait only after stdout is drained, as exec.Cmd.StdoutPipe requires.
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.stdin.Close()
		select {
		case <-c.exited:
		case <-time.After(readTimeout):
			t.Errorf("test server %d did not exit after stdin closed; killing it", cmd.Process.Pid)
			if err := cmd.Process.Kill(); err != nil {
				t.Errorf("killing test server: %v", err)
			}
			<-c.exited
		}
		if t.Failed() {
			t.Logf("test server stderr:\n%s", c.stderr.String())
		}
	})
	return c
}

// send writes one line holding v as JSON.
func (c *child) send(t testing.TB, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	c.sendLine(t, b)
}

func (c *child) sendLine(t testing.TB, b []byte) {
	t.Helper()
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("writing to test server: %v", err)
	}
}

// call sends a request and returns its id.
func (c *child) call(t testing.TB, method string, params any) int {
	t.Helper()
	c.nextID++
	req := map[string]any{"jsonrpc": "2.0", "id": c.nextID, "method": method}
	if params != nil {
		req["params"] = params
	}
	c.send(t, req)
	return c.nextID
}

// callTool sends tools/call for name with args, and a progress token if
// token is not nil.
func (c *child) callTool(t testing.TB, name string, args map[string]any, token any) int {
	t.Helper()
	params := map[string]any{"name": name, "arguments": args}
	if token != nil {
		params["_meta"] = map[string]any{"progressToken": token}
	}
	return c.call(t, "tools/call", params)
}

// line returns the next stdout line, failing the test at EOF or after
// readTimeout.
func (c *child) line(t testing.TB) []byte {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			t.Fatalf("test server closed stdout (stderr: %s)", c.stderr.String())
		}
		return l
	case <-time.After(readTimeout):
		t.Fatalf("no output from test server after %s", readTimeout)
		return nil
	}
}

// recv returns the next stdout line as a message.
func (c *child) recv(t testing.TB) *message {
	t.Helper()
	l := c.line(t)
	var m message
	if err := json.Unmarshal(l, &m); err != nil {
		t.Fatalf("test server wrote a non-JSON line %.200q: %v", l, err)
	}
	if m.JSONRPC != "2.0" {
		t.Errorf("message without jsonrpc 2.0: %.200q", l)
	}
	return &m
}

// await reads until the response to id and returns it with every message
// received before it.
func (c *child) await(t testing.TB, id int) (resp *message, before []*message) {
	t.Helper()
	for {
		m := c.recv(t)
		if m.Method == "" && idKey(m.ID) == strconv.Itoa(id) {
			return m, before
		}
		before = append(before, m)
	}
}

// toolText awaits the tools/call response to id and returns its text and
// isError.
func (c *child) toolText(t testing.TB, id int) (text string, isError bool) {
	t.Helper()
	resp, before := c.await(t, id)
	if len(before) > 0 {
		t.Errorf("unexpected messages before response %d: %v", id, before)
	}
	return decodeToolResult(t, resp)
}

func decodeToolResult(t testing.TB, resp *message) (text string, isError bool) {
	t.Helper()
	if len(resp.Error) > 0 {
		t.Fatalf("tools/call failed: %s", resp.Error)
	}
	var res struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal(resp.Result, &res); err != nil {
		t.Fatalf("decoding tool result %.200s: %v", resp.Result, err)
	}
	if len(res.Content) != 1 || res.Content[0].Type != "text" {
		t.Fatalf("tool result %.200s: want one text content", resp.Result)
	}
	return res.Content[0].Text, res.IsError
}

// wait waits for the child to exit and returns its exit code, or -1 if a
// signal killed it.
func (c *child) wait(t testing.TB) int {
	t.Helper()
	c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(readTimeout):
		t.Fatalf("test server did not exit")
	}
	if c.err != nil {
		if _, ok := errors.AsType[*exec.ExitError](c.err); !ok {
			t.Fatalf("waiting for test server: %v", c.err)
		}
	}
	return c.cmd.ProcessState.ExitCode()
}

func TestInitialize(t *testing.T) {
	c := start(t)
	tests := []struct {
		name      string
		requested string
		want      string
	}{
		{name: "2024-11-05", requested: "2024-11-05", want: "2024-11-05"},
		{name: "2025-03-26", requested: "2025-03-26", want: "2025-03-26"},
		{name: "2025-06-18", requested: "2025-06-18", want: "2025-06-18"},
		{name: "2025-11-25", requested: "2025-11-25", want: "2025-11-25"},
		{name: "unknown offers latest", requested: "1999-01-01", want: "2025-11-25"},
		{name: "missing offers latest", requested: "", want: "2025-11-25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := c.call(t, "initialize", map[string]any{
				"protocolVersion": tt.requested,
				"capabilities":    map[string]any{},
				"clientInfo":      map[string]any{"name": "test", "version": "1"},
			})
			resp, _ := c.await(t, id)
			var got map[string]any
			if err := json.Unmarshal(resp.Result, &got); err != nil {
				t.Fatalf("decoding %s: %v", resp.Result, err)
			}
			want := map[string]any{
				"protocolVersion": tt.want,
				"capabilities": map[string]any{
					"tools":     map[string]any{"listChanged": true},
					"logging":   map[string]any{},
					"resources": map[string]any{"subscribe": true},
				},
				"serverInfo": map[string]any{"name": "mcpgw-testserver", "version": "1"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("initialize result (-want +got):\n%s", diff)
			}
		})
	}
	c.send(t, map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
	if code := c.wait(t); code != 0 {
		t.Errorf("exit code after stdin EOF = %d, want 0", code)
	}
}

func TestMethods(t *testing.T) {
	c := start(t)

	resp, _ := c.await(t, c.call(t, "ping", nil))
	if string(resp.Result) != "{}" {
		t.Errorf("ping result = %s, want {}", resp.Result)
	}

	resp, _ = c.await(t, c.call(t, "tools/list", map[string]any{}))
	var list struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(resp.Result, &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	want := []string{"echo", "sleep", "stuck", "wedge", "touch", "crash", "garbage", "flood_stderr", "huge", "log", "sample", "list_changed", "whoami", "spawn_child", "meta", "write_file", "read_file", "getwd", "getenv", "dial", "proc_status", "fork_loop", "alloc"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}

	errorCases := []struct {
		name     string
		method   string
		params   any
		wantCode int
	}{
		{name: "unknown method", method: "sampling/createMessage", params: map[string]any{}, wantCode: -32601},
		{name: "unknown tool", method: "tools/call", params: map[string]any{"name": "nope"}, wantCode: -32602},
		{name: "bad arguments", method: "tools/call", params: map[string]any{"name": "echo", "arguments": map[string]any{"text": 1}}, wantCode: -32602},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := c.await(t, c.call(t, tt.method, tt.params))
			var e rpcError
			if err := json.Unmarshal(resp.Error, &e); err != nil || e.Code != tt.wantCode {
				t.Errorf("%s: error %s, want code %d", tt.method, resp.Error, tt.wantCode)
			}
		})
	}

	// A line that is not JSON gets a parse error with a null id.
	c.sendLine(t, []byte("{oops"))
	m := c.recv(t)
	var e rpcError
	if err := json.Unmarshal(m.Error, &e); err != nil || e.Code != -32700 || string(m.ID) != "null" {
		t.Errorf("reply to a bad line = id %s error %s, want id null and code -32700", m.ID, m.Error)
	}
}

func TestEcho(t *testing.T) {
	c := start(t)
	for _, text := range []string{"hello", "", "ünïcode\nand newline"} {
		got, isError := c.toolText(t, c.callTool(t, "echo", map[string]any{"text": text}, nil))
		if got != text || isError {
			t.Errorf("echo(%q) = %q (isError %v)", text, got, isError)
		}
	}
}

func TestSleepProgress(t *testing.T) {
	c := start(t)
	id := c.callTool(t, "sleep", map[string]any{"ms": 300}, "tok-1")
	resp, before := c.await(t, id)
	if text, _ := decodeToolResult(t, resp); text != "slept 300ms" {
		t.Errorf("sleep result = %q, want %q", text, "slept 300ms")
	}
	var last float64
	for _, m := range before {
		var p struct {
			ProgressToken any     `json:"progressToken"`
			Progress      float64 `json:"progress"`
			Total         float64 `json:"total"`
		}
		if err := json.Unmarshal(m.Params, &p); err != nil || m.Method != "notifications/progress" {
			t.Fatalf("unexpected message %s %s", m.Method, m.Params)
		}
		if p.ProgressToken != "tok-1" || p.Total != 300 || p.Progress <= last {
			t.Errorf("progress %s: want token tok-1, total 300 and progress above %g", m.Params, last)
		}
		last = p.Progress
	}
	// 300ms at one notification per 50ms; allow for a slow machine.
	if len(before) < 2 {
		t.Errorf("got %d progress notifications for a 300ms sleep, want at least 2", len(before))
	}

	// Without a token there is no progress.
	if _, before := c.await(t, c.callTool(t, "sleep", map[string]any{"ms": 120}, nil)); len(before) != 0 {
		t.Errorf("sleep without a progress token sent %d messages", len(before))
	}
}

func TestSleepCancelled(t *testing.T) {
	c := start(t)
	id := c.callTool(t, "sleep", map[string]any{"ms": 60_000}, 42)
	if m := c.recv(t); m.Method != "notifications/progress" {
		t.Fatalf("got %s %s, want progress", m.Method, m.Params)
	}
	c.send(t, map[string]any{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": map[string]any{"requestId": id, "reason": "test"}})
	// The server handles lines in order, so once ping is answered the
	// cancellation has been processed; progress sent earlier may precede it.
	c.await(t, c.call(t, "ping", nil))
	// A sleep that ignored the cancellation would now report progress and,
	// eventually, answer.
	_, before := c.await(t, c.callTool(t, "sleep", map[string]any{"ms": 250}, nil))
	for _, m := range before {
		t.Errorf("after cancellation got %s %s id %s", m.Method, m.Params, m.ID)
	}
	if code := c.wait(t); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	for l := range c.lines {
		t.Errorf("after cancellation got %s", l)
	}
}

func TestCrash(t *testing.T) {
	c := start(t)
	c.callTool(t, "sleep", map[string]any{"ms": 60_000}, nil) // in flight; must not delay the crash
	c.callTool(t, "crash", map[string]any{"code": 3}, nil)
	for l := range c.lines {
		t.Errorf("crashing server wrote %s", l)
	}
	if code := c.wait(t); code != 3 {
		t.Errorf("exit code = %d, want 3", code)
	}
}

func TestSampling(t *testing.T) {
	c := start(t)
	tests := []struct {
		name        string
		response    map[string]any
		wantText    string
		wantIsError bool
	}{
		{
			name:     "result",
			response: map[string]any{"result": map[string]any{"role": "assistant", "model": "m", "content": map[string]any{"type": "text", "text": "hi"}}},
			wantText: `{"content":{"text":"hi","type":"text"},"model":"m","role":"assistant"}`,
		},
		{
			name:        "error",
			response:    map[string]any{"error": map[string]any{"code": -1, "message": "user rejected sampling"}},
			wantText:    `{"code":-1,"message":"user rejected sampling"}`,
			wantIsError: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := c.callTool(t, "sample", nil, nil)
			req := c.recv(t)
			if req.Method != "sampling/createMessage" || !req.hasID() {
				t.Fatalf("got %s id %s, want a sampling/createMessage request", req.Method, req.ID)
			}
			var p struct {
				Messages []struct {
					Role    string `json:"role"`
					Content struct {
						Text string `json:"text"`
					} `json:"content"`
				} `json:"messages"`
				MaxTokens int `json:"maxTokens"`
			}
			if err := json.Unmarshal(req.Params, &p); err != nil || len(p.Messages) != 1 || p.Messages[0].Role != "user" || p.MaxTokens == 0 {
				t.Fatalf("sampling params %s: want one user message and maxTokens", req.Params)
			}
			resp := map[string]any{"jsonrpc": "2.0", "id": req.ID}
			for k, v := range tt.response {
				resp[k] = v
			}
			c.send(t, resp)
			text, isError := c.toolText(t, id)
			if text != tt.wantText || isError != tt.wantIsError {
				t.Errorf("sample = %s (isError %v), want %s (isError %v)", text, isError, tt.wantText, tt.wantIsError)
			}
		})
	}
}

func TestNotifications(t *testing.T) {
	c := start(t)
	tests := []struct {
		name       string
		tool       string
		args       map[string]any
		wantMethod string
		wantParams string
	}{
		{
			name:       "log",
			tool:       "log",
			args:       map[string]any{"level": "warning", "text": "disk almost full"},
			wantMethod: "notifications/message",
			wantParams: `{"data":"disk almost full","level":"warning","logger":"testserver"}`,
		},
		{name: "list_changed", tool: "list_changed", wantMethod: "notifications/tools/list_changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, before := c.await(t, c.callTool(t, tt.tool, tt.args, nil))
			if _, isError := decodeToolResult(t, resp); isError {
				t.Errorf("%s failed", tt.tool)
			}
			if len(before) != 1 || before[0].Method != tt.wantMethod || string(before[0].Params) != tt.wantParams || before[0].hasID() {
				t.Errorf("%s sent %v, want one %s notification with params %s", tt.tool, before, tt.wantMethod, tt.wantParams)
			}
		})
	}
}

func TestMisbehaviour(t *testing.T) {
	c := start(t)

	c.callTool(t, "garbage", nil, nil)
	if l := string(c.line(t)); l != Garbage {
		t.Errorf("garbage wrote %q, want %q", l, Garbage)
	}

	const size = 5 << 20
	text, _ := c.toolText(t, c.callTool(t, "huge", map[string]any{"bytes": size}, nil))
	if len(text) != size || strings.Trim(text, "x") != "" {
		t.Errorf("huge returned %d bytes, want %d", len(text), size)
	}

	const lines, perLine = 2000, 100
	text, _ = c.toolText(t, c.callTool(t, "flood_stderr", map[string]any{"lines": lines, "bytes_per_line": perLine}, nil))
	if want := fmt.Sprintf("wrote %d lines of %d bytes to stderr", lines, perLine); text != want {
		t.Errorf("flood_stderr = %q, want %q", text, want)
	}
	if code := c.wait(t); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	var flood []string
	for l := range strings.Lines(c.stderr.String()) {
		if strings.HasPrefix(l, "stderr line ") {
			flood = append(flood, l)
		}
	}
	if len(flood) != lines {
		t.Fatalf("stderr has %d flood lines, want %d", len(flood), lines)
	}
	for i, l := range flood {
		if len(l) != perLine+1 || !strings.HasPrefix(l, fmt.Sprintf("stderr line %d x", i)) {
			t.Errorf("flood line %d = %q, want %d bytes starting %q", i, l, perLine, fmt.Sprintf("stderr line %d ", i))
			break
		}
	}
}

func TestEnvKnobs(t *testing.T) {
	t.Run("banner", func(t *testing.T) {
		c := start(t, EnvBanner+"=1")
		if l := string(c.line(t)); l != Banner {
			t.Errorf("first line = %q, want the banner", l)
		}
		c.await(t, c.call(t, "ping", nil))
	})
	t.Run("no init", func(t *testing.T) {
		c := start(t, EnvNoInit+"=1")
		c.call(t, "initialize", map[string]any{"protocolVersion": "2025-11-25"})
		// Lines are handled in order, so an initialize answer would come
		// first.
		if _, before := c.await(t, c.call(t, "ping", nil)); len(before) != 0 {
			t.Errorf("got %v, want no answer to initialize", before)
		}
	})
	t.Run("startup delay", func(t *testing.T) {
		begin := time.Now()
		c := start(t, EnvStartupDelay+"=200ms")
		c.await(t, c.call(t, "ping", nil))
		if d := time.Since(begin); d < 200*time.Millisecond {
			t.Errorf("first answer after %s, want at least the 200ms delay", d)
		}
	})
	t.Run("bad startup delay", func(t *testing.T) {
		c := start(t, EnvStartupDelay+"=soon")
		if code := c.wait(t); code != 2 {
			t.Errorf("exit code = %d, want 2", code)
		}
	})
	t.Run("ignore term", func(t *testing.T) {
		c := start(t, EnvIgnoreTerm+"=1")
		c.await(t, c.call(t, "ping", nil)) // SIGTERM is ignored from here on
		pid := c.cmd.Process.Pid
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		c.await(t, c.call(t, "ping", nil))
		c.stdin.Close()
		c.stderr.WaitFor(t, "stdin closed", readTimeout)
		select {
		case <-c.exited:
			t.Fatalf("server exited after stdin EOF: %v", c.err)
		default:
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code := c.wait(t); code != -1 {
			t.Errorf("exit code = %d, want -1 (killed by a signal)", code)
		}
	})
}

func TestWhoAmIAndSpawnChild(t *testing.T) {
	c := start(t, "MCPGW_TESTSERVER_PROBE=probe value")
	text, _ := c.toolText(t, c.callTool(t, "whoami", nil, nil))
	var who WhoAmI
	if err := json.Unmarshal([]byte(text), &who); err != nil {
		t.Fatalf("decoding whoami %q: %v", text, err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	want := WhoAmI{PID: c.cmd.Process.Pid, PPID: os.Getpid(), PGID: syscall.Getpgrp(), Cwd: cwd}
	got := who
	got.Env = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("whoami (-want +got):\n%s", diff)
	}
	if who.Env["MCPGW_TESTSERVER_PROBE"] != "probe value" || who.Env[EnvVar] != "1" {
		t.Errorf("whoami env lacks the test's variables: %v", who.Env)
	}

	text, _ = c.toolText(t, c.callTool(t, "spawn_child", nil, nil))
	var spawned SpawnChild
	if err := json.Unmarshal([]byte(text), &spawned); err != nil {
		t.Fatalf("decoding spawn_child %q: %v", text, err)
	}
	pgid, err := syscall.Getpgid(spawned.PID)
	if err != nil {
		t.Fatalf("grandchild %d: %v", spawned.PID, err)
	}
	if pgid != who.PGID {
		t.Errorf("grandchild process group = %d, want the server's %d", pgid, who.PGID)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", spawned.PID))
	if err == nil && !bytes.Contains(environ, []byte(EnvMode+"="+ModeSleeper)) {
		t.Errorf("grandchild environment lacks %s=%s", EnvMode, ModeSleeper)
	}
	// The server exits at EOF; the sleeper, which holds the server's stderr
	// open, does not. Stdout closing shows the server is gone.
	c.stdin.Close()
	for l := range c.lines {
		t.Errorf("unexpected output %s", l)
	}
	if err := syscall.Kill(spawned.PID, 0); err != nil {
		t.Errorf("sleeper %d died with the server: %v", spawned.PID, err)
	}
	if err := syscall.Kill(spawned.PID, syscall.SIGKILL); err != nil {
		t.Errorf("killing sleeper %d: %v", spawned.PID, err)
	}
	if code := c.wait(t); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}
