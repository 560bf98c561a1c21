package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

var replicaID = regexp.MustCompile(ReplicaIDPattern)

// cluster validates cluster:.
func (v *validator) cluster(c *Config) {
	cl := c.Cluster
	if cl == nil {
		return
	}
	const p = "cluster"
	if !replicaID.MatchString(cl.ReplicaID) {
		v.add(p+".replica_id", "must be a DNS label (lower-case letters, digits and -, at most 63), unique among the replicas; the host name is not one, so set it, e.g. replica_id: ${POD_NAME}"+v.got(p+".replica_id", cl.ReplicaID))
	}
	if cl.AdvertiseURL != "" {
		if err := checkPeerURL(cl.AdvertiseURL); err != nil {
			v.add(p+".advertise_url", err.Error()+v.got(p+".advertise_url", cl.AdvertiseURL))
		}
	}
	if len(cl.Peers) == 0 {
		v.add(p+".peers", `needs at least one entry: the replicas' base URLs, a DNS name or the directory in Redis, e.g. peers: ["dns:///mcpgw-headless:8080"] or peers: redis`)
	}
	for i, s := range cl.Peers {
		pp := fmt.Sprintf("%s.peers[%d]", p, i)
		var err error
		if s == PeersRedis {
			if cl.Redis == nil {
				v.add(pp, "redis: the directory of replicas is kept in Redis, so cluster.redis is required, e.g. redis: {url_env: REDIS_URL}")
			}
			if cl.AdvertiseURL == "" {
				v.add(p+".advertise_url", "is required with peers: redis: it is the address this replica writes in the directory for its peers, e.g. advertise_url: http://${POD_IP}:8080")
			}
			continue
		}
		if name, ok := strings.CutPrefix(s, "dns:///"); ok {
			err = checkDNSPeer(name)
		} else {
			err = checkPeerURL(s)
		}
		if err != nil {
			v.add(pp, err.Error()+v.got(pp, s))
		}
	}
	switch {
	case cl.KeyEnv == "":
		v.add(p+".key_env", "is required: the environment variable holding the cluster key that every replica shares, e.g. key_env: MCPGW_CLUSTER_KEY (make one with: openssl rand -hex 32)")
	case cl.Key != "" && len(cl.Key) < MinClusterKeyBytes:
		v.add(p+".key_env", fmt.Sprintf("the cluster key in %s is too short: it needs at least %d bytes (make one with: openssl rand -hex 32)", cl.KeyEnv, MinClusterKeyBytes))
	}
	v.durationRange(p+".refresh", cl.Refresh, minClusterRefresh, maxClusterRefresh)
	v.durationRange(p+".forward_timeout", cl.ForwardTimeout, minForwardTimeout, maxForwardTimeout)
	if r := cl.Redis; r != nil {
		if r.URLEnv == "" {
			v.add(p+".redis.url_env", "is required: the environment variable holding the Redis URL, e.g. url_env: REDIS_URL with REDIS_URL=redis://:PASSWORD@redis:6379/0")
		} else if r.URL != "" {
			if err := checkRedisURL(r.URL); err != nil {
				v.add(p+".redis.url_env", fmt.Sprintf("the URL in %s %s", r.URLEnv, err))
			}
		}
		v.durationRange(p+".redis.timeout", r.Timeout, minRedisTimeout, maxRedisTimeout)
	}
}

// checkRedisURL accepts redis:// and rediss:// URLs with a host. Its
// errors never quote the URL, which may hold a password.
func checkRedisURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("is not a URL: write redis://[user:password@]host:port[/db]")
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return fmt.Errorf("must start with redis:// or rediss:// (TLS)")
	case u.Host == "":
		return fmt.Errorf("has no host: write redis://[user:password@]host:port[/db]")
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if _, err := strconv.Atoi(db); err != nil {
			return fmt.Errorf("names database %q: it must be a number, e.g. redis://host:6379/0", db)
		}
	}
	return nil
}

// checkPeerURL accepts http(s)://host:port without user, path, query or
// fragment.
func checkPeerURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "" || (u.Scheme != "http" && u.Scheme != "https"):
		return fmt.Errorf(`must be a base URL http(s)://host:port or dns:///name:port, e.g. "http://10.0.0.2:8080"`)
	case u.User != nil:
		return fmt.Errorf("must not contain a user name or password")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("must be a base URL without a path, query or fragment: the gateway adds its own paths")
	}
	return nil
}

// checkDNSPeer accepts name:port, the part of dns:///name:port.
func checkDNSPeer(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf(`must be dns:///name:port, e.g. "dns:///mcpgw-headless:8080"`)
	}
	return nil
}
