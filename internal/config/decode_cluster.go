package config

import (
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// cluster decodes cluster:, reading the cluster key from the environment.
func (d *decoder) cluster(path string, n *yaml.Node, dst **Cluster) {
	if isNull(d.resolve(n)) {
		return
	}
	c := &Cluster{Refresh: defaultClusterRefresh, ForwardTimeout: defaultForwardTimeout}
	d.mapping(path, n, fields{
		"replica_id":      d.str(&c.ReplicaID),
		"advertise_url":   d.str(&c.AdvertiseURL),
		"peers":           d.peers(&c.Peers),
		"key_env":         d.str(&c.KeyEnv),
		"refresh":         d.duration(&c.Refresh),
		"forward_timeout": d.duration(&c.ForwardTimeout),
		"redis":           func(p string, n *yaml.Node) { d.redis(p, n, &c.Redis) },
	}, nil)
	if c.ReplicaID == "" {
		if h, err := os.Hostname(); err == nil {
			c.ReplicaID = strings.ToLower(h)
		}
	}
	c.Key = d.secretEnv(path+".key_env", n, c.KeyEnv)
	*dst = c
}

// redis decodes cluster.redis, reading the URL from the environment.
func (d *decoder) redis(path string, n *yaml.Node, dst **Redis) {
	if isNull(d.resolve(n)) {
		return
	}
	r := &Redis{Timeout: defaultRedisTimeout}
	d.mapping(path, n, fields{
		"url_env": d.str(&r.URLEnv),
		"timeout": d.duration(&r.Timeout),
	}, nil)
	r.URL = d.secretEnv(path+".url_env", n, r.URLEnv)
	*dst = r
}

// peers decodes cluster.peers: a list, or the word redis alone (peers:
// redis), which is short for [redis].
func (d *decoder) peers(dst *[]string) field {
	list := d.strList(dst, `; e.g. ["http://10.0.0.2:8080", "dns:///mcpgw-headless:8080"], or peers: redis`)
	return func(path string, n *yaml.Node) {
		if r := d.resolve(n); r.Kind == yaml.ScalarNode && r.ShortTag() == "!!str" && r.Value == PeersRedis {
			*dst = []string{PeersRedis}
			return
		}
		list(path, n)
	}
}
