package spawn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// Labels every container of mcpgw carries. LabelOwner identifies
// the gateway process ("host/pid/start time") so that the sweep at start
// removes only what a dead gateway left, never the containers of another
// gateway that shares the engine.
const (
	LabelManaged  = "mcpgw.managed"
	LabelServer   = "mcpgw.server"
	LabelInstance = "mcpgw.instance"
	LabelOwner    = "mcpgw.owner"
)

// engineCallTimeout bounds each engine call that is not itself a wait
// (create, attach, start, inspect, remove, ping).
const engineCallTimeout = 30 * time.Second

// Engine is a connection to a Docker-compatible engine (Docker, or Podman
// through its Docker API socket) shared by all container servers of a
// gateway. Its methods may be called concurrently.
type Engine struct {
	cli      *client.Client
	instance string
	owner    string
	log      *slog.Logger
}

// NewEngine returns an engine client configured from the environment
// (DOCKER_HOST, DOCKER_API_VERSION, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY).
// The client negotiates the API version on first use (the default of
// client.New), so that old engines
// (Debian's docker.io 20.10 speaks API 1.41) work. It does not connect.
// instance names this gateway in labels; log may be nil.
func NewEngine(instance string, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.Default()
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("configuring the container engine client: %w", err)
	}
	return &Engine{cli: cli, instance: instance, owner: Owner(), log: log}, nil
}

// Close releases the client's connections.
func (e *Engine) Close() error { return e.cli.Close() }

// Instance is the gateway instance id written into labels.
func (e *Engine) Instance() string { return e.instance }

// Version pings the engine and returns its version ("20.10.24", …).
func (e *Engine) Version(ctx context.Context) (string, error) {
	if _, err := e.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return "", fmt.Errorf("container engine at %s: %w", e.cli.DaemonHost(), err)
	}
	v, err := e.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("container engine at %s: version: %w", e.cli.DaemonHost(), err)
	}
	return v.Version, nil
}

// ImageMissingError reports an image that is not present in the engine.
// Its message names the image and the commands that would get it.
type ImageMissingError struct{ Image string }

func (e *ImageMissingError) Error() string {
	return fmt.Sprintf("image %q is not present in the container engine; fetch it with `docker pull %s` or build it with `docker build -t %s .`, or set pull: missing", e.Image, e.Image, e.Image)
}

// CheckImage returns nil if image is present in the engine, an
// *ImageMissingError if not, or another error if the engine cannot be
// asked.
func (e *Engine) CheckImage(ctx context.Context, image string) error {
	_, err := e.cli.ImageInspect(ctx, image)
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return &ImageMissingError{Image: image}
	default:
		return fmt.Errorf("inspecting image %q: %w", image, err)
	}
}

// Pull fetches image from its registry.
func (e *Engine) Pull(ctx context.Context, image string) error {
	resp, err := e.cli.ImagePull(ctx, image, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("pulling image %q: %w", image, err)
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return fmt.Errorf("pulling image %q: %w", image, err)
	}
	return nil
}

// Swept is a container removed by Sweep.
type Swept struct {
	ID, Name, Server, Instance, State string
}

// Sweep removes the containers of mcpgw whose gateway is gone: those
// labelled mcpgw.managed=true whose owner label names a process of this
// host that no longer exists (or another process with that pid). It is
// called at gateway start so that, after a gateway killed with SIGKILL,
// nothing it started survives the next start (docs/design.md, "No process
// without a deadline"). Containers of live gateways and of other hosts are left alone.
func (e *Engine) Sweep(ctx context.Context) ([]Swept, error) {
	res, err := e.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelManaged+"=true"),
	})
	if err != nil {
		return nil, fmt.Errorf("listing containers of earlier gateways: %w", err)
	}
	var out []Swept
	var errs []error
	for _, c := range res.Items {
		owner := c.Labels[LabelOwner]
		if owner == e.owner || ownerAlive(owner) {
			continue
		}
		s := Swept{ID: shortID(c.ID), Server: c.Labels[LabelServer], Instance: c.Labels[LabelInstance], State: string(c.State)}
		if len(c.Names) > 0 {
			s.Name = strings.TrimPrefix(c.Names[0], "/")
		}
		if _, err := e.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing leftover container %s: %w", s.ID, err))
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// ContainerSpec describes one container. Hardening that is not listed here
// is always on (see Engine.Start).
type ContainerSpec struct {
	Server    string   // server name, for the label and the container name
	Image     string   // image reference
	Command   []string // replaces the image's CMD when not empty
	Env       []string // KEY=value; the image's own environment stays
	Network   string   // none | bridge | an existing network's name
	ReadOnly  bool     // read-only root filesystem
	TmpSize   int64    // bytes of the noexec,nosuid tmpfs at /tmp
	User      string   // uid[:gid]
	Memory    int64    // bytes; swap limited to the same
	CPUs      float64  // CPU quota
	PidsLimit int64    // processes and threads
	NoFile    int64    // RLIMIT_NOFILE
	CapAdd    []string // added back after CapDrop ALL (config allowlist)
	// Mounts are the workspaces: bind mounts of resolved host
	// directories, the only things from the host in the container. The
	// first one's target is the working directory.
	Mounts []Mount
	// KillGrace is the wait after closing stdin and after `docker stop`'s
	// SIGTERM; zero means 5s.
	KillGrace time.Duration
}

// Mount is one bind mount of a host directory.
type Mount struct {
	Source   string // absolute, symlink-free host path
	Target   string // absolute path in the container
	ReadOnly bool
}

// Container is a running container whose stdio is attached. It implements
// the same contract as Process: Stdin has write deadlines, Stdout and
// Stderr are demultiplexed from the attach stream, and Stop and
// CloseOutputs may be called concurrently and more than once.
type Container struct {
	e     *Engine
	id    string
	name  string
	grace time.Duration

	attach client.HijackedResponse
	stdin  *AttachedStdin
	stdout *io.PipeReader
	stderr *io.PipeReader

	done    chan struct{} // closed once the container has exited (or the engine is lost)
	waitErr error         // valid after done

	demuxDone  chan struct{}      // closed when the attach stream has ended
	waitCancel context.CancelFunc // ends the wait request to the engine

	stopOnce sync.Once
	stopErr  error
}

// Start creates, attaches and starts a container for spec. The returned
// container must be stopped with Stop, which also removes it.
//
// Always on: not privileged, CapDrop ALL, no-new-privileges, the
// engine's default seccomp profile (no seccomp option is passed), an init
// process as PID 1 (docker-init/tini) that forwards signals and reaps,
// private PID, IPC and UTS namespaces, no mounts besides the /tmp tmpfs
// and the workspaces' bind mounts (spec.Mounts), and no devices.
func (e *Engine) Start(ctx context.Context, spec ContainerSpec) (*Container, error) {
	grace := spec.KillGrace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	name := "mcpgw-" + spec.Server + "-" + randomHex(6)
	pids := spec.PidsLimit
	initTrue := true
	tmpfs := "rw,noexec,nosuid,nodev,size=" + strconv.FormatInt(spec.TmpSize, 10)
	cfg := &container.Config{
		Image:        spec.Image,
		Env:          spec.Env,
		User:         spec.User,
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
		OpenStdin:    true,
		// StdinOnce: when the gateway closes its side of the attach
		// stream, the engine closes the server's stdin (step 1 of the
		// stop sequence), also when the gateway dies.
		StdinOnce: true,
		Labels: map[string]string{
			LabelManaged:  "true",
			LabelServer:   spec.Server,
			LabelInstance: e.instance,
			LabelOwner:    e.owner,
		},
	}
	if len(spec.Command) > 0 {
		cfg.Cmd = spec.Command
	}
	var mounts []mount.Mount
	for _, m := range spec.Mounts {
		mounts = append(mounts, mount.Mount{
			Type:        mount.TypeBind,
			Source:      m.Source,
			Target:      m.Target,
			ReadOnly:    m.ReadOnly,
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate, CreateMountpoint: false},
		})
	}
	if len(spec.Mounts) > 0 {
		cfg.WorkingDir = spec.Mounts[0].Target
	}
	host := &container.HostConfig{
		NetworkMode:    container.NetworkMode(spec.Network),
		Privileged:     false,
		CapDrop:        []string{"ALL"},
		CapAdd:         spec.CapAdd,
		SecurityOpt:    []string{"no-new-privileges:true"},
		ReadonlyRootfs: spec.ReadOnly,
		Tmpfs:          map[string]string{"/tmp": tmpfs},
		Mounts:         mounts,
		Init:           &initTrue,
		PidMode:        "",        // private PID namespace
		IpcMode:        "private", // not shareable, not the host's
		UTSMode:        "",        // private UTS namespace
		LogConfig:      container.LogConfig{Type: "none"},
		Resources: container.Resources{
			Memory:     spec.Memory,
			MemorySwap: spec.Memory, // swap = memory: no swap beyond the limit
			NanoCPUs:   int64(math.Round(spec.CPUs * 1e9)),
			PidsLimit:  &pids,
			Ulimits:    []*container.Ulimit{{Name: "nofile", Soft: spec.NoFile, Hard: spec.NoFile}},
		},
	}
	created, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: host, Name: name})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			var missing *ImageMissingError
			if ierr := e.CheckImage(ctx, spec.Image); errors.As(ierr, &missing) {
				return nil, ierr
			}
		}
		return nil, fmt.Errorf("creating container for image %q: %w", spec.Image, err)
	}
	c := &Container{e: e, id: created.ID, name: name, grace: grace, done: make(chan struct{}), demuxDone: make(chan struct{})}
	fail := func(what string, err error) (*Container, error) {
		c.remove()
		return nil, fmt.Errorf("%s container %s (%s): %w", what, shortID(c.id), name, err)
	}
	// Attach before start, so that not a byte of output is lost.
	att, err := e.cli.ContainerAttach(ctx, c.id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return fail("attaching to", err)
	}
	c.attach = att.HijackedResponse
	// Register the wait before start so a container that exits at once is
	// not missed.
	// Its context outlives Start: Stop cancels it if the engine never
	// reports the exit.
	waitCtx, waitCancel := context.WithCancel(context.Background())
	c.waitCancel = waitCancel
	wait := e.cli.ContainerWait(waitCtx, c.id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := e.cli.ContainerStart(ctx, c.id, client.ContainerStartOptions{}); err != nil {
		waitCancel()
		c.attach.Close()
		return fail("starting", err)
	}

	c.stdin = &AttachedStdin{conn: c.attach.Conn}
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	c.stdout, c.stderr = outR, errR
	// Owner: the Container. It ends when the attach stream ends, which
	// happens when the container exits or Stop closes the connection.
	go func() {
		defer close(c.demuxDone)
		_, err := stdcopy.StdCopy(outW, errW, c.attach.Reader)
		if err == nil {
			err = io.EOF
		}
		outW.CloseWithError(err)
		errW.CloseWithError(err)
	}()
	// Owner: the Container. It ends when the container exits or the
	// engine connection is lost; Stop bounds both.
	go c.wait(wait)
	return c, nil
}

func (c *Container) wait(w client.ContainerWaitResult) {
	var err error
	select {
	case res := <-w.Result:
		switch {
		case res.Error != nil && res.Error.Message != "":
			err = fmt.Errorf("container %s: %s", shortID(c.id), res.Error.Message)
		case res.StatusCode != 0:
			err = c.exitError(res.StatusCode)
		}
	case werr := <-w.Error:
		err = fmt.Errorf("waiting for container %s: %w", shortID(c.id), werr)
	}
	c.waitErr = err
	close(c.done)
}

// exitError describes a non-zero exit, naming an OOM kill.
func (c *Container) exitError(code int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), engineCallTimeout)
	defer cancel()
	if info, err := c.e.cli.ContainerInspect(ctx, c.id, client.ContainerInspectOptions{}); err == nil && info.Container.State != nil && info.Container.State.OOMKilled {
		return fmt.Errorf("container %s was killed for exceeding its memory limit (exit status %d)", shortID(c.id), code)
	}
	return fmt.Errorf("container %s exited with status %d", shortID(c.id), code)
}

// ID identifies the container in logs: its short (12 hex digit) id.
func (c *Container) ID() string { return shortID(c.id) }

// FullID is the engine's id of the container.
func (c *Container) FullID() string { return c.id }

// Name is the container's name (mcpgw-SERVER-…).
func (c *Container) Name() string { return c.name }

// Stdin is the write side of the attach stream. Close half-closes it, which
// makes the engine close the server's stdin.
func (c *Container) Stdin() *AttachedStdin { return c.stdin }

// Stdout is the server's stdout, demultiplexed from the attach stream.
func (c *Container) Stdout() io.ReadCloser { return c.stdout }

// Stderr is the server's stderr, demultiplexed from the attach stream.
func (c *Container) Stderr() io.ReadCloser { return c.stderr }

// Done is closed once the container has exited.
func (c *Container) Done() <-chan struct{} { return c.done }

// ExitErr describes how the container ended; valid after Done is closed.
func (c *Container) ExitErr() error {
	select {
	case <-c.done:
		return c.waitErr
	default:
		return nil
	}
}

// CloseOutputs closes the read ends of stdout and stderr.
func (c *Container) CloseOutputs() {
	_ = c.stdout.Close()
	_ = c.stderr.Close()
}

// Stop runs the stop sequence of the core rule for a container:
//
//	close stdin → grace → `docker stop` (SIGTERM, grace, SIGKILL) →
//	`docker kill` → remove
//
// and returns once the container is gone. Every engine call is bounded, so
// Stop is bounded too, even when the engine does not answer.
func (c *Container) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Container) stop() error {
	// 1. Close stdin: a well-behaved stdio server exits on EOF.
	_ = c.stdin.Close()
	exited := c.waitFor(c.grace)
	var errs []error
	if !exited {
		// 2. docker stop: SIGTERM to PID 1 (the init process forwards it),
		// then SIGKILL after the grace period.
		secs := int(math.Ceil(c.grace.Seconds()))
		ctx, cancel := context.WithTimeout(context.Background(), c.grace+engineCallTimeout)
		_, err := c.e.cli.ContainerStop(ctx, c.id, client.ContainerStopOptions{Timeout: &secs})
		cancel()
		if err != nil && !cerrdefs.IsNotFound(err) {
			// 3. docker kill, in case stop could not finish.
			ctx, cancel := context.WithTimeout(context.Background(), engineCallTimeout)
			_, kerr := c.e.cli.ContainerKill(ctx, c.id, client.ContainerKillOptions{Signal: "KILL"})
			cancel()
			if kerr != nil && !cerrdefs.IsNotFound(kerr) {
				errs = append(errs, fmt.Errorf("stopping container %s: %w; killing it: %w", shortID(c.id), err, kerr))
			}
		}
	}
	// 4. Remove (forced, which also kills anything still running).
	if err := c.remove(); err != nil {
		errs = append(errs, err)
	}
	// The exit is reported by the engine; if it never is (engine gone or
	// hung), the wait request is cancelled so its goroutine ends.
	t := time.NewTimer(engineCallTimeout)
	select {
	case <-c.done:
	case <-t.C:
		c.waitCancel()
		<-c.done
		errs = append(errs, fmt.Errorf("container %s: no exit reported by the engine within %s", shortID(c.id), engineCallTimeout))
	}
	t.Stop()
	c.waitCancel()
	// The attach stream ends with the container, after its last output.
	// If it does not within a grace, closing the connection ends a
	// blocked read, and closing the output pipes a demultiplexer blocked
	// writing output that nobody reads any more.
	if !c.waitDemux() {
		c.attach.Close()
		if !c.waitDemux() {
			c.CloseOutputs()
			<-c.demuxDone
		}
	}
	c.attach.Close()
	return errors.Join(errs...)
}

func (c *Container) remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), engineCallTimeout)
	defer cancel()
	_, err := c.e.cli.ContainerRemove(ctx, c.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing container %s: %w", shortID(c.id), err)
	}
	return nil
}

func (c *Container) waitDemux() bool {
	t := time.NewTimer(c.grace)
	defer t.Stop()
	select {
	case <-c.demuxDone:
		return true
	case <-t.C:
		return false
	}
}

func (c *Container) waitFor(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

// AttachedStdin is the write side of a hijacked attach connection.
type AttachedStdin struct {
	conn      net.Conn
	closeOnce sync.Once
}

func (s *AttachedStdin) Write(p []byte) (int, error) { return s.conn.Write(p) }

// SetWriteDeadline bounds writes, as for a pipe.
func (s *AttachedStdin) SetWriteDeadline(t time.Time) error { return s.conn.SetWriteDeadline(t) }

// Close half-closes the connection: the engine sees EOF and, with
// StdinOnce, closes the server's stdin. Reading stdout goes on.
func (s *AttachedStdin) Close() error {
	s.closeOnce.Do(func() {
		if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
			return
		}
		_ = s.conn.Close()
	})
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// NewInstanceID returns a random id for a gateway instance.
func NewInstanceID() string { return randomHex(8) }

// Owner is the owner label value (LabelOwner) of the containers this
// process starts: "host/pid/start time".
var Owner = sync.OnceValue(selfOwner)

func selfOwner() string {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return host + "/" + strconv.Itoa(pid) + "/" + processStart(pid)
}

// ownerAlive reports whether the gateway process named by an owner label
// still runs on this host. A label of another host counts as alive: this
// gateway cannot tell, and removing a live gateway's containers would cut
// its sessions.
func ownerAlive(owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 3 {
		return false // not written by this version: treat as abandoned
	}
	host, _ := os.Hostname()
	if parts[0] != host {
		return true
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	start := processStart(pid)
	return start != "" && start == parts[2]
}

// processStart returns the start time of pid in clock ticks since boot
// (field 22 of /proc/PID/stat), which tells a process from a later one
// that reuses its pid; "" if there is no such process.
func processStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) may contain spaces and parentheses;
	// fields after the last ")" are plain.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19] // field 22 overall: fields 3.. start at f[0]
}
