package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	pathpkg "path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Workspaces: named host directories that servers mount, each
// read-only or read-write. Everything is checked at load, against the file
// system, so that a bad path is a config error and nothing starts.
//
// Symlinks are resolved at load and the resolved real path is what a server
// gets (HostPath). A symlink swapped in later cannot redirect it: every start
// re-resolves the path and refuses it if it now leads elsewhere
// (VerifyMount), and the native sandbox then opens each directory once and
// checks that what it opened is still that real path before allowing access
// beneath the opened directory (package sandbox). For containers the engine
// opens the path itself after the spawn-time check; the window between the
// two is the part that remains, and only someone who can already write the
// workspace's parent directories can use it.

// workspaceNamePattern keeps names usable in MCPGW_WORKSPACE_<NAME>.
var workspaceNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// WorkspaceEnv is the environment variable that gives a server the path of
// workspace name: MCPGW_WORKSPACE_ and the name in upper case.
func WorkspaceEnv(name string) string {
	return "MCPGW_WORKSPACE_" + strings.ToUpper(name)
}

// VerifyMount checks, at spawn time, that m's workspace and subpath still
// resolve to the HostPath checked at load, and that it is a directory.
func VerifyMount(root string, m Mount) error {
	real, err := resolveMount(root, m.Subpath)
	if err != nil {
		return fmt.Errorf("workspace %q: %w", m.Name, err)
	}
	if real != m.HostPath {
		return fmt.Errorf("workspace %q: %s now leads to %s instead of %s (a symlink changed since the configuration was loaded); reload the gateway", m.Name, filepath.Join(root, m.Subpath), real, m.HostPath)
	}
	return nil
}

// resolveMount returns the real path of root/subpath, which must be a
// directory inside root's real path.
func resolveMount(root, subpath string) (string, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", root, errors.Unwrap(err))
	}
	real := realRoot
	if subpath != "" {
		real, err = filepath.EvalSymlinks(filepath.Join(realRoot, subpath))
		if err != nil {
			return "", fmt.Errorf("subpath %s: %w", subpath, errors.Unwrap(err))
		}
		if !within(real, realRoot) {
			return "", fmt.Errorf("subpath %s leads to %s, outside the workspace (%s): symlinks must not lead out", subpath, real, realRoot)
		}
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", real)
	}
	return real, nil
}

// within reports whether p is dir or beneath it (both clean and absolute).
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// homeDir is the gateway user's home directory for the sensitive-path
// checks; "" when unknown. A variable so that tests can set it.
var homeDir = func() string {
	h, _ := os.UserHomeDir()
	return h
}

// workspaces checks the top-level workspaces and every server's mounts,
// and sets each mount's HostPath.
func (v *validator) workspaces(c *Config) {
	home := homeDir()
	ok := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(c.Workspaces)) {
		p := joinKey("workspaces", name)
		dir := c.Workspaces[name]
		if !workspaceNamePattern.MatchString(name) {
			v.add(p, "invalid workspace name: use 1 to 32 characters a-z, 0-9 and _, starting with a letter (it names the variable MCPGW_WORKSPACE_<NAME>)")
			continue
		}
		if err := checkHostDir(dir, home); err != nil {
			v.add(p, err.Error()+v.got(p, dir))
			continue
		}
		ok[name] = true
	}

	for _, sname := range slices.Sorted(maps.Keys(c.Servers)) {
		s := c.Servers[sname]
		if s == nil {
			continue
		}
		v.serverWorkspaces(joinKey("servers", sname), s, c, ok, home)
	}
}

// checkHostDir checks a workspace's host directory as written and as
// resolved.
func checkHostDir(dir, home string) error {
	if strings.IndexByte(dir, 0) >= 0 {
		return errors.New("must not contain a NUL byte")
	}
	if err := CheckMountSource(dir, home); err != nil {
		return err
	}
	real, err := resolveMount(dir, "")
	if err != nil {
		return fmt.Errorf("must be an existing directory: %v", err)
	}
	if err := CheckMountSource(real, home); err != nil {
		return fmt.Errorf("resolves to %s, which %v", real, err)
	}
	return nil
}

func (v *validator) serverWorkspaces(path string, s *Server, c *Config, ok map[string]bool, home string) {
	native := s.Runtime != RuntimeContainer
	switch s.Sandbox {
	case SandboxLandlock, SandboxBestEffort:
		if !native {
			v.add(path+".sandbox", "is for runtime: native only; a container is confined by its mounts (remove the key)")
		}
	case SandboxNone:
		if native && len(s.Workspaces) > 0 {
			v.add(path+".sandbox", "must be landlock or best_effort for a server with workspaces: without a sandbox nothing limits it to them")
		}
	default:
		v.add(path+".sandbox", "must be one of landlock, best_effort, none"+v.got(path+".sandbox", s.Sandbox))
	}
	if len(s.ReadPaths) > 0 && (!native || s.Sandbox == SandboxNone) {
		v.add(path+".read_paths", "applies to a sandboxed native server only (runtime: native with sandbox landlock or best_effort)")
	}
	for i, rp := range s.ReadPaths {
		p := fmt.Sprintf("%s.read_paths[%d]", path, i)
		if !filepath.IsAbs(rp) {
			v.add(p, "must be an absolute path"+v.got(p, rp))
			continue
		}
		real, err := filepath.EvalSymlinks(rp)
		if err != nil {
			v.add(p, "must exist: "+errors.Unwrap(err).Error()+v.got(p, rp))
			continue
		}
		for _, q := range []string{rp, real} {
			if err := CheckMountSource(q, home); err != nil && !within(filepath.Clean(q), "/etc") {
				v.add(p, err.Error()+v.got(p, rp))
				break
			}
		}
		s.ReadPaths[i] = real
	}

	seen := map[string]int{}
	for i := range s.Workspaces {
		m := &s.Workspaces[i]
		p := fmt.Sprintf("%s.workspaces[%d]", path, i)
		if m.Mode != "ro" && m.Mode != "rw" {
			v.add(p+".mode", "must be ro or rw"+v.got(p+".mode", m.Mode))
		}
		if j, dup := seen[m.Name]; dup {
			v.add(p+".name", fmt.Sprintf("workspace %q is already mounted by workspaces[%d]; mount it once (use its subpath, or another workspace)", m.Name, j))
			continue
		}
		seen[m.Name] = i
		root, declared := c.Workspaces[m.Name]
		switch {
		case m.Name == "":
			v.add(p+".name", "is required: the name of a workspace under the top-level workspaces:")
			continue
		case !declared:
			v.add(p+".name", "is not a workspace under the top-level workspaces:"+v.got(p+".name", m.Name))
			continue
		case !ok[m.Name]:
			continue // reported at workspaces.NAME
		}
		if sp := m.Subpath; sp != "" {
			if filepath.IsAbs(sp) || slices.Contains(strings.Split(sp, "/"), "..") || strings.IndexByte(sp, 0) >= 0 {
				v.add(p+".subpath", "must be a relative path inside the workspace, without .."+v.got(p+".subpath", sp))
				continue
			}
		}
		real, err := resolveMount(root, m.Subpath)
		if err != nil {
			v.add(p+".subpath", err.Error())
			continue
		}
		if err := CheckMountSource(real, home); err != nil {
			v.add(p+".subpath", "resolves to "+real+", which "+err.Error())
			continue
		}
		m.HostPath = real
		if native {
			if m.Target != "" {
				v.add(p+".target", "is for runtime: container only; a native server sees the host path, given in $"+WorkspaceEnv(m.Name))
			}
		} else if m.Target != "" && (!pathpkg.IsAbs(m.Target) || pathpkg.Clean(m.Target) != m.Target || m.Target == "/") {
			v.add(p+".target", "must be a clean absolute path inside the container other than /, e.g. /workspace/"+m.Name+v.got(p+".target", m.Target))
		}
	}
	v.overlaps(path, s)
}

// overlaps refuses mounts that would not mean what they say. Containers:
// two mounts on one target, and a rw mount beneath a ro mount's target
// (the ro mount would look like it covers it). Native: Landlock grants the
// union of all rules, so a ro directory beneath a rw one would be writable,
// and a rw one beneath a ro one is refused for the same reason as in a
// container.
func (v *validator) overlaps(path string, s *Server) {
	for i, a := range s.Workspaces {
		for j, b := range s.Workspaces {
			if i == j || a.HostPath == "" || b.HostPath == "" {
				continue
			}
			p := fmt.Sprintf("%s.workspaces[%d]", path, j)
			if s.Runtime == RuntimeContainer {
				switch {
				case i < j && a.Target == b.Target:
					v.add(p+".target", fmt.Sprintf("%s is already the target of workspaces[%d]", b.Target, i))
				case a.ReadOnly() && !b.ReadOnly() && within(b.Target, a.Target):
					v.add(p+".target", fmt.Sprintf("a rw mount must not be beneath the ro mount workspaces[%d] (%s)", i, a.Target))
				}
				continue
			}
			if a.Mode != b.Mode && within(b.HostPath, a.HostPath) {
				v.add(p, fmt.Sprintf("%s (%s) is inside %s (%s) of workspaces[%d]: Landlock grants the union of both, so one mode would not hold; mount disjoint directories", b.HostPath, b.Mode, a.HostPath, a.Mode, i))
			}
		}
	}
}
