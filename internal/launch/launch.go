// Package launch turns a configured server into a running *backend.Backend:
// the child's explicit environment, the Landlock rules of a native server,
// the re-check of its workspaces at every start, and the container engine
// shared by every container server (with the sweep of containers an earlier
// gateway left behind, and the engine and image readiness checks).
//
// It is the only package that knows both the configuration and package
// spawn; the session layer sees a Launcher through a one-method interface
// and never imports spawn, sandbox or the engine client.
//
// A Launcher follows the Open/Close discipline: New does no I/O, Open
// connects to the engine and sweeps leftovers, Close cancels the starts in
// flight, waits for them and releases the engine client.
package launch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/internal/backend"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/sandbox"
	"github.com/mcpgw/mcpgw/internal/spawn"
)

// engineCheckTimeout bounds the engine calls of one readiness check.
const engineCheckTimeout = 3 * time.Second

// sweepTimeout bounds the sweep of leftover containers in Open.
const sweepTimeout = 30 * time.Second

// Options configure a Launcher. A nil *Options is valid.
type Options struct {
	// Logger receives start, sweep and engine events; nil means slog.Default().
	Logger *slog.Logger
	// Getenv reads the gateway's environment for the children's minimal
	// base (PATH, HOME, LANG, TZ); nil means no base beyond a default PATH.
	Getenv func(string) (string, bool)
	// Meter returns the meter of a server's backends' traffic; nil (or a
	// nil meter) counts nothing.
	Meter func(server string) backend.Meter
	// NoSweep makes Open connect to the engine without removing the
	// containers of earlier gateway instances (for mcpgw check, which
	// changes nothing); false sweeps them.
	NoSweep bool
}

// Launcher starts the processes of the servers of one configuration. Its
// methods may be called concurrently once Open has returned.
type Launcher struct {
	cfg     atomic.Pointer[config.Config] // replaced by Reload
	log     *slog.Logger
	getenv  func(string) (string, bool)
	meter   func(server string) backend.Meter
	noSweep bool

	ctx    context.Context // cancelled by Close: bounds container starts
	cancel context.CancelFunc
	wg     sync.WaitGroup // starts in flight

	mu        sync.Mutex
	engine    *spawn.Engine // nil until Open, and when no server runs in a container
	engineErr error         // why there is no engine although one is needed
	closed    bool
}

// New returns a launcher for cfg's servers. It does no I/O.
func New(cfg *config.Config, opts *Options) *Launcher {
	if opts == nil {
		opts = &Options{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Launcher{log: log, getenv: getenv, meter: opts.Meter, noSweep: opts.NoSweep, ctx: ctx, cancel: cancel}
	l.cfg.Store(cfg)
	return l
}

// meterOf returns the meter of server's backends, or nil.
func (l *Launcher) meterOf(server string) backend.Meter {
	if l.meter == nil {
		return nil
	}
	return l.meter(server)
}

// needsEngine reports whether any configured server runs in a container.
func (l *Launcher) needsEngine() bool {
	return slices.ContainsFunc(slices.Collect(maps.Values(l.cfg.Load().Servers)),
		func(s *config.Server) bool { return s.Runtime == config.RuntimeContainer })
}

// Open logs what widens a server's exposure and, when a server runs in a
// container, connects to the engine and removes the containers that gateway
// processes which are gone left behind (after a SIGKILL, leftovers are
// removed at the next start). An engine that does not answer is logged,
// not returned: native servers keep working, and readiness reports the
// engine. The error is only ctx's.
func (l *Launcher) Open(ctx context.Context) error {
	cfg := l.cfg.Load()
	for _, name := range slices.Sorted(maps.Keys(cfg.Servers)) {
		sc := cfg.Servers[name]
		if sc.Runtime != config.RuntimeContainer && sc.Sandbox == config.SandboxNone && !sc.IsAggregate() {
			l.log.Info("server runs without a sandbox", "tool", name, "runtime", sc.Runtime, "sandbox", sc.Sandbox)
		}
	}
	if !l.needsEngine() {
		return nil
	}
	return l.connect(ctx)
}

// Reload makes cfg the configuration of the processes started from now on
// (its workspaces and limits.max_message_bytes). When a server of cfg runs
// in a container and the gateway has no engine client yet, it connects to
// the engine and sweeps leftovers, as Open does; an engine that does not
// answer is logged, not returned. Processes already running are not
// touched.
func (l *Launcher) Reload(ctx context.Context, cfg *config.Config) error {
	prev := l.cfg.Swap(cfg)
	for _, name := range slices.Sorted(maps.Keys(cfg.Servers)) {
		sc := cfg.Servers[name]
		if p := prev.Servers[name]; sc.Runtime != config.RuntimeContainer && sc.Sandbox == config.SandboxNone && !sc.IsAggregate() &&
			(p == nil || p.Sandbox != config.SandboxNone || p.Runtime == config.RuntimeContainer) {
			l.log.Info("server runs without a sandbox", "tool", name, "runtime", sc.Runtime, "sandbox", sc.Sandbox)
		}
	}
	l.mu.Lock()
	have := l.engine != nil || l.closed
	l.mu.Unlock()
	if have || !l.needsEngine() {
		return nil
	}
	return l.connect(ctx)
}

// connect creates the engine client and removes the containers that gone
// gateway processes left behind.
func (l *Launcher) connect(ctx context.Context) error {
	e, err := spawn.NewEngine(spawn.NewInstanceID(), l.log)
	if err != nil {
		l.log.Error("container engine unusable; container servers are unavailable", "runtime", config.RuntimeContainer, "error", err.Error())
		l.mu.Lock()
		l.engineErr = errNoEngine
		l.mu.Unlock()
		return nil
	}
	if l.noSweep {
		l.mu.Lock()
		l.engine = e
		l.mu.Unlock()
		return ctx.Err()
	}
	sctx, cancel := context.WithTimeout(ctx, sweepTimeout)
	defer cancel()
	swept, err := e.Sweep(sctx)
	for _, c := range swept {
		l.log.Warn("removed a container left by an earlier gateway instance", "runtime", config.RuntimeContainer,
			"container", c.ID, "name", c.Name, "tool", c.Server, "instance", c.Instance, "state", c.State)
	}
	if err != nil {
		l.log.Warn("could not sweep leftover containers", "runtime", config.RuntimeContainer, "error", err.Error())
	}
	l.mu.Lock()
	l.engine, l.engineErr = e, nil
	l.mu.Unlock()
	return ctx.Err()
}

// Close cancels the starts in flight, waits for them and releases the
// engine client. Processes already started belong to their backends and
// are not touched. Safe to call more than once.
func (l *Launcher) Close(ctx context.Context) error {
	l.cancel()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }() // owner: Close, which waits for it below or leaves it to finish
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("closing the launcher: starts still in flight: %w", ctx.Err())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.engine == nil {
		l.closed = true
		return nil
	}
	l.closed = true
	return l.engine.Close()
}

var (
	errNoEngine = errors.New("the container engine client could not be configured (see the gateway log)")
	errClosed   = errors.New("the gateway is shutting down")
)

func (l *Launcher) currentEngine() (*spawn.Engine, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.engine != nil:
		return l.engine, nil
	case l.engineErr != nil:
		return nil, l.engineErr
	}
	return nil, errNoEngine
}

// Start starts one process of server sc and returns its backend, whose
// Handler is h. Startup is bounded by the server's startup timeout (which
// also bounds an image pull), by ctx and by Close. Errors name the server.
func (l *Launcher) Start(ctx context.Context, sc *config.Server, h backend.Handler) (*backend.Backend, error) {
	l.wg.Add(1)
	defer l.wg.Done()
	if l.ctx.Err() != nil {
		return nil, errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, sc.Timeouts.Startup)
	defer cancel()
	defer context.AfterFunc(l.ctx, cancel)()
	if err := l.verifyWorkspaces(sc); err != nil {
		return nil, err
	}
	var p backend.Process
	var err error
	var hint string
	if sc.Runtime == config.RuntimeContainer {
		p, err = l.startContainer(ctx, sc)
	} else {
		p, hint, err = l.startNative(sc)
	}
	if err != nil {
		return nil, err
	}
	return backend.New(p, h, backend.Options{
		Name:            sc.Name,
		Runtime:         string(sc.Runtime),
		MaxMessageBytes: l.cfg.Load().Limits.MaxMessageBytes,
		Logger:          l.log,
		Redact:          slices.Collect(maps.Values(sc.Env)),
		Meter:           l.meterOf(sc.Name),
		ExitHint:        hint,
	}), nil
}

// startNative starts a native process, confined by Landlock unless the
// server opted out. hint is what the process's error says about its
// sandbox when it exits on its own ("" when unconfined).
func (l *Launcher) startNative(sc *config.Server) (_ backend.Process, hint string, _ error) {
	spec := spawn.NativeSpec{
		Command:   sc.Command,
		Env:       l.env(sc),
		Dir:       sc.Workdir,
		KillGrace: sc.Timeouts.KillGrace,
	}
	if sc.Sandbox != config.SandboxNone {
		if sc.Sandbox == config.SandboxLandlock {
			if err := sandbox.Check(); err != nil {
				return nil, "", fmt.Errorf("server %q needs sandbox: landlock: %w", sc.Name, err)
			}
		}
		sb := &spawn.Sandbox{BestEffort: sc.Sandbox == config.SandboxBestEffort}
		for _, w := range sc.Workspaces {
			sb.Rules = append(sb.Rules, sandbox.Rule{Path: w.HostPath, Write: !w.ReadOnly(), Exact: true})
		}
		for _, p := range sc.ReadPaths {
			sb.Rules = append(sb.Rules, sandbox.Rule{Path: p})
		}
		cache, err := l.prepareCache(sc)
		if err != nil {
			return nil, "", err
		}
		if cache != "" {
			sb.Rules = append(sb.Rules, sandbox.Rule{Path: cache, Write: true, Exact: true})
		}
		spec.Sandbox = sb
		if spec.Dir == "" && len(sc.Workspaces) > 0 {
			spec.Dir = sc.Workspaces[0].HostPath
		}
		cmdDir := ""
		if path, err := spawn.LookPath(sc.Command[0], spec.Env); err == nil {
			cmdDir = filepath.Dir(path)
		}
		hint = l.sandboxHint(sc, cmdDir)
	}
	// The process starts in its workdir: a missing one would surface as a
	// failed exec of the sandbox shim (the gateway's own binary).
	if err := checkDir(sc, spec.Dir); err != nil {
		return nil, "", err
	}
	proc, err := spawn.StartNative(spec)
	if err != nil {
		return nil, "", err
	}
	return nativeProcess{proc}, hint, nil
}

// checkDir reports a working directory dir (sc's workdir, or its first
// workspace) that does not exist or is not a directory, naming it and
// the key that sets it. An empty dir is the gateway's own.
func checkDir(sc *config.Server, dir string) error {
	if dir == "" {
		return nil
	}
	key := fmt.Sprintf("servers.%s.workdir", sc.Name)
	if sc.Workdir == "" {
		key = fmt.Sprintf("servers.%s.workspaces (the first, its working directory)", sc.Name)
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("working directory %s does not exist; create it or change %s", dir, key)
	case err != nil:
		return fmt.Errorf("working directory %s: %w; check %s", dir, err, key)
	case !fi.IsDir():
		return fmt.Errorf("working directory %s is not a directory; change %s", dir, key)
	}
	return nil
}

// startContainer starts one container. For a missing image the error
// names the image and the commands that fetch or build it.
func (l *Launcher) startContainer(ctx context.Context, sc *config.Server) (backend.Process, error) {
	e, err := l.currentEngine()
	if err != nil {
		return nil, err
	}
	c := sc.Container
	var mounts []spawn.Mount
	for _, w := range sc.Workspaces {
		mounts = append(mounts, spawn.Mount{Source: w.HostPath, Target: w.Target, ReadOnly: w.ReadOnly()})
	}
	if err := e.CheckImage(ctx, c.Image); err != nil {
		var missing *spawn.ImageMissingError
		if !errors.As(err, &missing) || c.Pull != config.PullMissing {
			return nil, err
		}
		l.log.Info("pulling image", "tool", sc.Name, "runtime", config.RuntimeContainer, "image", c.Image)
		if err := e.Pull(ctx, c.Image); err != nil {
			return nil, err
		}
	}
	ctr, err := e.Start(ctx, spawn.ContainerSpec{
		Server:    sc.Name,
		Image:     c.Image,
		Command:   sc.Command,
		Env:       l.env(sc),
		Network:   c.Network,
		ReadOnly:  c.ReadOnly,
		TmpSize:   c.TmpSize,
		User:      c.User,
		Memory:    c.Memory,
		CPUs:      c.CPUs,
		PidsLimit: int64(c.PidsLimit),
		NoFile:    int64(c.NoFile),
		CapAdd:    c.CapAdd,
		Mounts:    mounts,
		KillGrace: sc.Timeouts.KillGrace,
	})
	if err != nil {
		return nil, err
	}
	l.log.Info("container started", "tool", sc.Name, "runtime", config.RuntimeContainer, "container", ctr.ID(), "name", ctr.Name(), "image", c.Image)
	return containerProcess{ctr}, nil
}

// verifyWorkspaces re-checks at spawn that every workspace still resolves
// to the real path checked at load (config.VerifyMount): a symlink swapped
// since then refuses the start.
func (l *Launcher) verifyWorkspaces(sc *config.Server) error {
	for _, w := range sc.Workspaces {
		if err := config.VerifyMount(l.cfg.Load().Workspaces[w.Name], w); err != nil {
			return fmt.Errorf("starting server %q: %w", sc.Name, err)
		}
	}
	return nil
}

// env is a child's explicit environment, sorted. A native child gets a
// minimal base from the gateway (PATH, HOME, LANG, TZ) plus the server's
// env; a container gets the server's env only (the image brings its own
// PATH and HOME, the gateway's mean nothing inside it). A sandboxed
// native child also gets its private cache's variables (sandboxed.go),
// which its env may override. Nothing else is
// inherited, so secrets in the gateway's environment never reach servers
// not configured for them. Both get MCPGW_WORKSPACE_<NAME> with the path
// the server sees of each workspace.
func (l *Launcher) env(sc *config.Server) []string {
	env := map[string]string{}
	if sc.Runtime != config.RuntimeContainer {
		env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
		for _, k := range []string{"PATH", "HOME", "LANG", "TZ"} {
			if v, ok := l.getenv(k); ok {
				env[k] = v
			}
		}
	}
	if dir := l.CacheDir(sc); dir != "" {
		for k, sub := range cacheEnv {
			env[k] = filepath.Join(dir, sub)
		}
	}
	maps.Copy(env, sc.Env)
	out := make([]string, 0, len(env)+len(sc.Workspaces))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	for _, w := range sc.Workspaces {
		p := w.HostPath
		if sc.Runtime == config.RuntimeContainer {
			p = w.Target
		}
		out = append(out, config.WorkspaceEnv(w.Name)+"="+p)
	}
	return out
}

// Check reports whether the server's runtime can start it, for
// readiness: for a native server, Landlock where it is required and its
// command; for a container server, the engine and the image (or that it
// may be pulled).
func (l *Launcher) Check(ctx context.Context, sc *config.Server) error {
	if sc.IsAggregate() {
		return nil // it runs nothing: its members are checked as servers of their own
	}
	if sc.Runtime == config.RuntimeContainer {
		return l.checkContainer(ctx, sc)
	}
	if sc.Sandbox == config.SandboxLandlock {
		if err := sandbox.Check(); err != nil {
			return err
		}
	}
	dir := sc.Workdir
	if dir == "" && sc.Sandbox != config.SandboxNone && len(sc.Workspaces) > 0 {
		dir = sc.Workspaces[0].HostPath
	}
	if err := checkDir(sc, dir); err != nil {
		return err
	}
	if _, err := spawn.LookPath(sc.Command[0], l.env(sc)); err != nil {
		return fmt.Errorf("command %q: %w; install it, or give its absolute path as the first item of servers.%s.command", sc.Command[0], err, sc.Name)
	}
	return nil
}

func (l *Launcher) checkContainer(ctx context.Context, sc *config.Server) error {
	e, err := l.currentEngine()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, engineCheckTimeout)
	defer cancel()
	if _, err := e.Version(ctx); err != nil {
		return err
	}
	err = e.CheckImage(ctx, sc.Container.Image)
	var missing *spawn.ImageMissingError
	if errors.As(err, &missing) && sc.Container.Pull == config.PullMissing {
		return nil // pulled on first use
	}
	return err
}

// SandboxState describes, for readiness, how the server's native processes
// are confined: "none", or the sandbox mode with the kernel's Landlock ABI
// version or why Landlock is unavailable. It is "" for a container server.
func (l *Launcher) SandboxState(sc *config.Server) string {
	if sc.Runtime == config.RuntimeContainer {
		return ""
	}
	if sc.Sandbox == config.SandboxNone {
		return config.SandboxNone
	}
	abi, err := sandbox.ABI()
	switch {
	case err != nil && sc.Sandbox == config.SandboxBestEffort:
		return sc.Sandbox + ": unconfined, " + err.Error()
	case err != nil:
		return sc.Sandbox + ": " + err.Error()
	}
	return fmt.Sprintf("%s (landlock ABI %d)", sc.Sandbox, abi)
}

// EngineVersion pings the container engine and returns its version; used
// is false when no configured server runs in a container.
func (l *Launcher) EngineVersion(ctx context.Context) (version string, used bool, err error) {
	if !l.needsEngine() {
		return "", false, nil
	}
	e, err := l.currentEngine()
	if err != nil {
		return "", true, err
	}
	ctx, cancel := context.WithTimeout(ctx, engineCheckTimeout)
	defer cancel()
	v, err := e.Version(ctx)
	return v, true, err
}

// nativeProcess adapts spawn.Process to backend.Process.
type nativeProcess struct{ *spawn.Process }

func (p nativeProcess) Stdin() backend.WriteDeadliner { return p.Process.Stdin() }

// containerProcess adapts spawn.Container to backend.Process.
type containerProcess struct{ *spawn.Container }

func (p containerProcess) Stdin() backend.WriteDeadliner { return p.Container.Stdin() }
