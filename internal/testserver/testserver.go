// Package testserver owns a deliberately misbehaving stdio MCP server for
// the gateway's tests. It speaks newline-delimited JSON-RPC by hand, without
// the SDK, so that each misbehaviour (crashing, writing garbage, flooding
// stderr, ignoring SIGTERM, never answering initialize, leaving a grandchild
// behind, …) is exact and under the test's control.
//
// Test packages run it by re-executing their own test binary:
//
//	func TestMain(m *testing.M) {
//		if os.Getenv(testserver.EnvVar) == "1" {
//			os.Exit(testserver.Main())
//		}
//		os.Exit(m.Run())
//	}
//
// and configuring the gateway to start os.Args[0] with EnvVar=1 in its
// environment, plus any of the Env* knobs.
//
// The server is meant for Unix: whoami reports the process group.
package testserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// EnvVar is the environment variable that, set to "1", makes a test binary
// run [Main] instead of its tests.
const EnvVar = "MCPGW_TESTSERVER"

// Environment knobs, read once when [Main] starts.
const (
	// EnvIgnoreTerm set to "1" makes the server ignore SIGTERM and keep
	// running after stdin reaches EOF, so only SIGKILL stops it.
	EnvIgnoreTerm = "MCPGW_TESTSERVER_IGNORE_TERM"
	// EnvStartupDelay holds a Go duration ("2s") to sleep before reading
	// stdin.
	EnvStartupDelay = "MCPGW_TESTSERVER_STARTUP_DELAY"
	// EnvCrashIfExists names a file; while it exists the server exits with
	// status 3 as soon as it starts (a crash loop the test can end).
	EnvCrashIfExists = "MCPGW_TESTSERVER_CRASH_IF_EXISTS"
	// EnvNoInit set to "1" makes the server never answer initialize.
	EnvNoInit = "MCPGW_TESTSERVER_NO_INIT"
	// EnvBanner set to "1" makes the server print [Banner] to stdout before
	// anything else.
	EnvBanner = "MCPGW_TESTSERVER_BANNER"
	// EnvMode selects what the process is; [ModeSleeper] is the only mode
	// besides the default server.
	EnvMode = "MCPGW_TESTSERVER_MODE"
	// EnvPrintEnv names an environment variable whose value the server
	// prints on stderr when it starts, as "NAME=value" (a server that
	// leaks its token to its log).
	EnvPrintEnv = "MCPGW_TESTSERVER_PRINT_ENV"
)

// ModeSleeper is the [EnvMode] value of the grandchild that spawn_child
// starts: it sleeps forever, never reading stdin.
const ModeSleeper = "sleeper"

// Lines the server writes to stdout that are not JSON-RPC.
const (
	// Banner is the line EnvBanner prints.
	Banner = "mcpgw-testserver: starting (this line is not JSON-RPC)"
	// Garbage is the line the garbage tool prints.
	Garbage = "this is not json"
)

// Identity and protocol constants of the initialize result.
const (
	// Name is the serverInfo.name the server reports.
	Name = "mcpgw-testserver"
	// LatestProtocolVersion is what the server answers when the client asks
	// for a version it does not know.
	LatestProtocolVersion = "2025-11-25"
)

// supportedVersions are the MCP revisions the server agrees to speak
// (basic/lifecycle#version-negotiation): it echoes a supported request and
// otherwise offers its latest.
var supportedVersions = map[string]bool{
	"2024-11-05": true,
	"2025-03-26": true,
	"2025-06-18": true,
	"2025-11-25": true,
}

// maxLineLength bounds one line read from stdin.
const maxLineLength = 16 << 20

// JSON-RPC 2.0 error codes the server uses.
const (
	codeParseError     = -32700
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
)

// Main runs the test server on os.Stdin, os.Stdout and os.Stderr, configured
// by the Env* knobs, and returns the process exit code: 0 after stdin reaches
// EOF, the requested code after the crash tool, 2 for a bad knob and 1 if
// stdin cannot be read. Main is meant to be the whole process: pass its
// result to os.Exit.
func Main() int {
	if os.Getenv(EnvMode) == ModeSleeper {
		sleepForever()
	}
	var delay time.Duration
	if v := os.Getenv(EnvStartupDelay); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testserver: %s: %v\n", EnvStartupDelay, err)
			return 2
		}
		delay = d
	}
	if f := os.Getenv(EnvCrashIfExists); f != "" {
		if _, err := os.Stat(f); err == nil {
			fmt.Fprintf(os.Stderr, "testserver: %s exists: crashing at start\n", f)
			return 3
		}
	}
	if err := describeEcho(os.Getenv(EnvEchoDescriptionFile)); err != nil {
		fmt.Fprintf(os.Stderr, "testserver: %s: %v\n", EnvEchoDescriptionFile, err)
		return 2
	}
	if name := os.Getenv(EnvPrintEnv); name != "" {
		fmt.Fprintf(os.Stderr, "testserver: %s=%s\n", name, os.Getenv(name))
	}
	ignoreTerm := os.Getenv(EnvIgnoreTerm) == "1"
	if ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	if os.Getenv(EnvBanner) == "1" {
		if _, err := fmt.Fprintln(os.Stdout, Banner); err != nil {
			fmt.Fprintf(os.Stderr, "testserver: writing banner: %v\n", err)
			return 1
		}
	}
	time.Sleep(delay)

	s := &server{
		out:      os.Stdout,
		stderr:   os.Stderr,
		noInit:   os.Getenv(EnvNoInit) == "1",
		inflight: make(map[string]context.CancelFunc),
		pending:  make(map[string]chan *message),
		exit:     make(chan int, 1),
	}
	code, crashed := s.serve(os.Stdin)
	if ignoreTerm && !crashed {
		// A server that ignores SIGTERM also ignores its stdin closing: the
		// gateway has to escalate to SIGKILL.
		s.logf("stdin closed; %s=1, so running until SIGKILL", EnvIgnoreTerm)
		sleepForever()
	}
	return code
}

func sleepForever() {
	// A timer keeps the runtime from declaring a deadlock, which select{}
	// with no other goroutines would.
	for {
		time.Sleep(time.Hour)
	}
}

// message is any JSON-RPC 2.0 message; which fields are set tells which kind.
type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

// hasID reports whether m carries a non-null id.
func (m *message) hasID() bool {
	return len(m.ID) > 0 && !bytes.Equal(m.ID, []byte("null"))
}

// outMessage is a JSON-RPC 2.0 message the server writes.
type outMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  any             `json:"params,omitempty"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// server is one run of the test server.
type server struct {
	out    io.Writer
	noInit bool
	exit   chan int // receives the crash tool's exit code

	// writeMu serialises writes to out, and orders them with cancellation:
	// once a request is cancelled under writeMu, nothing more is written for
	// it.
	writeMu sync.Mutex

	// stderrMu keeps lines written to stderr whole.
	stderrMu sync.Mutex
	stderr   io.Writer

	mu       sync.Mutex
	inflight map[string]context.CancelFunc // tools/call requests by id key
	pending  map[string]chan *message      // server→client requests by id key
	nextID   int
	// clientName is the clientInfo name of initialize.
	clientName string
}

// serve reads messages from in until EOF or a crash and returns the exit
// code, and whether it is the crash tool's.
func (s *server) serve(in io.Reader) (code int, crashed bool) {
	lines := make(chan []byte)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 64<<10), maxLineLength)
		for sc.Scan() {
			lines <- bytes.Clone(sc.Bytes())
		}
		readErr <- sc.Err()
		close(lines)
	}()
	for {
		select {
		case code := <-s.exit:
			return code, true
		case line, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil {
					s.logf("reading stdin: %v", err)
					return 1, false
				}
				return 0, false
			}
			s.handleLine(line)
		}
	}
}

// handleLine dispatches one line from stdin. Requests that may block run in
// their own goroutine; everything else is answered before the next line is
// read.
func (s *server) handleLine(line []byte) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		s.logf("unparseable line %.200q: %v", line, err)
		s.send(context.Background(), &outMessage{ID: json.RawMessage("null"), Error: &rpcError{codeParseError, "Parse error: " + err.Error()}})
		return
	}
	switch {
	case m.Method == "" && m.hasID():
		s.deliverResponse(&m)
	case m.Method == "":
		s.logf("message with neither method nor id: %.200q", line)
	case !m.hasID():
		s.handleNotification(&m)
	default:
		s.handleRequest(&m)
	}
}

func (s *server) handleNotification(m *message) {
	switch m.Method {
	case "notifications/cancelled":
		// basic/utilities/cancellation: the request may already be done, in
		// which case there is nothing to do.
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
		}
		if err := json.Unmarshal(m.Params, &p); err != nil {
			s.logf("bad notifications/cancelled params: %v", err)
			return
		}
		s.mu.Lock()
		cancel := s.inflight[idKey(p.RequestID)]
		s.mu.Unlock()
		// Tests read this line to see that a cancellation arrived.
		s.logf("cancelled request %s (in flight: %v)", p.RequestID, cancel != nil)
		if cancel != nil {
			s.writeMu.Lock()
			cancel()
			s.writeMu.Unlock()
		}
	default:
		// notifications/initialized and anything else need no reaction.
	}
}

func (s *server) handleRequest(m *message) {
	switch m.Method {
	case "initialize":
		if s.noInit {
			return
		}
		var p struct {
			ProtocolVersion string `json:"protocolVersion"`
			ClientInfo      struct {
				Name string `json:"name"`
			} `json:"clientInfo"`
		}
		if err := json.Unmarshal(m.Params, &p); err != nil {
			s.replyError(context.Background(), m.ID, codeInvalidParams, "invalid initialize params: "+err.Error())
			return
		}
		s.mu.Lock()
		s.clientName = p.ClientInfo.Name
		s.mu.Unlock()
		version := LatestProtocolVersion
		if supportedVersions[p.ProtocolVersion] {
			version = p.ProtocolVersion
		}
		s.reply(context.Background(), m.ID, map[string]any{
			"protocolVersion": version,
			"capabilities": map[string]any{
				"tools":     map[string]any{"listChanged": true},
				"logging":   map[string]any{},
				"resources": map[string]any{"subscribe": true},
			},
			"serverInfo": map[string]any{"name": Name, "version": "1"},
		})
	case "ping", "logging/setLevel":
		// logging/setLevel is accepted because the server declares the
		// logging capability (server/utilities/logging).
		s.reply(context.Background(), m.ID, map[string]any{})
	case "tools/list":
		s.reply(context.Background(), m.ID, map[string]any{"tools": s.tools()})
	case "resources/subscribe", "resources/unsubscribe":
		// Any URI may be subscribed; the touch tool sends the updates.
		// Tests read this line to see subscriptions arrive.
		s.logf("%s %s", m.Method, m.Params)
		s.reply(context.Background(), m.ID, map[string]any{})
	case "tools/call":
		key := idKey(m.ID)
		ctx, cancel := context.WithCancel(context.Background())
		s.mu.Lock()
		s.inflight[key] = cancel
		s.mu.Unlock()
		go func() {
			defer func() {
				s.mu.Lock()
				delete(s.inflight, key)
				s.mu.Unlock()
				cancel()
			}()
			s.callTool(ctx, m)
		}()
	default:
		if !s.catalog(m) {
			s.replyError(context.Background(), m.ID, codeMethodNotFound, "Method not found: "+m.Method)
		}
	}
}

// deliverResponse hands the client's response to the server→client request
// waiting for it.
func (s *server) deliverResponse(m *message) {
	key := idKey(m.ID)
	s.mu.Lock()
	ch := s.pending[key]
	delete(s.pending, key)
	s.mu.Unlock()
	if ch == nil {
		s.logf("response to unknown request id %s", m.ID)
		return
	}
	ch <- m // buffered
}

// request sends a server→client request and waits for its response. It
// returns an error if ctx is cancelled first.
func (s *server) request(ctx context.Context, method string, params any) (*message, error) {
	s.mu.Lock()
	s.nextID++
	id := json.RawMessage(fmt.Sprint(s.nextID))
	ch := make(chan *message, 1)
	s.pending[idKey(id)] = ch
	s.mu.Unlock()
	if !s.send(ctx, &outMessage{ID: id, Method: method, Params: params}) {
		s.mu.Lock()
		delete(s.pending, idKey(id))
		s.mu.Unlock()
		return nil, ctx.Err()
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.pending, idKey(id))
		s.mu.Unlock()
		return nil, ctx.Err()
	}
}

// reply sends a result for request id unless ctx, the request's, has been
// cancelled. Requests other than tools/call cannot be cancelled and pass
// context.Background().
func (s *server) reply(ctx context.Context, id json.RawMessage, result any) {
	s.send(ctx, &outMessage{ID: id, Result: result})
}

func (s *server) replyError(ctx context.Context, id json.RawMessage, code int, msg string) {
	s.send(ctx, &outMessage{ID: id, Error: &rpcError{code, msg}})
}

func (s *server) notify(ctx context.Context, method string, params any) {
	s.send(ctx, &outMessage{Method: method, Params: params})
}

// send writes m as one line unless ctx is cancelled, and reports
// whether it wrote. A cancelled request thus gets no response at all, as
// basic/utilities/cancellation allows, and no further progress.
func (s *server) send(ctx context.Context, m *outMessage) bool {
	m.JSONRPC = "2.0"
	b, err := json.Marshal(m)
	if err != nil {
		s.logf("marshaling message %s %s: %v", m.ID, m.Method, err)
		return false
	}
	return s.writeLine(ctx, b)
}

// writeLine writes b and a newline to stdout in one write, unless ctx is
// cancelled.
func (s *server) writeLine(ctx context.Context, b []byte) bool {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	if _, err := s.out.Write(append(b, '\n')); err != nil {
		s.logf("writing stdout: %v", err)
		return false
	}
	return true
}

func (s *server) logf(format string, args ...any) {
	s.stderrMu.Lock()
	defer s.stderrMu.Unlock()
	fmt.Fprintf(s.stderr, "testserver: "+format+"\n", args...)
}

// idKey normalises a JSON-RPC id so that the same id spelt with different
// whitespace maps to the same key.
func idKey(id json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, id); err != nil {
		return string(id)
	}
	return b.String()
}
