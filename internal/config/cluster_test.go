package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const clusterKey = "k3y-of-the-cluster-0123456789abcdef"

func TestClusterDefaults(t *testing.T) {
	c := mustParse(t, `cluster:
  replica_id: mcpgw-0
  key_env: MCPGW_CLUSTER_KEY
  peers: ["http://10.0.0.2:8080", "dns:///mcpgw-headless:8080"]
servers: {a: {command: [x]}}
`, map[string]string{"MCPGW_CLUSTER_KEY": clusterKey})
	want := &Cluster{ReplicaID: "mcpgw-0", Peers: []string{"http://10.0.0.2:8080", "dns:///mcpgw-headless:8080"},
		KeyEnv: "MCPGW_CLUSTER_KEY", Key: clusterKey, Refresh: 5 * time.Second, ForwardTimeout: 2 * time.Second}
	if diff := cmp.Diff(want, c.Cluster); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if c := mustParse(t, "servers: {a: {command: [x]}}", nil); c.Cluster != nil {
		t.Errorf("no cluster key: Cluster = %+v, want nil", c.Cluster)
	}
}

// TestClusterRedisDirectory: peers: redis is short for [redis]; the entry
// may be combined with others.
func TestClusterRedisDirectory(t *testing.T) {
	env := map[string]string{"MCPGW_CLUSTER_KEY": clusterKey, "REDIS_URL": "redis://redis:6379/0"}
	for name, c := range map[string]struct {
		peers string
		want  []string
	}{
		"alone":         {"redis", []string{"redis"}},
		"quoted":        {`"redis"`, []string{"redis"}},
		"list":          {"[redis]", []string{"redis"}},
		"with a static": {`[redis, "http://10.0.0.2:8080"]`, []string{"redis", "http://10.0.0.2:8080"}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := mustParse(t, `cluster:
  replica_id: mcpgw-0
  key_env: MCPGW_CLUSTER_KEY
  advertise_url: http://10.0.0.1:8080
  peers: `+c.peers+`
  redis: {url_env: REDIS_URL}
servers: {a: {command: [x]}}
`, env)
			if diff := cmp.Diff(c.want, cfg.Cluster.Peers); diff != "" {
				t.Errorf("peers (-want +got):\n%s", diff)
			}
			if !cfg.Cluster.RedisDirectory() {
				t.Error("RedisDirectory() = false")
			}
		})
	}
	if cfg := mustParse(t, "cluster: {replica_id: a, key_env: MCPGW_CLUSTER_KEY, peers: [\"http://a:1\"]}\nservers: {a: {command: [x]}}\n", env); cfg.Cluster.RedisDirectory() {
		t.Error("static peers: RedisDirectory() = true")
	}
}

func TestClusterErrors(t *testing.T) {
	env := map[string]string{"KEY": clusterKey, "SHORT": "abc", "RURL": "http://:hunter2@redis:6379", "REDIS": "redis://redis:6379"}
	for _, c := range []struct{ name, yaml, want string }{
		{"no key", "cluster: {replica_id: a, peers: [\"http://a:1\"]}", "cluster.key_env: is required"},
		{"unset key", "cluster: {replica_id: a, key_env: NOPE, peers: [\"http://a:1\"]}", "cluster.key_env: environment variable NOPE is not set"},
		{"short key", "cluster: {replica_id: a, key_env: SHORT, peers: [\"http://a:1\"]}", "too short: it needs at least 32 bytes"},
		{"no peers", "cluster: {replica_id: a, key_env: KEY}", "cluster.peers: needs at least one entry"},
		{"peer path", "cluster: {replica_id: a, key_env: KEY, peers: [\"http://a:1/x\"]}", "cluster.peers[0]: must be a base URL without a path"},
		{"peer scheme", "cluster: {replica_id: a, key_env: KEY, peers: [\"ftp://a:1\"]}", "cluster.peers[0]: must be a base URL"},
		{"dns port", "cluster: {replica_id: a, key_env: KEY, peers: [\"dns:///svc\"]}", "cluster.peers[0]: must be dns:///name:port"},
		{"replica id", "cluster: {replica_id: A_B, key_env: KEY, peers: [\"http://a:1\"]}", "cluster.replica_id: must be a DNS label"},
		{"refresh", "cluster: {replica_id: a, key_env: KEY, peers: [\"http://a:1\"], refresh: 1ms}", "cluster.refresh:"},
		{"redis no url", "cluster: {replica_id: a, key_env: KEY, peers: [\"http://a:1\"], redis: {}}", "cluster.redis.url_env: is required"},
		{"redis scheme", "cluster: {replica_id: a, key_env: KEY, peers: [\"http://a:1\"], redis: {url_env: RURL}}", "cluster.redis.url_env: the URL in RURL must start with redis://"},
		{"redis timeout", "cluster: {replica_id: a, key_env: KEY, peers: [\"http://a:1\"], redis: {url_env: REDIS, timeout: 1h}}", "cluster.redis.timeout:"},
		{"unknown key", "cluster: {replica_id: a, key_env: KEY, peers: [\"http://a:1\"], key: x}", "cluster.key: unknown key"},
		{"directory without redis", "cluster: {replica_id: a, key_env: KEY, advertise_url: \"http://a:1\", peers: redis}", "cluster.peers[0]: redis: the directory of replicas is kept in Redis, so cluster.redis is required"},
		{"directory without advertise_url", "cluster: {replica_id: a, key_env: KEY, peers: [redis], redis: {url_env: REDIS}}", "cluster.advertise_url: is required with peers: redis"},
		{"peers another word", "cluster: {replica_id: a, key_env: KEY, peers: consul}", "cluster.peers: must be a list, not a single value; e.g. [\"http://10.0.0.2:8080\", \"dns:///mcpgw-headless:8080\"], or peers: redis"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml+"\nservers: {a: {command: [x]}}\n"), envOf(env))
			got := strings.Join(problemsOf(t, err), "\n")
			if !strings.Contains(got, c.want) {
				t.Errorf("problems:\n%s\nwant one containing %q", got, c.want)
			}
			if strings.Contains(got, clusterKey) || strings.Contains(got, "hunter2") {
				t.Errorf("a problem quotes the cluster key:\n%s", got)
			}
		})
	}
}
