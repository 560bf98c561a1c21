package launch

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Every sandboxed native server gets its own cache directory under
// state_dir in the usual launchers' variables; its env wins; unconfined
// and container servers get none.
func TestPrivateCacheEnv(t *testing.T) {
	state := t.TempDir()
	cfg := parse(t, `
state_dir: "${DIR}"
servers:
  fs: {command: [npx]}
  own: {command: [npx], env: {npm_config_cache: /srv/npm}}
  free: {command: [npx], sandbox: none}
  box: {runtime: container, container: {image: img}}
`, state)
	l := New(cfg, nil)
	cache := func(name string) []string {
		var out []string
		for _, kv := range l.env(cfg.Servers[name]) {
			for _, k := range []string{"XDG_CACHE_HOME=", "npm_config_cache=", "UV_CACHE_DIR=", "PIP_CACHE_DIR="} {
				if len(kv) > len(k) && kv[:len(k)] == k {
					out = append(out, kv)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	for name, want := range map[string][]string{
		"fs": {"PIP_CACHE_DIR=" + state + "/cache/fs/pip", "UV_CACHE_DIR=" + state + "/cache/fs/uv",
			"XDG_CACHE_HOME=" + state + "/cache/fs", "npm_config_cache=" + state + "/cache/fs/npm"},
		"own": {"PIP_CACHE_DIR=" + state + "/cache/own/pip", "UV_CACHE_DIR=" + state + "/cache/own/uv",
			"XDG_CACHE_HOME=" + state + "/cache/own", "npm_config_cache=/srv/npm"},
		"free": nil,
		"box":  nil,
	} {
		if diff := cmp.Diff(want, cache(name)); diff != "" {
			t.Errorf("cache variables of %s (-want +got):\n%s", name, diff)
		}
	}
	dir, err := l.prepareCache(cfg.Servers["fs"])
	if err != nil || dir != state+"/cache/fs" {
		t.Errorf("prepareCache = %q, %v; want %s/cache/fs", dir, err, state)
	}
}
