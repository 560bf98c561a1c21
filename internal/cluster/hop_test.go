package cluster

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hopPair is a front replica r0 whose handler forwards every request to
// the owner r1; both are real HTTP servers on loopback. owner is r1's
// handler, called after r1 accepted the signed request.
type hopPair struct {
	front, owner *httptest.Server
	r0           *Node
	conns        atomic.Int64 // connections r1 accepted
	failed       atomic.Value // the last error passed to fail
}

func newHopPair(t *testing.T, owner func(w http.ResponseWriter, r *http.Request, who Identity)) *hopPair {
	return newHopPairTLS(t, false, owner)
}

// idleToOwner is how many connections to the owner are idle in r0's pool.
func (p *hopPair) idleToOwner() int {
	p.r0.hops.mu.Lock()
	defer p.r0.hops.mu.Unlock()
	return len(p.r0.hops.idle[strings.TrimSuffix(p.owner.URL, "/")])
}

// newHopPairTLS is newHopPair with an owner that serves https when
// useTLS is set.
func newHopPairTLS(t *testing.T, useTLS bool, owner func(w http.ResponseWriter, r *http.Request, who Identity)) *hopPair {
	t.Helper()
	p := &hopPair{r0: testNode("r0", key)}
	r1 := testNode("r1", key)
	p.owner = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := r1.Accept(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		owner(w, r, who)
	}))
	p.owner.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			p.conns.Add(1)
		}
	}
	if useTLS {
		p.owner.StartTLS()
		p.r0.hops.tls.RootCAs = x509.NewCertPool()
		p.r0.hops.tls.RootCAs.AddCert(p.owner.Certificate())
	} else {
		p.owner.Start()
	}
	u, _ := url.Parse(p.owner.URL)
	p.r0.peers["r1"] = u
	p.r0.lastRefresh = time.Now()
	p.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		who := Identity{Name: "alice", ClientIP: "192.0.2.7"}
		p.r0.Forward(w, r, body, "r1", who, []string{"cf-access-jwt-assertion"}, nil, func(w http.ResponseWriter, _ *http.Request, err error) {
			p.failed.Store(err)
			http.Error(w, "hop failed", http.StatusBadGateway)
		})
	}))
	t.Cleanup(func() {
		p.front.Close()
		p.r0.hops.close()
		p.owner.Close()
	})
	return p
}

// TestHopCarries: the owner gets the method, target, body and the headers
// a client sent, without credentials, hop-by-hop headers or forged
// forwarding claims, and signed with the client's identity; the client
// gets the owner's status, headers and body.
func TestHopCarries(t *testing.T) {
	var got struct {
		method, target, body, host string
		header                     http.Header
		who                        Identity
	}
	p := newHopPair(t, func(w http.ResponseWriter, r *http.Request, who Identity) {
		b, _ := io.ReadAll(r.Body)
		got.method, got.target, got.body, got.host, got.header, got.who = r.Method, r.URL.RequestURI(), string(b), r.Host, r.Header.Clone(), who
		w.Header().Set("Mcp-Session-Id", "r1.s")
		w.Header().Set("X-Request-Id", "owner-id")
		w.Header().Set("Connection", "X-Owner-Private")
		w.Header().Set("X-Owner-Private", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	req, _ := http.NewRequest(http.MethodPost, p.front.URL+"/mcp/t?x=1&y=%2F", strings.NewReader(`{"jsonrpc":"2.0"}`))
	for k, v := range map[string]string{
		"Mcp-Session-Id": "r1.s", "Mcp-Protocol-Version": "2025-11-25", "Accept": "application/json, text/event-stream",
		"Authorization": "Bearer secret", "Cookie": "c=secret", "Cf-Access-Jwt-Assertion": "jwt-secret",
		"Connection": "X-Private", "X-Private": "p", "X-Forwarded-For": "203.0.113.9",
		HeaderForwarded: "v1.forged", "Keep-Alive": "timeout=5",
	} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || string(body) != `{"ok":true}` || resp.ContentLength != int64(len(body)) {
		t.Fatalf("answer %d %q (length %d); want 202 {\"ok\":true} with its length", resp.StatusCode, body, resp.ContentLength)
	}
	if resp.Header.Get("Mcp-Session-Id") != "r1.s" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("answer headers %v: want the owner's", resp.Header)
	}
	for _, k := range []string{"X-Request-Id", "X-Owner-Private"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("answer header %s = %q, want it dropped", k, v)
		}
	}
	if got.method != http.MethodPost || got.target != "/mcp/t?x=1&y=%2F" || got.body != `{"jsonrpc":"2.0"}` {
		t.Errorf("owner got %s %s %q", got.method, got.target, got.body)
	}
	if u, _ := url.Parse(p.owner.URL); got.host != u.Host {
		t.Errorf("owner got Host %q, want %q", got.host, u.Host)
	}
	if (got.who != Identity{Name: "alice", ClientIP: "192.0.2.7"}) {
		t.Errorf("owner got identity %+v", got.who)
	}
	for _, k := range []string{"Mcp-Session-Id", "Mcp-Protocol-Version", "Accept"} {
		if got.header.Get(k) != req.Header.Get(k) {
			t.Errorf("owner got %s %q, want %q", k, got.header.Get(k), req.Header.Get(k))
		}
	}
	for _, k := range []string{"Authorization", "Cookie", "Cf-Access-Jwt-Assertion", "X-Private", "X-Forwarded-For", "Keep-Alive"} {
		if v, ok := got.header[k]; ok {
			t.Errorf("owner got %s %q, want it dropped", k, v)
		}
	}
}

// TestHopReuse: sequential forwarded requests share one connection to the
// owner; an owner that answers "Connection: close" gets a new one for
// each request.
func TestHopReuse(t *testing.T) {
	for _, closing := range []bool{false, true} {
		p := newHopPair(t, func(w http.ResponseWriter, r *http.Request, _ Identity) {
			if closing {
				w.Header().Set("Connection", "close")
			}
			_, _ = io.WriteString(w, "pong")
		})
		const n = 20
		for i := range n {
			if b := get(t, p.front.URL+"/ping"); b != "pong" {
				t.Fatalf("request %d: %q", i, b)
			}
		}
		want := int64(1)
		if closing {
			want = n
		}
		if got := p.conns.Load(); got != want {
			t.Errorf("closing %t: %d connections to the owner for %d requests, want %d", closing, got, n, want)
		}
	}
}

// TestHopTLS: a peer whose URL is https is reached over TLS, its
// certificate checked, and the connection reused.
func TestHopTLS(t *testing.T) {
	p := newHopPairTLS(t, true, func(w http.ResponseWriter, r *http.Request, _ Identity) {
		if r.TLS == nil {
			http.Error(w, "not over TLS", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, "pong")
	})
	for i := range 3 {
		if b := get(t, p.front.URL+"/ping"); b != "pong" {
			t.Fatalf("request %d: %q (hop error %v)", i, b, p.failed.Load())
		}
	}
	if p.conns.Load() != 1 {
		t.Errorf("%d TLS connections for 3 requests, want 1", p.conns.Load())
	}
	// A peer whose certificate this replica does not trust is not reached.
	p.r0.hops.close()
	p.r0.hops = newHopPool(time.Second)
	if b := get(t, p.front.URL+"/ping"); b == "pong" {
		t.Fatal("a peer with an untrusted certificate was reached")
	}
	if err, _ := p.failed.Load().(error); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("fail(%v): want the certificate error", err)
	}
}

// TestHopOwnerClosedIdle: when the owner closes a connection while it is
// idle in the pool (as at a restart), the next request still gets its
// answer, on a new connection, and the owner is not forgotten.
func TestHopOwnerClosedIdle(t *testing.T) {
	p := newHopPair(t, func(w http.ResponseWriter, r *http.Request, _ Identity) { _, _ = io.WriteString(w, "pong") })
	if b := get(t, p.front.URL+"/ping"); b != "pong" {
		t.Fatalf("first request: %q", b)
	}
	p.owner.CloseClientConnections()
	time.Sleep(50 * time.Millisecond) // the FIN reaches r0's idle connection
	if b := get(t, p.front.URL+"/ping"); b != "pong" {
		t.Fatalf("after the owner closed the idle connection: %q (hop error %v)", b, p.failed.Load())
	}
	if p.conns.Load() != 2 {
		t.Errorf("%d connections, want 2", p.conns.Load())
	}
	if _, ok := p.r0.peers["r1"]; !ok {
		t.Error("the owner was forgotten after a closed idle connection")
	}
}

// TestHopStreams: an SSE answer reaches the client event by event: the
// owner writes the second event only after the client has read the first.
func TestHopStreams(t *testing.T) {
	read := make(chan struct{})
	p := newHopPair(t, func(w http.ResponseWriter, r *http.Request, _ Identity) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i, ev := range []string{"one", "two", "three"} {
			_, _ = io.WriteString(w, "data: "+ev+"\n\n")
			w.(http.Flusher).Flush()
			if i < 2 {
				select {
				case <-read:
				case <-time.After(10 * time.Second):
					t.Error("the client did not get the event in time")
					return
				}
			}
		}
	})
	resp, err := http.Get(p.front.URL + "/mcp/t")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for _, want := range []string{"one", "two", "three"} {
		line, err := br.ReadString('\n')
		if err != nil || line != "data: "+want+"\n" {
			t.Fatalf("event %q, %v; want %s", line, err, want)
		}
		_, _ = br.ReadString('\n')
		if want != "three" {
			read <- struct{}{}
		}
	}
}

// TestHopClientGone: a client that goes away mid-stream ends the hop: the
// owner's request is cancelled and the connection is not pooled.
func TestHopClientGone(t *testing.T) {
	ownerDone := make(chan struct{})
	p := newHopPair(t, func(w http.ResponseWriter, r *http.Request, _ Identity) {
		defer close(ownerDone)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, ": open\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.front.URL+"/mcp/t", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-ownerDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the owner's request was not cancelled when the client went away")
	}
	idle := p.idleToOwner()
	if idle != 0 {
		t.Errorf("%d idle connections after a cancelled stream, want 0", idle)
	}
}

// TestHopOwnerGone: an owner that does not answer fails the hop before
// anything is written, and is forgotten.
func TestHopOwnerGone(t *testing.T) {
	p := newHopPair(t, func(w http.ResponseWriter, r *http.Request, _ Identity) {})
	p.owner.Close()
	resp, err := http.Get(p.front.URL + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	err, _ = p.failed.Load().(error)
	if resp.StatusCode != http.StatusBadGateway || err == nil || !strings.Contains(err.Error(), `forwarding to replica "r1"`) {
		t.Fatalf("answer %d, fail(%v); want the fail callback", resp.StatusCode, err)
	}
	p.r0.mu.Lock()
	_, known := p.r0.peers["r1"]
	p.r0.mu.Unlock()
	if known {
		t.Error("an owner that refused the connection is still a peer")
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("fail(%v): want the connection error", err)
	}
}

// TestHopConcurrent: concurrent forwarded requests each get their own
// answer; the pool keeps at most maxIdlePerPeer connections.
func TestHopConcurrent(t *testing.T) {
	p := newHopPair(t, func(w http.ResponseWriter, r *http.Request, _ Identity) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			want := strings.Repeat("x", i*1000)
			resp, err := http.Post(p.front.URL+"/echo", "text/plain", strings.NewReader(want))
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != want {
				t.Errorf("request %d: %d bytes back, want %d", i, len(b), len(want))
			}
		})
	}
	wg.Wait()
	if idle := p.idleToOwner(); idle > maxIdlePerPeer {
		t.Errorf("%d idle connections, want at most %d", idle, maxIdlePerPeer)
	}
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestHopSlowClient: a client that stops reading a forwarded stream holds
// the hop no longer than one write timeout. The owner streams without end;
// once the buffers between the front and the client are full, the hop's
// write to the client times out, the hop ends, and the owner's request is
// cancelled with its connection closed.
func TestHopSlowClient(t *testing.T) {
	ownerDone := make(chan struct{})
	p := newHopPair(t, func(w http.ResponseWriter, r *http.Request, _ Identity) {
		defer close(ownerDone)
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := []byte(": " + strings.Repeat("x", 64<<10) + "\n\n")
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	p.r0.hops.writeTimeout = 200 * time.Millisecond
	c, err := net.Dial("tcp", strings.TrimPrefix(p.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /mcp/t HTTP/1.1\r\nHost: front\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Read the answer's start, then nothing more.
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ownerDone:
	case <-time.After(20 * time.Second):
		t.Fatal("the hop still streams to a client that stopped reading")
	}
	idle := p.idleToOwner()
	if idle != 0 {
		t.Errorf("%d idle connections after a stream cut by the write timeout, want 0", idle)
	}
}

// TestHopIdleBeforeLastByte: the connection to the owner is back in the
// pool before the client has the answer's last byte, so that a client's
// next request, which may follow at once, reuses it instead of dialling.
// The owner's answer has a Content-Length, which the client reads to its
// end without waiting for the hop's handler to return.
func TestHopIdleBeforeLastByte(t *testing.T) {
	p := newHopPair(t, func(w http.ResponseWriter, r *http.Request, _ Identity) {
		_, _ = io.WriteString(w, "pong")
	})
	for i := range 300 {
		if b := get(t, p.front.URL+"/ping"); b != "pong" {
			t.Fatalf("request %d: %q", i, b)
		}
		idle := p.idleToOwner()
		if idle != 1 {
			t.Fatalf("request %d: %d idle connections to the owner once the client had the answer, want 1", i, idle)
		}
	}
	if got := p.conns.Load(); got != 1 {
		t.Errorf("%d connections to the owner for 300 requests, want 1", got)
	}
}
