package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HeaderForwarded marks a request that a peer forwarded, and carries what
// that peer established about the client, signed with the cluster key.
const HeaderForwarded = "Mcp-Gateway-Forwarded"

// Identity is what the first replica established about a client and the
// owner relies on: the authenticated identity and the client's address
// (for rate limits per identity or ip).
type Identity struct {
	Name     string
	ClientIP string
}

// Credential headers are not carried over the hop: the owner relies on the
// signed identity, so a client's token travels no further than needed.
var dropOnHop = []string{"Authorization", "Cookie", "Proxy-Authorization"}

// Sign sets the header that makes r a request forwarded by this replica
// to replica to, vouching for who. The MAC binds the time, sender,
// receiver, method, target and session, and the identity, so that a
// captured header is good for nothing else (and for a minute only).
func (n *Node) Sign(r *http.Request, to string, who Identity) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := n.keys.mac(purposeForward, ts, n.self, to, r.Method, r.URL.RequestURI(), r.Header.Get("Mcp-Session-Id"), who.Name, who.ClientIP)
	r.Header.Set(HeaderForwarded, strings.Join([]string{"v1", ts, n.self, to, b64([]byte(who.Name)), b64([]byte(who.ClientIP)), b64(mac)}, "."))
}

// Forward sends r to replica, the owner of the session it names, and
// streams the owner's answer (SSE included) back on w as it comes. who is
// the client as this replica authenticated it; dropHeaders are further
// credential headers (auth.jwt.headers) not to carry. When the owner
// cannot be reached before anything was written, fail is called with the
// reason (ErrUnknownOwner, or a connection error) and the replica is
// dropped from the directory. When the client goes away, the hop is
// cancelled with it; done, when closed, also cancels it (the gateway's
// drain, for long-lived GET streams).
func (n *Node) Forward(w http.ResponseWriter, r *http.Request, replica string, who Identity, dropHeaders []string, done <-chan struct{}, fail func(http.ResponseWriter, *http.Request, error)) {
	base, ok := n.Peer(r.Context(), replica)
	if !ok {
		fail(w, r, ErrUnknownOwner)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if done != nil {
		// owner: Forward; ends when the hop does (cancel) or done closes.
		go func() {
			select {
			case <-done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	hctx := context.WithValue(ctx, hopKey{}, &hop{base: base, replica: replica, who: who, drop: dropHeaders, fail: fail})
	n.proxy().ServeHTTP(w, r.WithContext(hctx))
}

// hop is what the node's one reverse proxy needs to know about the request
// it forwards; Forward puts it in the request's context.
type hop struct {
	base    *url.URL
	replica string
	who     Identity
	drop    []string
	fail    func(http.ResponseWriter, *http.Request, error)
}

type hopKey struct{}

// proxy is the reverse proxy of every hop, built once: a proxy, its error
// logger and its copy buffers per request cost a forwarded call more CPU
// than the rest of the hop's own work (hot path).
func (n *Node) proxy() *httputil.ReverseProxy {
	n.proxyOnce.Do(func() {
		n.rp = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				h := pr.In.Context().Value(hopKey{}).(*hop)
				pr.SetURL(h.base)
				for _, k := range dropOnHop {
					pr.Out.Header.Del(k)
				}
				for _, k := range h.drop {
					pr.Out.Header.Del(k)
				}
				n.Sign(pr.Out, h.replica, h.who)
			},
			Transport: n.tr,
			// Every chunk is passed on at once: SSE events must not wait.
			FlushInterval: -1,
			BufferPool:    copyBuffers{},
			ModifyResponse: func(resp *http.Response) error {
				resp.Header.Del("X-Request-Id") // this replica set its own, the same
				return nil
			},
			ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				if r.Context().Err() != nil {
					return // the client went away (or the gateway drains): nobody reads an answer
				}
				h := r.Context().Value(hopKey{}).(*hop)
				n.forget(h.replica)
				h.fail(w, r, fmt.Errorf("forwarding to replica %q: %w", h.replica, err))
			},
		}
	})
	return n.rp
}

// copyBufferSize is the size of the buffers the hop copies responses
// through, httputil.ReverseProxy's own default.
const copyBufferSize = 32 << 10

var copyBufferPool = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

// copyBuffers lends the reverse proxy its copy buffers from a pool, instead
// of the 32 KiB it would allocate (and clear) for every forwarded request.
type copyBuffers struct{}

func (copyBuffers) Get() []byte { return copyBufferPool.Get().(*[copyBufferSize]byte)[:] }

func (copyBuffers) Put(b []byte) {
	if len(b) == copyBufferSize {
		copyBufferPool.Put((*[copyBufferSize]byte)(b))
	}
}

// Errors of Accept; their text is safe to send to the peer.
var (
	errNotSigned = errors.New("a forwarded request must carry a valid signature of the cluster key")
	errStale     = errors.New("the forwarded request's signature has expired (or the replicas' clocks differ by more than a minute)")
	errNotMine   = errors.New("the forwarded request is addressed to another replica")
)

// Forwarded reports whether r claims to come from a peer.
func Forwarded(r *http.Request) bool { _, ok := r.Header[HeaderForwarded]; return ok }

// Accept verifies a forwarded request and returns the client identity the
// sending peer vouches for. It fails for a missing or wrong signature, one
// older than a minute, or one addressed to another replica.
func (n *Node) Accept(r *http.Request) (Identity, error) {
	parts := strings.Split(r.Header.Get(HeaderForwarded), ".")
	if len(parts) != 7 || parts[0] != "v1" {
		return Identity{}, errNotSigned
	}
	ts, from, to := parts[1], parts[2], parts[3]
	name, err1 := unb64(parts[4])
	ip, err2 := unb64(parts[5])
	if err1 != nil || err2 != nil {
		return Identity{}, errNotSigned
	}
	who := Identity{Name: name, ClientIP: ip}
	if !n.check(parts[6], purposeForward, ts, from, to, r.Method, r.URL.RequestURI(), r.Header.Get("Mcp-Session-Id"), who.Name, who.ClientIP) {
		return Identity{}, errNotSigned
	}
	if !n.fresh(ts) {
		return Identity{}, errStale
	}
	if to != n.self {
		return Identity{}, errNotMine
	}
	return who, nil
}

func unb64(s string) (string, error) {
	b, err := b64dec(s)
	return string(b), err
}
