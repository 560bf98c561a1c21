package session

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// recorder is an Observer that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Observe(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// summary is each event as "kind server detail", in order.
func (r *recorder) summary() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		switch e.Kind {
		case RequestDone:
			out = append(out, fmt.Sprintf("done %s %s %s %s %s", e.Server, e.Era, e.Method, e.Tool, e.Class))
		case ProcessStarted:
			out = append(out, "started "+e.Server+" "+e.Class)
		case ProcessExited:
			out = append(out, "exited "+e.Server+" "+e.Reason)
		case ToolsListed:
			out = append(out, fmt.Sprintf("listed %s %v", e.Server, e.Tools))
		case QueueWaited:
			out = append(out, "queued "+e.Server)
		}
	}
	return out
}

// TestObserverSeesRequestsAndProcesses: the observer hears each outcome
// once with its class and tool, the tools a server listed, and a
// process's start and its crash.
func TestObserverSeesRequestsAndProcesses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{scripts: func(int) *script {
			return &script{request: func(s *fakeServer, req *jsonrpc.Message) {
				switch req.Method {
				case "tools/list":
					s.reply(req, `{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}`)
				case "tools/call":
					if jsonrpc.ParamsFields(req.Params).URI == "crash" {
						s.crash()
						return
					}
					s.send(jsonrpc.NewError(req.ID, -32602, "no such tool", nil))
				}
			}}
		}}
		cfg, err := config.Parse([]byte("servers: {s: {command: [x]}}"), nil)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		l.log = slog.New(slog.NewJSONHandler(&testutil.Buffer{}, nil))
		m := NewManager(cfg, l, &Options{Logger: l.log, Observer: rec})
		m.Open()
		defer func() { m.Close(); l.wg.Wait() }()
		ly := &layer{t: t, m: m, l: l}
		s := ly.initialize("s")
		for i, params := range []string{`{}`, `{"name":"echo"}`, `{"name":"made-up","uri":"crash"}`} {
			method := "tools/call"
			if i == 0 {
				method = "tools/list"
			}
			sink := NewSink(0)
			if err := s.Begin(context.Background(), request(i+1, method, params), sink); err != nil {
				t.Fatalf("begin %s: %v", method, err)
			}
			synctest.Wait()
		}
		got := slices.DeleteFunc(rec.summary(), func(s string) bool { return s == "queued s" })
		want := []string{
			"started s ok",
			"listed s [echo]",
			"done s session tools/list  ok",
			"done s session tools/call echo error",
			"done s session tools/call made-up backend_error",
			"exited s exited",
		}
		if !slices.Equal(got, want) {
			t.Errorf("events:\n got %q\nwant %q", got, want)
		}
	})
}
