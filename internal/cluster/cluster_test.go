package cluster

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/config"
)

func testNode(replica, key string) *Node {
	return New(&config.Cluster{ReplicaID: replica, Key: key, Refresh: time.Second, ForwardTimeout: time.Second}, nil)
}

const key = "0123456789abcdef0123456789abcdef"

func TestIDs(t *testing.T) {
	a, b := testNode("r1", key), testNode("r2", key)
	id := a.NewID()
	if !strings.HasPrefix(id, "r1.") || a.NewID() == id {
		t.Fatalf("ids %q: want fresh ids naming r1", id)
	}
	if got, ok := b.Owner(id); !ok || got != "r1" {
		t.Errorf("Owner(%q) on another replica = %q, %t; want r1, true", id, got, ok)
	}
	for _, bad := range []string{
		"r2" + id[2:],                                   // another replica's name on r1's random part and MAC
		id[:len(id)-1] + other(id[len(id)-1]),           // a changed MAC
		id[:4] + other(id[4]) + id[5:],                  // a changed random part
		testNode("r1", strings.Repeat("z", 32)).NewID(), // another cluster's id
		"", "r1", "r1..", "r1.a.b", "plain-random-id-of-a-single-gateway",
	} {
		if got, ok := b.Owner(bad); ok {
			t.Errorf("Owner(%q) = %q, true; want a refusal", bad, got)
		}
	}
}

// other returns a base64url character that is not c.
func other(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestAccept(t *testing.T) {
	r1 := testNode("r1", key)
	who := Identity{Name: "alice@example.com", ClientIP: "192.0.2.7"}
	req := httptest.NewRequest(http.MethodPost, "/mcp/fs?x=1", nil)
	req.Header.Set("Mcp-Session-Id", "r1.s")
	testNode("r0", key).Sign(req, "r1", who)
	if got, err := r1.Accept(req); err != nil || got != who {
		t.Fatalf("Accept = %+v, %v; want %+v", got, err, who)
	}
	for name, change := range map[string]func(*http.Request){
		"other session": func(r *http.Request) { r.Header.Set("Mcp-Session-Id", "r1.t") },
		"other method":  func(r *http.Request) { r.Method = http.MethodDelete },
		"other path":    func(r *http.Request) { r.URL.Path = "/mcp/git" },
		"other key":     func(r *http.Request) { testNode("r0", strings.Repeat("z", 32)).Sign(r, "r1", who) },
		"other target":  func(r *http.Request) { testNode("r0", key).Sign(r, "r2", who) },
		"identity": func(r *http.Request) {
			r.Header.Set(HeaderForwarded, strings.Replace(r.Header.Get(HeaderForwarded), b64([]byte(who.Name)), b64([]byte("mallory")), 1))
		},
		"none": func(r *http.Request) { r.Header.Del(HeaderForwarded) },
	} {
		r := req.Clone(req.Context())
		change(r)
		if got, err := r1.Accept(r); err == nil {
			t.Errorf("%s: Accept = %+v, want a refusal", name, got)
		}
	}
}

func TestHello(t *testing.T) {
	r1 := New(&config.Cluster{ReplicaID: "r1", Key: key, AdvertiseURL: "http://r1.internal:8080", ForwardTimeout: time.Second, Refresh: time.Second}, nil)
	srv := httptest.NewServer(http.HandlerFunc(r1.ServeHello))
	defer srv.Close()
	id, u, err := testNode("r0", key).hello(t.Context(), srv.URL)
	if err != nil || id != "r1" || u.String() != "http://r1.internal:8080" {
		t.Errorf("hello = %q, %v, %v; want r1 at its advertise URL", id, u, err)
	}
	if _, _, err := testNode("r0", strings.Repeat("z", 32)).hello(t.Context(), srv.URL); err == nil {
		t.Error("hello with another key succeeded")
	}
}

// FuzzParse: ids and forwarded headers come from clients; no input makes
// the parsers panic or accept without the key.
func FuzzParse(f *testing.F) {
	n := testNode("r1", key)
	f.Add(n.NewID())
	f.Add("v1.1.r0.r1.YQ.YQ.AAAA")
	f.Add("r1...")
	f.Fuzz(func(t *testing.T, s string) {
		if r, ok := n.Owner(s); ok && !strings.HasPrefix(s, r+".") {
			t.Fatalf("Owner(%q) = %q", s, r)
		}
		req := httptest.NewRequest(http.MethodPost, "/mcp/x", nil)
		req.Header.Set(HeaderForwarded, s)
		if _, err := n.Accept(req); err == nil {
			t.Fatalf("Accept(%q) succeeded", s)
		}
	})
}
