package session

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/mcpgw/mcpgw/internal/backend"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/runtime"
)

// The container runtime (issue 3) as the session layer sees it: an engine
// shared by all container servers, a sweep of leftovers at start, and the
// readiness check. Starting and stopping containers is package runtime's.

// engineCheckTimeout bounds the engine calls of one readiness check.
const engineCheckTimeout = 3 * time.Second

// sweepTimeout bounds the sweep of leftover containers at start.
const sweepTimeout = 30 * time.Second

// openEngine connects to the container engine if any server needs it and
// removes the containers an earlier gateway instance left behind (DESIGN.md,
// "The core rule": after SIGKILL, leftovers are removed at the next start).
// An engine that does not answer is logged, not fatal: native servers keep
// working and readiness reports the engine.
func (m *Manager) openEngine() *runtime.Engine {
	if !slices.ContainsFunc(m.Servers(), func(s *Server) bool { return s.cfg.Runtime == "container" }) {
		return nil
	}
	e, err := runtime.NewEngine(runtime.NewInstanceID(), m.log)
	if err != nil {
		m.log.Error("container engine unusable; container servers are unavailable", "runtime", "container", "error", err.Error())
		return nil
	}
	ctx, cancel := context.WithTimeout(m.ctx, sweepTimeout)
	defer cancel()
	swept, err := e.Sweep(ctx)
	for _, c := range swept {
		m.log.Warn("removed a container left by an earlier gateway instance", "runtime", "container",
			"container", c.ID, "name", c.Name, "tool", c.Server, "instance", c.Instance, "state", c.State)
	}
	if err != nil {
		m.log.Warn("could not sweep leftover containers", "runtime", "container", "error", err.Error())
	}
	return e
}

// EngineVersion pings the container engine and returns its version; ok is
// false when no configured server runs in a container.
func (m *Manager) EngineVersion() (version string, ok bool, err error) {
	if m.engine == nil {
		if !slices.ContainsFunc(m.Servers(), func(s *Server) bool { return s.cfg.Runtime == "container" }) {
			return "", false, nil
		}
		return "", true, errNoEngine
	}
	ctx, cancel := context.WithTimeout(m.ctx, engineCheckTimeout)
	defer cancel()
	v, err := m.engine.Version(ctx)
	return v, true, err
}

var errNoEngine = errors.New("the container engine client could not be configured (see the gateway log)")

// containerEnv is a container's explicit environment: the server's env
// only. The image brings its own PATH and HOME; the gateway's are
// meaningless inside it.
func containerEnv(cfg *config.Server) []string {
	out := make([]string, 0, len(cfg.Env))
	for k, v := range cfg.Env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// checkContainer is readiness for a container server: the engine answers
// and the image is present (or may be pulled).
func (s *Server) checkContainer() error {
	e := s.m.engine
	if e == nil {
		return errNoEngine
	}
	ctx, cancel := context.WithTimeout(s.m.ctx, engineCheckTimeout)
	defer cancel()
	if _, err := e.Version(ctx); err != nil {
		return err
	}
	err := e.CheckImage(ctx, s.cfg.Container.Image)
	var missing *runtime.ImageMissingError
	if errors.As(err, &missing) && s.cfg.Container.Pull == "missing" {
		return nil // pulled on first use
	}
	return err
}

// startContainer starts one container for a new session. The caller turns
// every failure into a 503 (server unavailable) before any stream starts;
// for a missing image the message names the image and the commands that
// fetch or build it (issue 3).
func (s *Server) startContainer(h backend.Handler) (*backend.Backend, error) {
	e := s.m.engine
	if e == nil {
		return nil, errNoEngine
	}
	c := s.cfg.Container
	if err := s.verifyWorkspaces(); err != nil {
		return nil, err
	}
	var mounts []runtime.Mount
	for _, w := range s.cfg.Workspaces {
		mounts = append(mounts, runtime.Mount{Source: w.HostPath, Target: w.Target, ReadOnly: w.ReadOnly()})
	}
	// Bounded by the startup timeout (which also bounds a pull) and by
	// gateway shutdown.
	ctx, cancel := context.WithTimeout(s.m.ctx, s.cfg.Timeouts.Startup)
	defer cancel()
	if err := e.CheckImage(ctx, c.Image); err != nil {
		var missing *runtime.ImageMissingError
		if !errors.As(err, &missing) || c.Pull != "missing" {
			return nil, err
		}
		s.m.log.Info("pulling image", "tool", s.Name, "runtime", "container", "image", c.Image)
		if err := e.Pull(ctx, c.Image); err != nil {
			return nil, err
		}
	}
	ctr, err := e.Start(ctx, runtime.ContainerSpec{
		Server:    s.Name,
		Image:     c.Image,
		Command:   s.cfg.Command,
		Env:       s.env,
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
		KillGrace: s.cfg.Timeouts.KillGrace,
	})
	if err != nil {
		return nil, err
	}
	s.m.log.Info("container started", "tool", s.Name, "runtime", "container", "container", ctr.ID(), "name", ctr.Name(), "image", c.Image)
	return backend.New(containerProcess{ctr}, h, backend.Options{
		Name:            s.Name,
		Runtime:         s.cfg.Runtime,
		MaxMessageBytes: s.m.cfg.Limits.MaxMessageBytes,
		Logger:          s.m.log,
	}), nil
}

// containerProcess adapts runtime.Container to backend.Process.
type containerProcess struct{ *runtime.Container }

func (p containerProcess) Stdin() backend.WriteDeadliner { return p.Container.Stdin() }
