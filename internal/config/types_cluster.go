package config

import (
	"slices"
	"time"
)

// Cluster makes the gateway one replica of several behind a load balancer
// (cluster:). Replicas share the configuration and the cluster key; each
// session belongs to the replica that created it, and the others forward
// its requests there (package cluster).
type Cluster struct {
	// ReplicaID names this replica in the session ids it hands out:
	// cluster.replica_id, else the host name. It matches ReplicaIDPattern
	// and is unique among the peers.
	ReplicaID string
	// AdvertiseURL is how peers reach this replica (http(s)://host:port,
	// no path), or "" to let them use the address they found it at.
	AdvertiseURL string
	// Peers are the other replicas (this one may be listed too): base URLs
	// http(s)://host:port, dns:///name:port, every address of which is a
	// replica (a Kubernetes headless Service), or PeersRedis, the
	// directory in Redis where each replica writes its advertise URL.
	Peers []string
	// KeyEnv is the environment variable that holds the cluster key.
	KeyEnv string
	// Key is the cluster key, the secret that signs session ids and
	// forwarded requests. It never appears in logs or messages.
	Key string
	// Refresh is how often the peers are resolved and asked who they are.
	Refresh time.Duration
	// ForwardTimeout bounds connecting to an owner replica; a session
	// whose owner cannot be reached in time answers 404.
	ForwardTimeout time.Duration
	// Redis holds state the replicas share (today: rate limits); nil
	// keeps it in each replica's memory.
	Redis *Redis
}

// PeersRedis is the entry of cluster.peers (peers: redis, or an entry
// of the list) that finds the replicas in the directory in cluster.redis:
// each writes a heartbeat there with its advertise_url.
const PeersRedis = "redis"

// RedisDirectory reports whether the peers include the directory in
// Redis.
func (c *Cluster) RedisDirectory() bool { return slices.Contains(c.Peers, PeersRedis) }

// Redis is the connection to the Redis server of cluster.redis.
type Redis struct {
	// URLEnv is the environment variable holding the URL
	// (redis://[user:password@]host:port[/db], rediss:// for TLS).
	URLEnv string
	// URL is its value. It may hold a password: it never appears in logs
	// or messages.
	URL string
	// Timeout bounds each command, connecting included: past it a
	// request that needs Redis fails (503) rather than waits.
	Timeout time.Duration
}

// ReplicaIDPattern is what a replica id must match: a DNS label, as a
// Kubernetes pod name is, so that it needs no escaping in a session id.
const ReplicaIDPattern = `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`

// Cluster defaults and bounds.
const (
	defaultClusterRefresh = 5 * time.Second
	minClusterRefresh     = 500 * time.Millisecond
	maxClusterRefresh     = 5 * time.Minute

	defaultForwardTimeout = 2 * time.Second
	minForwardTimeout     = 100 * time.Millisecond
	maxForwardTimeout     = 30 * time.Second

	defaultRedisTimeout = 500 * time.Millisecond
	minRedisTimeout     = 10 * time.Millisecond
	maxRedisTimeout     = 10 * time.Second

	// MinClusterKeyBytes is the shortest cluster key accepted: 32 bytes,
	// the output size of HMAC-SHA256.
	MinClusterKeyBytes = 32
)
