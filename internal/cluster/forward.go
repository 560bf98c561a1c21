package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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

// Sign sets the header that makes r a request forwarded by this replica
// to replica to, vouching for who.
func (n *Node) Sign(r *http.Request, to string, who Identity) {
	r.Header.Set(HeaderForwarded, n.signature(r.Method, r.URL.RequestURI(), r.Header.Get("Mcp-Session-Id"), to, who))
}

// signature is the value of HeaderForwarded for a request to replica to.
// The MAC binds the time, sender, receiver, method, target and session,
// and the identity, so that a captured header is good for nothing else
// (and for a minute only).
func (n *Node) signature(method, target, session, to string, who Identity) string {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := n.keys.mac(purposeForward, ts, n.self, to, method, target, session, who.Name, who.ClientIP)
	return strings.Join([]string{"v1", ts, n.self, to, b64([]byte(who.Name)), b64([]byte(who.ClientIP)), b64(mac)}, ".")
}

// Forward sends r, whose body the caller has read (body), to replica, the
// owner of the session it names, and streams the owner's answer (SSE
// included) back on w as it comes. who is the client as this replica
// authenticated it; dropHeaders are further credential headers
// (auth.jwt.headers) not to carry. When the owner cannot be reached before
// anything was written, fail is called with the reason (ErrUnknownOwner,
// or a connection error) and the replica is dropped from the directory.
// When the client goes away, the hop is cancelled with it; done, when
// closed, also cancels it (the gateway's drain, for long-lived GET
// streams).
func (n *Node) Forward(w http.ResponseWriter, r *http.Request, body []byte, replica string, who Identity, dropHeaders []string, done <-chan struct{}, fail func(http.ResponseWriter, *http.Request, error)) {
	base, ok := n.Peer(r.Context(), replica)
	if !ok {
		fail(w, r, ErrUnknownOwner)
		return
	}
	ctx := r.Context()
	if done != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		// owner: Forward; ends when the hop does (cancel) or done closes.
		go func() {
			select {
			case <-done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	hr := &hopRequest{
		r: r, body: body, base: base,
		signed: n.signature(r.Method, r.URL.RequestURI(), r.Header.Get("Mcp-Session-Id"), replica, who),
		resp:   func(h http.Header) { delete(h, "X-Request-Id") }, // this replica set its own, the same
	}
	if len(dropHeaders) > 0 {
		hr.drop = func(k string) bool {
			for _, d := range dropHeaders {
				if strings.EqualFold(d, k) {
					return true
				}
			}
			return false
		}
	}
	hc, err := n.hops.get(ctx, base)
	for err == nil {
		var wrote, unread bool
		wrote, unread, err = n.hops.roundTrip(ctx, w, hc, hr)
		if wrote {
			if err != nil && ctx.Err() == nil {
				n.log.Debug("cluster: forwarded answer cut short", "peer", replica, "error", err.Error())
			}
			return
		}
		// Nothing was written, so hc was closed, not pooled: it is still
		// this request's to look at.
		if err == nil || !unread || !hc.reused || ctx.Err() != nil {
			break
		}
		// A pooled connection that fails before any byte of an answer
		// is one the owner closed while it was idle (it restarted, or
		// shut its idle connections): the request goes once more on a
		// new connection, as net/http's client does for idempotent
		// requests. An owner closes a connection with a request on it
		// only when it dies, and then the new one is refused.
		hc, err = n.hops.dial(ctx, base)
	}
	if err == nil || ctx.Err() != nil {
		return // the client went away (or the gateway drains): nobody reads an answer
	}
	n.forget(replica)
	fail(w, r, fmt.Errorf("forwarding to replica %q: %w", replica, err))
}

// copyBufferSize is the size of the buffers the hop copies answers
// through.
const copyBufferSize = 32 << 10

var copyBufferPool = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

// copyBuffers lends the hop its copy buffers from a pool, instead of
// allocating (and clearing) 32 KiB for every forwarded request.
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
