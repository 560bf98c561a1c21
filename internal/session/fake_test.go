package session

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/backend"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// The in-memory seam: a Launcher whose processes are io.Pipe pairs driven
// by a scripted MCP server in a goroutine, so that the session layer's
// rules can be tested inside testing/synctest bubbles, without a real
// process or a real clock. The end-to-end tests in internal/gateway prove
// the same rules against real processes.

// script says how a fake server behaves. Each hook may be nil (the
// default noted). Hooks run on the server's goroutine, one message at a
// time, in stdin order.
type script struct {
	// initialize answers the initialize request; default: a valid result
	// for protocol version 2025-11-25 with tools capabilities.
	initialize func(s *fakeServer, req *jsonrpc.Message)
	// request answers any other request; default: echo its params as the
	// result ({"echo": params}).
	request func(s *fakeServer, req *jsonrpc.Message)
	// message sees every other message (notifications, responses to the
	// server's own requests); default: nothing.
	message func(s *fakeServer, m *jsonrpc.Message)
	// lingers keeps the process running after its stdin is closed, until
	// it is killed at the end of its kill grace; default: it exits when
	// stdin closes.
	lingers bool
}

// fakeServer is the scripted side of one fake process.
type fakeServer struct {
	n      int // which start this is, from 1
	script *script
	out    *io.PipeWriter
	proc   *fakeProc

	mu       sync.Mutex
	received []*jsonrpc.Message
}

// reply answers request req with result (a JSON text).
func (s *fakeServer) reply(req *jsonrpc.Message, result string) {
	s.send(&jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: req.ID, Result: json.RawMessage(result)})
}

// send writes a message to the gateway.
func (s *fakeServer) send(m *jsonrpc.Message) {
	_, _ = s.out.Write(append(jsonrpc.Encode(m), '\n'))
}

// crash makes the process exit at once with status 1.
func (s *fakeServer) crash() { s.proc.exit(errors.New("exit status 1")) }

// all returns every message the server received.
func (s *fakeServer) all() []*jsonrpc.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*jsonrpc.Message(nil), s.received...)
}

// got returns the messages the server received with method.
func (s *fakeServer) got(method string) []*jsonrpc.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*jsonrpc.Message
	for _, m := range s.received {
		if m.Method == method {
			out = append(out, m)
		}
	}
	return out
}

func (s *fakeServer) run(in io.Reader) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m, err := jsonrpc.Parse(sc.Bytes())
		if err != nil {
			continue
		}
		s.mu.Lock()
		s.received = append(s.received, m)
		s.mu.Unlock()
		switch {
		case m.Kind == jsonrpc.KindRequest && m.Method == "initialize":
			if s.script.initialize != nil {
				s.script.initialize(s, m)
			} else {
				s.reply(m, `{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"fake","version":"1"}}`)
			}
		case m.Kind == jsonrpc.KindRequest:
			if s.script.request != nil {
				s.script.request(s, m)
			} else {
				s.reply(m, `{"echo":`+string(orNull(m.Params))+`}`)
			}
		default:
			if s.script.message != nil {
				s.script.message(s, m)
			}
		}
	}
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

// fakeProc implements backend.Process over pipes. Stop follows the real
// sequence in spirit: stdin is closed (the script's loop ends and the
// process exits), and after the grace the process is killed.
type fakeProc struct {
	id      string
	grace   time.Duration
	stdin   *io.PipeWriter
	stdout  *io.PipeReader
	stderr  *io.PipeReader
	outW    *io.PipeWriter
	errW    *io.PipeWriter
	done    chan struct{}
	once    sync.Once
	exitErr error
}

type pipeStdin struct{ *io.PipeWriter }

func (pipeStdin) SetWriteDeadline(time.Time) error { return nil }

func (p *fakeProc) Stdin() backend.WriteDeadliner { return pipeStdin{p.stdin} }
func (p *fakeProc) Stdout() io.ReadCloser         { return p.stdout }
func (p *fakeProc) Stderr() io.ReadCloser         { return p.stderr }
func (p *fakeProc) Done() <-chan struct{}         { return p.done }
func (p *fakeProc) ID() string                    { return p.id }

func (p *fakeProc) ExitErr() error {
	<-p.done
	return p.exitErr
}

// exit ends the process with err (nil: exit status 0).
func (p *fakeProc) exit(err error) {
	p.once.Do(func() {
		p.exitErr = err
		_ = p.outW.Close()
		_ = p.errW.Close()
		close(p.done)
	})
}

func (p *fakeProc) Stop() error {
	_ = p.stdin.Close()
	t := time.NewTimer(p.grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.exit(errors.New("signal: killed"))
	}
	return nil
}

func (p *fakeProc) CloseOutputs() {
	_ = p.stdout.Close()
	_ = p.stderr.Close()
}

// fakeLauncher starts fake processes; the n-th start (from 1) runs the
// script scripts returns for n. It implements Launcher.
type fakeLauncher struct {
	scripts func(n int) *script
	// fail, when not nil, makes start n fail with its error.
	fail func(n int) error
	log  *slog.Logger
	wg   sync.WaitGroup // the scripted servers' goroutines

	mu      sync.Mutex
	started []*fakeServer
}

func (l *fakeLauncher) Start(_ context.Context, sc *config.Server, h backend.Handler) (*backend.Backend, error) {
	l.mu.Lock()
	n := len(l.started) + 1
	if l.fail != nil {
		if err := l.fail(n); err != nil {
			l.started = append(l.started, nil)
			l.mu.Unlock()
			return nil, err
		}
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	p := &fakeProc{id: "fake-" + strconv.Itoa(n), grace: sc.Timeouts.KillGrace, stdin: inW, stdout: outR, stderr: errR,
		outW: outW, errW: errW, done: make(chan struct{})}
	scr := &script{}
	if l.scripts != nil {
		scr = l.scripts(n)
	}
	s := &fakeServer{n: n, script: scr, out: outW, proc: p}
	l.started = append(l.started, s)
	l.mu.Unlock()
	l.wg.Go(func() {
		s.run(inR)
		if !scr.lingers {
			p.exit(nil) // stdin closed: the server exits normally
		}
	})
	return backend.New(p, h, backend.Options{Name: sc.Name, Runtime: string(sc.Runtime), Logger: l.log}), nil
}

// starts is how many processes were started (or failed to start).
func (l *fakeLauncher) starts() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.started)
}

// server returns the n-th started server (from 1).
func (l *fakeLauncher) server(n int) *fakeServer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.started[n-1]
}

// alive counts the started processes that have not exited.
func (l *fakeLauncher) alive() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.started {
		if s == nil {
			continue
		}
		select {
		case <-s.proc.done:
		default:
			n++
		}
	}
	return n
}

// layer is a Manager over a fake launcher, for one test.
type layer struct {
	t    testing.TB
	m    *Manager
	l    *fakeLauncher
	logs *testutil.Buffer
}

// newLayer builds a manager for the servers in yaml (a config body whose
// servers need no real command) over a fake launcher, opens it, and closes
// it when the test ends, checking that no fake process is left.
func newLayer(t testing.TB, yaml string, l *fakeLauncher) *layer {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &testutil.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l.log = log
	m := NewManager(cfg, l, &Options{Logger: log})
	m.Open()
	ly := &layer{t: t, m: m, l: l, logs: logs}
	t.Cleanup(func() {
		m.Close()
		l.wg.Wait()
		if n := l.alive(); n != 0 {
			t.Errorf("%d fake processes still alive after Close", n)
		}
	})
	return ly
}

// initialize opens a session-era session on server.
func (ly *layer) initialize(server string) *Session {
	ly.t.Helper()
	s, resp, err := ly.m.Server(server).Initialize(context.Background(), Caller{Identity: "alice", Client: "test/1"}, request(0, "initialize",
		`{"protocolVersion":"2025-11-25","capabilities":{"sampling":{}},"clientInfo":{"name":"test","version":"1"}}`))
	if err != nil {
		ly.t.Fatalf("initialize %s: %v", server, err)
	}
	if s == nil {
		ly.t.Fatalf("initialize %s refused: %s", server, jsonrpc.Encode(resp))
	}
	return s
}

// request is a client request.
func request(id int, method, params string) *jsonrpc.Message {
	m := &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage(strconv.Itoa(id)), Method: method}
	if params != "" {
		m.Params = json.RawMessage(params)
	}
	return m
}

// outcomes returns what reached sink: the responses and, separately, the
// other messages.
func outcomes(sink *Sink) (responses, others []*jsonrpc.Message) {
	msgs, _, _ := sink.Take()
	for _, raw := range msgs {
		m, err := jsonrpc.Parse(raw)
		if err != nil {
			panic(fmt.Sprintf("sink holds a message that does not parse: %s", raw))
		}
		if m.Kind == jsonrpc.KindResponse {
			responses = append(responses, m)
		} else {
			others = append(others, m)
		}
	}
	return responses, others
}

// errorCode is the JSON-RPC error code of a response, or 0.
func errorCode(m *jsonrpc.Message) int {
	if m.Error == nil {
		return 0
	}
	var eo jsonrpc.ErrorObject
	_ = json.Unmarshal(m.Error, &eo)
	return eo.Code
}

// logCount counts the log records with message msg.
func (ly *layer) logCount(msg string) int {
	n := 0
	for _, l := range ly.logs.JSONLines() {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}
