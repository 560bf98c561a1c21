package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestJSONAnswerWriteTimeout: a client that stops reading a large plain
// JSON answer holds its handler no longer than the write timeout
// (shortened here to 300 ms), as for SSE streams. The client's receive
// buffer is kept small, so that an 8 MiB answer fills the buffers between
// the gateway and the client; the handler's access-log line, written when
// it returns, shows that it did.
func TestJSONAnswerWriteTimeout(t *testing.T) {
	old := sseWriteTimeout
	sseWriteTimeout = 300 * time.Millisecond
	t.Cleanup(func() { sseWriteTimeout = old })
	h := newHarness(t, "listen: 127.0.0.1:0\nservers:\n"+serverYAML("t", ""))
	sid := h.rawSession("t", "2025-11-25")

	small := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	hc := &http.Client{Transport: &http.Transport{DialContext: small.DialContext}}
	t.Cleanup(hc.CloseIdleConnections)
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"huge","arguments":{"bytes":%d}}}`, 8<<20)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, h.url("t"), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // never read
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("huge: %d %s, want a plain JSON answer", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	eventually(t, 10*time.Second, "the handler of the unread answer to return", func() bool {
		return len(h.logs.find("request", map[string]any{"method": "tools/call", "session_id": sid})) == 1
	})
}
