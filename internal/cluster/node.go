package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/internal/config"
)

// HelloPath is where a replica says who it is to its peers.
const HelloPath = "/_mcpgw/cluster/hello"

const (
	hdrHello = "Mcp-Gateway-Hello"
	// maxSkew is how far apart two replicas' clocks (and a signature's age)
	// may be: a signed header older than this is refused, which bounds the
	// replay of a captured one.
	maxSkew = 60 * time.Second
	// maxHelloBytes bounds a peer's hello answer.
	maxHelloBytes = 4096
)

// ErrUnknownOwner is returned by Forward when no peer answers for the
// replica a session id names: it is gone, or was never a peer.
var ErrUnknownOwner = errors.New("the replica that owns this session is not among the reachable peers")

// Options tune a Node; nil means production.
type Options struct {
	// Logger receives peer changes and hop failures; nil: slog.Default().
	Logger *slog.Logger
	// Resolver resolves dns:/// peers; nil: net.DefaultResolver.
	Resolver *net.Resolver
}

// Node is this replica's view of the cluster: its identity, its key, the
// directory of peers and the transport of the forwarding hop. Its methods
// may be called concurrently.
type Node struct {
	cfg      *config.Cluster
	keys     keyring
	self     string
	log      *slog.Logger
	resolver *net.Resolver
	tr       *http.Transport
	client   *http.Client // hello requests
	dir      *directory   // nil unless peers: redis
	left     atomic.Bool  // Leave was called: hellos answer 503

	hops *hopPool // the forwarding hop's connections (hop.go)

	mu          sync.Mutex
	peers       map[string]*url.URL // replica id → base URL, self excluded
	lastRefresh time.Time
	refreshing  sync.Mutex // one refresh at a time

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the refresh loop
	start  sync.Once
}

// New returns the node of cfg. It does no I/O; Start begins the peer
// refresh.
func New(cfg *config.Cluster, opts *Options) *Node {
	if opts == nil {
		opts = &Options{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	res := opts.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	tr := &http.Transport{
		// Never a proxy from the environment: the hop goes straight to
		// the peer.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: cfg.ForwardTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: cfg.ForwardTimeout,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:      cfg,
		keys:     keyring{key: []byte(cfg.Key)},
		self:     cfg.ReplicaID,
		log:      log,
		resolver: res,
		tr:       tr,
		client:   &http.Client{Transport: tr, Timeout: cfg.ForwardTimeout},
		hops:     newHopPool(cfg.ForwardTimeout),
		peers:    map[string]*url.URL{},
		ctx:      ctx,
		cancel:   cancel,
	}
	if cfg.RedisDirectory() && cfg.Redis != nil {
		n.dir = newDirectory(cfg, n.keys, log)
	}
	return n
}

// Self is this replica's id.
func (n *Node) Self() string { return n.self }

// NewID returns a fresh id owned by this replica (session ids, the random
// part of requestState handles).
func (n *Node) NewID() string { return n.keys.newID(n.self) }

// Owner returns the replica an id names, when the id carries a valid MAC
// under the cluster key; ok is false for a forged or foreign id.
func (n *Node) Owner(id string) (replica string, ok bool) { return n.keys.owner(id) }

// Start logs what this replica exposes and begins refreshing the directory
// of peers every cluster.refresh. Only the first call does anything.
func (n *Node) Start() {
	n.start.Do(func() {
		n.log.Warn("cluster: this gateway is one replica of several; it accepts requests that peers holding the cluster key forward, with the client identity they vouch for",
			"replica", n.self, "peers", strings.Join(n.cfg.Peers, ","), "advertise_url", n.cfg.AdvertiseURL)
		n.wg.Add(1)
		// owner: Node (wg); ends at Close.
		go n.refreshLoop()
	})
}

// Leave takes this replica out of the cluster when it begins to drain:
// it stops answering hellos, so that peers drop it at their next refresh
// (and answer 404 for its sessions, sending clients to a new session
// elsewhere, rather than forward to a replica about to go), and, with the
// directory in Redis, it stops heartbeating and deletes its entry. It
// waits at most cluster.redis.timeout. Requests already forwarded here
// are served to the end; Close ends the rest.
func (n *Node) Leave(ctx context.Context) {
	n.left.Store(true)
	if n.dir != nil {
		n.dir.leave(ctx)
	}
}

// Close stops the refresh loop, closes idle hop connections and the
// connections to Redis. It does not remove the entry in the directory
// (Leave does); that expires by itself.
func (n *Node) Close() {
	n.cancel()
	n.wg.Wait()
	n.tr.CloseIdleConnections()
	n.hops.close()
	if n.dir != nil {
		n.dir.close()
	}
}

func (n *Node) refreshLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.Refresh)
	defer t.Stop()
	for {
		if n.dir != nil {
			n.dir.heartbeat(n.ctx)
		}
		n.refresh(n.ctx)
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Peer returns the base URL of replica. When it is not in the directory,
// the directory is refreshed first (at most once per second), so that a
// replica that has just started is found.
func (n *Node) Peer(ctx context.Context, replica string) (*url.URL, bool) {
	n.mu.Lock()
	u, last := n.peers[replica], n.lastRefresh
	n.mu.Unlock()
	if u != nil {
		return u, true
	}
	if time.Since(last) < min(time.Second, n.cfg.Refresh) {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ForwardTimeout)
	defer cancel()
	n.refresh(ctx)
	n.mu.Lock()
	u = n.peers[replica]
	n.mu.Unlock()
	return u, u != nil
}

// forget drops replica from the directory after a failed hop; the next
// refresh adds it back if it answers.
func (n *Node) forget(replica string) {
	n.mu.Lock()
	_, ok := n.peers[replica]
	delete(n.peers, replica)
	n.mu.Unlock()
	if ok {
		n.log.Warn("cluster: peer unreachable; its sessions answer 404 until it answers again", "peer", replica)
	}
}

// refresh resolves the configured peers, asks each address who it is and
// replaces the directory with the answers.
func (n *Node) refresh(ctx context.Context) {
	n.refreshing.Lock()
	defer n.refreshing.Unlock()
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ForwardTimeout)
	defer cancel()
	bases := n.targets(ctx)
	type answer struct {
		base    string
		replica string
		u       *url.URL
	}
	answers := make(chan answer, len(bases))
	var wg sync.WaitGroup
	for _, b := range bases {
		wg.Add(1)
		// owner: refresh (wg), bounded by ctx.
		go func() {
			defer wg.Done()
			id, u, err := n.hello(ctx, b)
			if err != nil {
				n.log.Debug("cluster: peer did not answer hello", "address", b, "error", err.Error())
				return
			}
			answers <- answer{b, id, u}
		}()
	}
	wg.Wait()
	close(answers)
	next := map[string]*url.URL{}
	for a := range answers {
		if a.replica == n.self {
			continue
		}
		if prev, dup := next[a.replica]; dup && prev.String() != a.u.String() {
			n.log.Error("cluster: two peers claim the same replica id; give each replica its own cluster.replica_id", "replica", a.replica, "addresses", prev.String()+","+a.u.String())
		}
		next[a.replica] = a.u
	}
	n.mu.Lock()
	prev := n.peers
	n.peers, n.lastRefresh = next, time.Now()
	n.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(next)) {
		if prev[id] == nil {
			n.log.Info("cluster: peer joined", "peer", id, "url", next[id].String())
		}
	}
	for _, id := range slices.Sorted(maps.Keys(prev)) {
		if next[id] == nil && ctx.Err() == nil {
			n.log.Info("cluster: peer left", "peer", id)
		}
	}
}

// targets are the base URLs of every configured peer, DNS names resolved
// and the directory in Redis read.
func (n *Node) targets(ctx context.Context) []string {
	var out []string
	for _, p := range n.cfg.Peers {
		if p == config.PeersRedis {
			if n.dir != nil {
				out = append(out, n.dir.targets(ctx)...)
			}
			continue
		}
		name, ok := strings.CutPrefix(p, "dns:///")
		if !ok {
			out = append(out, p)
			continue
		}
		host, port, err := net.SplitHostPort(name)
		if err != nil {
			continue // validated by config
		}
		addrs, err := n.resolver.LookupHost(ctx, host)
		if err != nil {
			n.log.Debug("cluster: resolving peers", "name", host, "error", err.Error())
			continue
		}
		for _, a := range addrs {
			out = append(out, "http://"+net.JoinHostPort(a, port))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

type helloAnswer struct {
	Replica string `json:"replica"`
	URL     string `json:"url,omitempty"`
	MAC     string `json:"mac"`
}

// hello asks the replica at base for its id, proving that this node holds
// the key and checking that the answer was made with it.
func (n *Node) hello(ctx context.Context, base string) (string, *url.URL, error) {
	var nb [16]byte
	_, _ = rand.Read(nb[:])
	nonce := base64.RawURLEncoding.EncodeToString(nb[:])
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+HelloPath, nil)
	if err != nil {
		return "", nil, err
	}
	req.Header.Set(hdrHello, ts+"."+nonce+"."+b64(n.keys.mac(purposeHello, "request", ts, nonce)))
	resp, err := n.client.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var a helloAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxHelloBytes)).Decode(&a); err != nil {
		return "", nil, fmt.Errorf("reading the answer: %w", err)
	}
	got, err := b64dec(a.MAC)
	if err != nil || !hmac.Equal(got, n.keys.mac(purposeHello, "answer", nonce, a.Replica, a.URL)) {
		return "", nil, errors.New("the answer is not signed with this cluster's key")
	}
	u, err := url.Parse(base)
	if a.URL != "" {
		u, err = url.Parse(a.URL)
	}
	if err != nil {
		return "", nil, err
	}
	return a.Replica, u, nil
}

// ServeHello answers a peer's hello: this replica's id and advertise URL,
// signed. A request without a valid signature gets 403; after Leave,
// every hello gets 503.
func (n *Node) ServeHello(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(r.Header.Get(hdrHello), ".")
	if len(parts) != 3 || !n.fresh(parts[0]) || !n.check(parts[2], purposeHello, "request", parts[0], parts[1]) {
		http.Error(w, "not a peer of this cluster: the request is not signed with the cluster key", http.StatusForbidden)
		return
	}
	if n.left.Load() {
		http.Error(w, "this replica is draining: it takes no new work", http.StatusServiceUnavailable)
		return
	}
	a := helloAnswer{Replica: n.self, URL: n.cfg.AdvertiseURL}
	a.MAC = b64(n.keys.mac(purposeHello, "answer", parts[1], a.Replica, a.URL))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(a)
}

// fresh reports whether the unix time ts is within maxSkew of now.
func (n *Node) fresh(ts string) bool {
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	d := time.Since(time.Unix(t, 0))
	return d < maxSkew && d > -maxSkew
}

// check reports whether mac (base64url) is the MAC of purpose and parts.
func (n *Node) check(mac, purpose string, parts ...string) bool {
	got, err := b64dec(mac)
	return err == nil && hmac.Equal(got, n.keys.mac(purpose, parts...))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
