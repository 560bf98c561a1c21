package testserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// progressInterval is how often sleep reports progress.
const progressInterval = 50 * time.Millisecond

// WhoAmI is the JSON text the whoami tool answers with.
type WhoAmI struct {
	PID  int               `json:"pid"`
	PPID int               `json:"ppid"`
	PGID int               `json:"pgid"`
	Cwd  string            `json:"cwd"`
	Env  map[string]string `json:"env"`
}

// SpawnChild is the JSON text the spawn_child tool answers with.
type SpawnChild struct {
	// PID is the grandchild's process id. The grandchild shares the test
	// server's process group.
	PID int `json:"pid"`
}

// toolList is the tools/list result: every tool with its input schema.
var toolList = []map[string]any{
	tool("echo", "Return the text.", props{"text": {"type": "string"}}, "text"),
	tool("sleep", "Sleep ms milliseconds, sending progress every 50ms if asked; no response if cancelled.", props{"ms": {"type": "integer", "minimum": 0}}, "ms"),
	tool("stuck", "Sleep ms milliseconds ignoring cancellation, then answer.", props{"ms": {"type": "integer", "minimum": 0}}, "ms"),
	tool("wedge", "Answer nothing at all (not even ping) for ms milliseconds, ignoring cancellation, then answer.", props{"ms": {"type": "integer", "minimum": 0}}, "ms"),
	tool("touch", "Send notifications/resources/updated for uri, then answer.", props{"uri": {"type": "string"}}, "uri"),
	tool("crash", "Exit immediately with the given code, without answering.", props{"code": {"type": "integer"}}),
	tool("garbage", "Write a non-JSON line to stdout and never answer.", nil),
	tool("flood_stderr", "Write lines lines of bytes_per_line bytes to stderr, then answer.", props{"lines": {"type": "integer", "minimum": 0}, "bytes_per_line": {"type": "integer", "minimum": 0}}),
	tool("huge", "Answer with a text content of the given number of bytes.", props{"bytes": {"type": "integer", "minimum": 0}}, "bytes"),
	tool("log", "Send notifications/message, then answer.", props{"level": {"type": "string"}, "text": {"type": "string"}}),
	tool("sample", "Ask the client for sampling/createMessage and answer with its result or error JSON.", props{"text": {"type": "string"}}),
	tool("list_changed", "Send notifications/tools/list_changed, then answer.", nil),
	tool("whoami", "Answer with pid, ppid, pgid, cwd and environment as JSON.", nil),
	tool("spawn_child", "Start a grandchild that sleeps forever in the same process group; answer with its pid.", nil),
	tool("meta", "Answer with the request's params._meta as JSON text (trace context forwarding).", nil),
}

func init() { toolList = append(toolList, probeTools...) }

type props map[string]map[string]any

func tool(name, description string, properties props, required ...string) map[string]any {
	schema := map[string]any{"type": "object"}
	if properties != nil {
		schema["properties"] = properties
	}
	if len(required) > 0 {
		schema["required"] = required
	}
	return map[string]any{"name": name, "description": description, "inputSchema": schema}
}

// textResult is a tools/call result with one text content.
func textResult(text string, isError bool) map[string]any {
	res := map[string]any{"content": []map[string]any{{"type": "text", "text": text}}}
	if isError {
		res["isError"] = true
	}
	return res
}

// callTool runs one tools/call request. ctx is cancelled by
// notifications/cancelled for this request; once it is, nothing more is
// written for the request.
func (s *server) callTool(ctx context.Context, m *message) {
	var p struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
		Meta      struct {
			ProgressToken json.RawMessage `json:"progressToken"`
		} `json:"_meta"`
	}
	if err := json.Unmarshal(m.Params, &p); err != nil {
		s.replyError(ctx, m.ID, codeInvalidParams, "invalid tools/call params: "+err.Error())
		return
	}
	args := func(v any) bool {
		if len(p.Arguments) == 0 {
			return true
		}
		if err := json.Unmarshal(p.Arguments, v); err != nil {
			s.replyError(ctx, m.ID, codeInvalidParams, fmt.Sprintf("invalid arguments for %s: %v", p.Name, err))
			return false
		}
		return true
	}

	if s.probe(ctx, m.ID, p.Name, p.Arguments) {
		return
	}
	switch p.Name {
	case "meta":
		var raw struct {
			Meta json.RawMessage `json:"_meta"`
		}
		_ = json.Unmarshal(m.Params, &raw)
		s.reply(ctx, m.ID, textResult(string(raw.Meta), false))
	case "echo":
		var a struct {
			Text string `json:"text"`
		}
		if args(&a) {
			s.reply(ctx, m.ID, textResult(a.Text, false))
		}
	case "sleep":
		var a struct {
			MS int `json:"ms"`
		}
		if args(&a) {
			s.sleep(ctx, m.ID, time.Duration(a.MS)*time.Millisecond, p.Meta.ProgressToken)
		}
	case "stuck":
		var a struct {
			MS int `json:"ms"`
		}
		if args(&a) {
			time.Sleep(time.Duration(a.MS) * time.Millisecond)
			s.reply(context.Background(), m.ID, textResult(fmt.Sprintf("was stuck for %dms", a.MS), false))
		}
	case "wedge":
		var a struct {
			MS int `json:"ms"`
		}
		if args(&a) {
			s.writeMu.Lock() // every other answer waits: a wedged server
			time.Sleep(time.Duration(a.MS) * time.Millisecond)
			s.writeMu.Unlock()
			s.reply(context.Background(), m.ID, textResult(fmt.Sprintf("was wedged for %dms", a.MS), false))
		}
	case "touch":
		var a struct {
			URI string `json:"uri"`
		}
		if args(&a) {
			s.notify(ctx, "notifications/resources/updated", map[string]any{"uri": a.URI})
			s.reply(ctx, m.ID, textResult("touched "+a.URI, false))
		}
	case "crash":
		var a struct {
			Code int `json:"code"`
		}
		if args(&a) {
			select {
			case s.exit <- a.Code:
			default: // another crash is already under way
			}
		}
	case "garbage":
		s.writeLine(ctx, []byte(Garbage))
	case "flood_stderr":
		var a struct {
			Lines        int `json:"lines"`
			BytesPerLine int `json:"bytes_per_line"`
		}
		if args(&a) {
			if err := s.floodStderr(a.Lines, a.BytesPerLine); err != nil {
				s.reply(ctx, m.ID, textResult(err.Error(), true))
				return
			}
			s.reply(ctx, m.ID, textResult(fmt.Sprintf("wrote %d lines of %d bytes to stderr", a.Lines, a.BytesPerLine), false))
		}
	case "huge":
		var a struct {
			Bytes int `json:"bytes"`
		}
		if args(&a) {
			if a.Bytes < 0 {
				s.replyError(ctx, m.ID, codeInvalidParams, "bytes must not be negative")
				return
			}
			s.reply(ctx, m.ID, textResult(strings.Repeat("x", a.Bytes), false))
		}
	case "log":
		var a struct {
			Level string `json:"level"`
			Text  string `json:"text"`
		}
		if args(&a) {
			if a.Level == "" {
				a.Level = "info"
			}
			s.notify(ctx, "notifications/message", map[string]any{"level": a.Level, "logger": "testserver", "data": a.Text})
			s.reply(ctx, m.ID, textResult("logged", false))
		}
	case "sample":
		var a struct {
			Text string `json:"text"`
		}
		if args(&a) {
			s.sample(ctx, m.ID, a.Text)
		}
	case "list_changed":
		s.notify(ctx, "notifications/tools/list_changed", nil)
		s.reply(ctx, m.ID, textResult("sent notifications/tools/list_changed", false))
	case "whoami":
		s.whoami(ctx, m.ID)
	case "spawn_child":
		s.spawnChild(ctx, m.ID)
	default:
		// server/tools#error-handling: an unknown tool is a protocol error.
		s.replyError(ctx, m.ID, codeInvalidParams, "Unknown tool: "+p.Name)
	}
}

// sleep answers after d, sending notifications/progress every
// progressInterval if token is set (basic/utilities/progress). If ctx is
// cancelled first it returns without answering.
func (s *server) sleep(ctx context.Context, id json.RawMessage, d time.Duration, token json.RawMessage) {
	start := time.Now()
	timer := time.NewTimer(d)
	defer timer.Stop()
	ticker := time.NewTicker(progressInterval)
	defer ticker.Stop()
	hasToken := len(token) > 0 && !bytes.Equal(token, []byte("null"))
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			s.reply(ctx, id, textResult(fmt.Sprintf("slept %dms", d.Milliseconds()), false))
			return
		case <-ticker.C:
			if hasToken {
				s.notify(ctx, "notifications/progress", map[string]any{
					"progressToken": token,
					"progress":      time.Since(start).Milliseconds(),
					"total":         d.Milliseconds(),
				})
			}
		}
	}
}

// floodStderr writes lines lines of exactly perLine bytes (plus the newline)
// to stderr. Line i starts "stderr line i " (cut to perLine) and is padded
// with 'x', so tests can tell which lines survived.
func (s *server) floodStderr(lines, perLine int) error {
	if lines < 0 || perLine < 0 {
		return fmt.Errorf("lines and bytes_per_line must not be negative")
	}
	s.stderrMu.Lock()
	defer s.stderrMu.Unlock()
	w := bufio.NewWriterSize(s.stderr, 64<<10)
	pad := strings.Repeat("x", perLine)
	for i := range lines {
		prefix := fmt.Sprintf("stderr line %d ", i)
		line := prefix + pad[min(len(prefix), perLine):]
		if _, err := w.WriteString(line[:perLine] + "\n"); err != nil {
			return fmt.Errorf("writing stderr: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing stderr: %w", err)
	}
	return nil
}

// sample sends sampling/createMessage to the client, waits for its answer
// and answers the tool call with the compact JSON of the response's result,
// or of its error with isError set.
func (s *server) sample(ctx context.Context, id json.RawMessage, text string) {
	if text == "" {
		text = "hello from mcpgw-testserver"
	}
	resp, err := s.request(ctx, "sampling/createMessage", map[string]any{
		"messages":  []map[string]any{{"role": "user", "content": map[string]any{"type": "text", "text": text}}},
		"maxTokens": 16,
	})
	if err != nil {
		return // cancelled: no response
	}
	raw, isError := resp.Result, false
	if len(resp.Error) > 0 {
		raw, isError = resp.Error, true
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		s.reply(ctx, id, textResult(fmt.Sprintf("client sent invalid JSON: %v", err), true))
		return
	}
	s.reply(ctx, id, textResult(b.String(), isError))
}

func (s *server) whoami(ctx context.Context, id json.RawMessage) {
	cwd, err := os.Getwd()
	if err != nil {
		s.reply(ctx, id, textResult(fmt.Sprintf("getting working directory: %v", err), true))
		return
	}
	w := WhoAmI{PID: os.Getpid(), PPID: os.Getppid(), PGID: syscall.Getpgrp(), Cwd: cwd, Env: map[string]string{}}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		w.Env[k] = v
	}
	b, err := json.Marshal(w)
	if err != nil {
		s.reply(ctx, id, textResult(fmt.Sprintf("marshaling whoami: %v", err), true))
		return
	}
	s.reply(ctx, id, textResult(string(b), false))
}

// spawnChild re-executes this binary as a sleeper (see [ModeSleeper]). The
// grandchild stays in our process group, as a careless server's helper
// would, so the gateway must stop the whole group; its stdin and stdout are
// /dev/null and its stderr is ours, so it also keeps the stderr pipe open.
func (s *server) spawnChild(ctx context.Context, id json.RawMessage) {
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), EnvMode+"="+ModeSleeper)
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		s.reply(ctx, id, textResult(fmt.Sprintf("starting grandchild: %v", err), true))
		return
	}
	pid := cmd.Process.Pid
	// Reap the grandchild when it is killed, so it does not linger as a
	// zombie that still looks alive to a test while this server runs.
	go func() {
		if err := cmd.Wait(); err != nil {
			s.logf("grandchild %d: %v", pid, err)
		}
	}()
	b, err := json.Marshal(SpawnChild{PID: pid})
	if err != nil {
		s.reply(ctx, id, textResult(fmt.Sprintf("marshaling pid: %v", err), true))
		return
	}
	s.reply(ctx, id, textResult(string(b), false))
}
