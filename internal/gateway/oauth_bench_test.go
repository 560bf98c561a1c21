package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The cost of an OAuth access token on the front door: the same request
// (PUT /mcp/t, which passes Host/Origin, authentication, the server
// lookup and the allow list, then gets 405 from the transport without
// touching a backend) through a gateway without authentication and
// through one with auth.oauth presenting an access token it verified
// before. The difference is what a verified token costs per request.
// Both run in-process (no sockets) at log level error.

func benchFrontDoor(b *testing.B, h *harness, token string) {
	b.Helper()
	req := httptest.NewRequest(http.MethodPut, h.url("t"), nil)
	req.Host = req.URL.Host
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.g.ServeHTTP(w, req) // the first request verifies the token
	if w.Code != http.StatusMethodNotAllowed {
		b.Fatalf("status %d, want 405: %s", w.Code, w.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.g.ServeHTTP(w, req)
		if w.Code != http.StatusMethodNotAllowed {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkFrontDoorNoAuth(b *testing.B) {
	h := newHarness(b, "log: {level: error}\nauth: {mode: none}\nservers:\n"+serverYAML("t", ""))
	benchFrontDoor(b, h, "")
}

func BenchmarkFrontDoorOAuthToken(b *testing.B) {
	h := newOAuthHarness(b, "log: {level: error}", "", "", nil)
	benchFrontDoor(b, h.harness, h.token("t", "").AccessToken)
}
