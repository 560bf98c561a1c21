package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Every session-era protocol version, spoken by hand (the SDK clients
// always offer their latest version), to server-everything through the
// gateway in both modes: the version negotiated and a tool call in it.

type rpcReply struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// rpcPost POSTs one JSON-RPC message and returns the HTTP status, the
// session id header and the reply with id wantID (from a JSON body or an
// SSE stream), if any.
func rpcPost(t *testing.T, url, sid, version, body, wantID string) (int, string, *rpcReply) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	if version != "" {
		req.Header.Set("MCP-Protocol-Version", version)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	var payloads [][]byte
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		for line := range strings.Lines(string(b)) {
			if data, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "data: "); ok {
				payloads = append(payloads, []byte(data))
			}
		}
	} else if len(bytes.TrimSpace(b)) > 0 {
		payloads = append(payloads, b)
	}
	for _, p := range payloads {
		var r rpcReply
		if json.Unmarshal(p, &r) == nil && string(r.ID) == wantID {
			return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), &r
		}
	}
	return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), nil
}

func initMsg(version string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"raw-interop","version":"1"}}}`, version)
}

const echoCall = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"raw %s"}}}`

// checkInitAndEcho checks an initialize reply and a tools/call echo reply.
func checkInitAndEcho(t *testing.T, version string, init, echo *rpcReply) {
	t.Helper()
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
		ServerInfo      struct{ Name string }
	}
	if init == nil || init.Error != nil || json.Unmarshal(init.Result, &ir) != nil {
		t.Fatalf("initialize %s: reply %+v", version, init)
	}
	if ir.ProtocolVersion != version || ir.ServerInfo.Name != "mcp-servers/everything" {
		t.Errorf("initialize %s: negotiated %q with %q", version, ir.ProtocolVersion, ir.ServerInfo.Name)
	}
	var er struct {
		Content []struct{ Text string }
	}
	if echo == nil || echo.Error != nil || json.Unmarshal(echo.Result, &er) != nil {
		t.Fatalf("echo in %s: reply %+v", version, echo)
	}
	if len(er.Content) != 1 || er.Content[0].Text != "Echo: raw "+version {
		t.Errorf("echo in %s = %+v", version, er.Content)
	}
}

func TestStreamableVersions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, srv := range everythingServers {
		for _, version := range []string{"2025-03-26", "2025-06-18", "2025-11-25"} {
			t.Run(srv.mode+"/"+version, func(t *testing.T) {
				url := f.url(srv.name)
				st, sid, init := rpcPost(t, url, "", "", initMsg(version), "1")
				if st != http.StatusOK || sid == "" {
					t.Fatalf("initialize: status %d, session %q", st, sid)
				}
				// MCP-Protocol-Version is required from 2025-06-18 on; a
				// 2025-03-26 client may send it too.
				if st, _, _ := rpcPost(t, url, sid, version, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, ""); st != http.StatusAccepted {
					t.Fatalf("initialized: status %d, want 202", st)
				}
				st, _, echo := rpcPost(t, url, sid, version, fmt.Sprintf(echoCall, version), "2")
				if st != http.StatusOK {
					t.Fatalf("tools/call: status %d", st)
				}
				checkInitAndEcho(t, version, init, echo)
				// A session takes a request labelled with any supported
				// version (as the reference SDK servers do), and refuses an
				// unsupported one.
				other := map[bool]string{true: "2025-03-26", false: "2025-11-25"}[version == "2025-11-25"]
				if st, _, _ := rpcPost(t, url, sid, other, fmt.Sprintf(echoCall, version), "2"); st != http.StatusOK {
					t.Errorf("MCP-Protocol-Version %s in a %s session: status %d, want 200", other, version, st)
				}
				if st, _, _ := rpcPost(t, url, sid, "2024-01-01", fmt.Sprintf(echoCall, version), "2"); st != http.StatusBadRequest {
					t.Errorf("MCP-Protocol-Version 2024-01-01 in a %s session: status %d, want 400", version, st)
				}
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, url, nil)
				req.Header.Set("Mcp-Session-Id", sid)
				req.Header.Set("MCP-Protocol-Version", version)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
					t.Errorf("DELETE: status %d", resp.StatusCode)
				}
				if st, _, _ := rpcPost(t, url, sid, version, fmt.Sprintf(echoCall, version), "2"); st != http.StatusNotFound {
					t.Errorf("tools/call after DELETE: status %d, want 404", st)
				}
			})
		}
	}
}

// TestLegacySSEVersion speaks 2024-11-05 over HTTP+SSE by hand.
func TestLegacySSEVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, srv := range everythingServers {
		t.Run(srv.mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url(srv.name)+"/sse", nil)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /sse: status %d", resp.StatusCode)
			}
			events := make(chan [2]string, 16) // event name, data
			go func() {
				defer close(events)
				sc := bufio.NewScanner(resp.Body)
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				name := "message"
				for sc.Scan() {
					line := sc.Text()
					if ev, ok := strings.CutPrefix(line, "event: "); ok {
						name = ev
					} else if data, ok := strings.CutPrefix(line, "data: "); ok {
						events <- [2]string{name, data}
						name = "message"
					}
				}
			}()
			next := func(wantID string) *rpcReply {
				t.Helper()
				for ev := range events {
					var r rpcReply
					if ev[0] == "message" && json.Unmarshal([]byte(ev[1]), &r) == nil && string(r.ID) == wantID {
						return &r
					}
				}
				t.Fatalf("stream ended before the reply to id %s", wantID)
				return nil
			}
			ep := <-events
			if ep[0] != "endpoint" || !strings.HasPrefix(ep[1], "/mcp/"+srv.name+"/message?sessionId=") {
				t.Fatalf("first event = %q, want the endpoint", ep)
			}
			post := func(body string) {
				t.Helper()
				r, err := http.Post(f.base+ep[1], "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				r.Body.Close()
				if r.StatusCode != http.StatusAccepted {
					t.Fatalf("POST %.40s: status %d, want 202", body, r.StatusCode)
				}
			}
			post(initMsg("2024-11-05"))
			init := next("1")
			post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
			post(fmt.Sprintf(echoCall, "2024-11-05"))
			checkInitAndEcho(t, "2024-11-05", init, next("2"))
			cancel() // the stream ends, and with it the session
			for range events {
			}
		})
	}
}
