package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The forwarding hop speaks HTTP/1.1 to the owner over persistent
// connections, on the goroutine of the request it forwards: it writes the
// request and reads the answer itself. net/http's client (and so
// httputil.ReverseProxy) hands each request to a write goroutine and each
// answer back from a read goroutine, two wake-ups per forwarded call that
// were most of the latency the hop added (docs/benchmarks.md, "The
// cluster's forwarding hop").
//
// What it relies on, because both ends are mcpgw replicas: the request
// body is already read (bounded by limits.max_body_bytes at the front
// door), so it is sent with a Content-Length and can never be cut short by
// an early answer; the owner's answers carry no trailers and no 1xx other
// than 100 Continue (skipped); a connection is reused only after an answer
// was read to its end without "Connection: close".

const (
	// maxIdlePerPeer bounds the idle connections kept to one peer.
	maxIdlePerPeer = 64
	// maxIdleAge is how long an idle connection is reused: well under the
	// owner's own idle timeout (120 s), so that the owner never closes a
	// connection this side is about to write a request on.
	maxIdleAge = 60 * time.Second
)

// hopConn is one connection to a peer, owned by one forwarded request at a
// time or idle in the pool.
type hopConn struct {
	c         net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	reused    bool // it served a request before
}

// hopWriteTimeout bounds each write of a forwarded answer to the client,
// as the gateway bounds each write of its own SSE streams: a client that
// stops reading cannot hold the hop, and with it a connection to the owner,
// for longer.
const hopWriteTimeout = 30 * time.Second

// hopPool keeps the idle connections to peers, by base URL.
type hopPool struct {
	dialer       *net.Dialer
	tls          *tls.Config   // for https peers
	writeTimeout time.Duration // each write to the client (hopWriteTimeout)

	mu     sync.Mutex
	idle   map[string][]*hopConn
	closed bool
}

func newHopPool(timeout time.Duration) *hopPool {
	return &hopPool{
		dialer:       &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second},
		tls:          &tls.Config{MinVersion: tls.VersionTLS12},
		writeTimeout: hopWriteTimeout,
		idle:         map[string][]*hopConn{},
	}
}

// get returns an idle connection to base or dials a new one.
func (p *hopPool) get(ctx context.Context, base *url.URL) (*hopConn, error) {
	key := base.Scheme + "://" + base.Host
	now := time.Now()
	p.mu.Lock()
	for list := p.idle[key]; len(list) > 0; list = p.idle[key] {
		hc := list[len(list)-1]
		p.idle[key] = list[:len(list)-1]
		if now.Sub(hc.idleSince) < maxIdleAge {
			p.mu.Unlock()
			hc.reused = true
			return hc, nil
		}
		_ = hc.c.Close()
	}
	p.mu.Unlock()
	return p.dial(ctx, base)
}

// dial opens a new connection to base.
func (p *hopPool) dial(ctx context.Context, base *url.URL) (*hopConn, error) {
	addr := base.Host
	if base.Port() == "" {
		addr = net.JoinHostPort(base.Hostname(), map[bool]string{true: "443", false: "80"}[base.Scheme == "https"])
	}
	var c net.Conn
	var err error
	if base.Scheme == "https" {
		d := &tls.Dialer{NetDialer: p.dialer, Config: p.tls.Clone()}
		d.Config.ServerName = base.Hostname()
		c, err = d.DialContext(ctx, "tcp", addr)
	} else {
		c, err = p.dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	return &hopConn{c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}, nil
}

// put gives back a connection whose last answer was read to its end.
func (p *hopPool) put(base *url.URL, hc *hopConn) {
	key := base.Scheme + "://" + base.Host
	hc.idleSince = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[key]) >= maxIdlePerPeer {
		_ = hc.c.Close()
		return
	}
	p.idle[key] = append(p.idle[key], hc)
}

// close closes the idle connections; later ones are closed when given
// back.
func (p *hopPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for k, list := range p.idle {
		for _, hc := range list {
			_ = hc.c.Close()
		}
		delete(p.idle, k)
	}
}

// hopByHop are the headers that belong to one connection (RFC 9110 §7.6.1)
// and never cross the hop; X-Forwarded-* and Forwarded are dropped too, as
// httputil.ReverseProxy does: the owner relies on the signed identity
// alone; so are the client's credentials, which then travel no further
// than needed. Content-Length and Expect are written anew (the body is
// already read).
var hopByHop = map[string]bool{
	"Authorization": true, "Cookie": true,
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Content-Length": true, "Expect": true, "Host": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	HeaderForwarded: true,
}

// errHopAborted is what a hop ends with when its context ends first.
var errHopAborted = errors.New("the forwarded request was cancelled")

// hopRequest is one request to forward.
type hopRequest struct {
	r      *http.Request
	body   []byte
	base   *url.URL
	signed string              // the HeaderForwarded value
	drop   func(string) bool   // further request headers not to carry
	resp   func(h http.Header) // edits the answer's headers before they are written
}

// roundTrip forwards hr on hc and streams the answer to w, flushing every
// chunk as it comes (SSE events must not wait). It is done with hc
// exactly once: hc goes back to the pool when it may serve another
// request, as soon as the answer has come to its end and before its last
// bytes reach the client (whose next request may follow at once and should
// find hc idle); otherwise hc is closed when roundTrip returns. wrote
// reports whether anything reached w; unread that it failed before a byte
// of the answer came (the owner had closed the connection, or never read
// the request), in which case hc was closed, not pooled. It ends early,
// with errHopAborted, when ctx does, and with the write's error when a
// write to the client takes longer than p.writeTimeout.
func (p *hopPool) roundTrip(ctx context.Context, w http.ResponseWriter, hc *hopConn, hr *hopRequest) (wrote, unread bool, err error) {
	stop := context.AfterFunc(ctx, func() { _ = hc.c.SetDeadline(time.Unix(1, 0)) })
	released, spoilt := false, false
	give := func(reuse bool) {
		if released {
			return
		}
		released = true
		if !stop() { // the deadline was set: the connection is spoilt
			reuse, spoilt = false, true
		}
		if reuse {
			p.put(hr.base, hc)
		} else {
			_ = hc.c.Close()
		}
	}
	defer func() {
		give(false)
		if spoilt && err != nil {
			err = errHopAborted
		}
	}()
	if err := writeHopRequest(hc.bw, hr); err != nil {
		return false, true, err
	}
	if _, err := hc.br.Peek(1); err != nil {
		return false, true, err
	}
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(hc.br, hr.r)
		if err != nil {
			return false, false, err
		}
		if resp.StatusCode != http.StatusContinue {
			break
		}
	}
	defer resp.Body.Close()
	h := w.Header()
	conn := resp.Header["Connection"]
	for k, vv := range resp.Header {
		if hopByHop[k] && k != "Content-Length" || listed(conn, k) {
			continue
		}
		h[k] = vv
	}
	if hr.resp != nil {
		hr.resp(h)
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	buf := copyBuffers{}.Get()
	defer copyBuffers{}.Put(buf)
	for {
		n, rerr := resp.Body.Read(buf)
		if rerr == io.EOF {
			give(!resp.Close) // the body is read to its end (a closed body does not read hc again)
		}
		if n > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(p.writeTimeout))
			if _, werr := w.Write(buf[:n]); werr != nil {
				return true, false, werr
			}
			if ferr := rc.Flush(); ferr != nil {
				return true, false, ferr
			}
		}
		if rerr == io.EOF {
			return true, false, nil
		}
		if rerr != nil {
			return true, false, rerr
		}
	}
}

// writeHopRequest writes hr's request line, headers and body.
func writeHopRequest(bw *bufio.Writer, hr *hopRequest) error {
	r := hr.r
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(r.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(hr.base.Host)
	bw.WriteString("\r\n")
	conn := r.Header["Connection"]
	for k, vv := range r.Header {
		if hopByHop[k] || listed(conn, k) || (hr.drop != nil && hr.drop(k)) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString(HeaderForwarded + ": ")
	bw.WriteString(hr.signed)
	if len(hr.body) > 0 || r.Method == http.MethodPost || r.Method == http.MethodPut {
		bw.WriteString("\r\nContent-Length: ")
		bw.WriteString(strconv.Itoa(len(hr.body)))
	}
	bw.WriteString("\r\n\r\n")
	bw.Write(hr.body)
	return bw.Flush()
}

// listed reports whether the Connection header values conn name header k
// (a header that belongs to the connection only).
func listed(conn []string, k string) bool {
	for _, v := range conn {
		for f := range strings.SplitSeq(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(f)) == k {
				return true
			}
		}
	}
	return false
}
