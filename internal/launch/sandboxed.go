package launch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcpgw/mcpgw/internal/config"
)

// Every sandboxed native server gets a private writable cache directory,
// state_dir/cache/NAME, exported as the cache variables of the usual
// launchers, so that npx, uvx and pip find a writable cache under the
// default sandbox (the user's ~/.npm, ~/.cache are not in its rules, and
// under /root they may not be added). HOME is left as it is: a server may
// read its own configuration there, and the cache variables are what the
// launchers write to.

// cacheEnv maps each cache variable to its directory under the cache root.
var cacheEnv = map[string]string{
	"XDG_CACHE_HOME":   "",
	"npm_config_cache": "npm",
	"UV_CACHE_DIR":     "uv",
	"PIP_CACHE_DIR":    "pip",
}

// CacheDir is the private cache directory of sc's processes, "" when it
// has none: it runs unsandboxed or in a container, or the gateway has no
// state_dir.
func (l *Launcher) CacheDir(sc *config.Server) string {
	if sc.Runtime == config.RuntimeContainer || sc.Sandbox == config.SandboxNone || l.cfg.Load().StateDir == "" {
		return ""
	}
	return filepath.Join(l.cfg.Load().StateDir, "cache", sc.Name)
}

// prepareCache creates sc's cache directory (mode 0700) and returns its
// real path, "" when sc has none.
func (l *Launcher) prepareCache(sc *config.Server) (string, error) {
	dir := l.CacheDir(sc)
	if dir == "" {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("server %q: creating its cache directory: %w; make state_dir (%s) writable for uid %d or set state_dir", sc.Name, err, l.cfg.Load().StateDir, os.Getuid())
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("server %q: its cache directory: %w", sc.Name, err)
	}
	return real, nil
}

// sandboxHint is what is appended to the error of a sandboxed process
// that exits on its own (during its startup or a request), for the client
// and the log: that it ran under Landlock, what it was allowed, and which
// keys widen that. A denial otherwise looks like something else (npm's
// "cache folder contains root-owned files", ERR_MODULE_NOT_FOUND for a
// file that exists, EACCES on a data file).
func (l *Launcher) sandboxHint(sc *config.Server, commandDir string) string {
	if sc.Runtime == config.RuntimeContainer || sc.Sandbox == config.SandboxNone {
		return ""
	}
	key := "servers." + sc.Name
	read := []string{"system directories (/usr, /etc, /lib, /bin, /opt …)"}
	if commandDir != "" {
		read = append(read, commandDir+" (its command's directory)")
	}
	if len(sc.ReadPaths) > 0 {
		read = append(read, "read_paths "+strings.Join(sc.ReadPaths, ", "))
	}
	var ws []string
	write := []string{"its TMPDIR"}
	for _, w := range sc.Workspaces {
		ws = append(ws, w.Name+" ("+w.Mode+")")
		if !w.ReadOnly() {
			write = append(write, "workspace "+w.Name)
		}
	}
	if dir := l.CacheDir(sc); dir != "" {
		write = append(write, "its cache "+dir)
	}
	workspaces := "no workspaces"
	if len(ws) > 0 {
		workspaces = "workspaces " + strings.Join(ws, ", ")
	}
	return fmt.Sprintf("it ran under the Landlock sandbox (%s.sandbox: %s), which lets it read %s and %s, and write only %s; "+
		"if it needs more, add the directory to %s.read_paths (read) or %s.workspaces (read or write), or set %s.sandbox: none",
		key, sc.Sandbox, strings.Join(read, ", "), workspaces, strings.Join(write, ", "), key, key, key)
}
