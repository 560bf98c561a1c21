// Package runtime starts and stops the processes that run stdio MCP servers.
//
// A runtime knows how to start one process, wire its stdio and stop it; it
// knows nothing of MCP. This package enforces the stop half of the core rule
// (docs/design.md, "No process without a deadline"): Stop always runs
//
//	close stdin → grace → SIGTERM to the process group → grace → SIGKILL to
//	the process group → reap
//
// and is bounded by twice the grace period plus reaping. Children are started
// in their own process group, so the signals reach everything the server
// forked, and with a parent-death signal (SIGKILL), so a gateway killed with
// SIGKILL takes its direct children with it.
//
// Containers (container.go) follow the same rule through the
// Docker Engine API: Container.Stop runs
//
//	close stdin → grace → docker stop (SIGTERM → grace → SIGKILL) →
//	docker kill → remove
//
// with every engine call bounded, and Engine.Sweep removes, at gateway
// start, the containers of a gateway process that died without stopping
// them. The deadlines that decide when Stop is called (startup, request,
// idle, lifetime) live in package session.
package spawn

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mcpgw/mcpgw/internal/sandbox"
)

// NativeSpec describes one native process.
type NativeSpec struct {
	// Command is the argv; Command[0] is resolved with exec.LookPath against
	// the PATH in Env (or the gateway's PATH when Env has none). Never a shell.
	Command []string
	// Env is the complete environment of the child ("KEY=value" entries).
	// Nothing from the gateway's environment is inherited implicitly.
	Env []string
	// Dir is the working directory; "" means the gateway's.
	Dir string
	// KillGrace is the wait after closing stdin and after SIGTERM; zero means 5s.
	KillGrace time.Duration
	// Sandbox, when not nil, confines the process with Landlock:
	// the gateway starts itself as package sandbox's shim, which restricts
	// itself to the rules and execs the command. The command's directory,
	// /dev/null and a private temporary directory (TMPDIR, removed once the
	// process is reaped) are added to the rules.
	Sandbox *Sandbox
}

// Sandbox is the Landlock policy of a native process.
type Sandbox struct {
	Rules      []sandbox.Rule
	BestEffort bool // see sandbox.Spec
}

// Process is a running native process in its own process group.
//
// Stdin, Stdout and Stderr are pipes backed by the runtime poller, so
// deadlines work and Close unblocks a pending Read or Write. Stop and Close
// may be called concurrently and more than once.
type Process struct {
	cmd    *exec.Cmd
	pid    int
	grace  time.Duration
	stdin  *os.File
	stdout *os.File
	stderr *os.File

	done    chan struct{} // closed once the process has been reaped
	waitErr error         // valid after done
	tmpDir  string        // the sandbox's private temporary directory, removed after reaping

	stopOnce sync.Once
	stopErr  error
}

// StartNative starts spec's command. The returned process must be stopped
// with Stop.
func StartNative(spec NativeSpec) (*Process, error) {
	if len(spec.Command) == 0 {
		return nil, errors.New("starting process: empty command")
	}
	path, err := LookPath(spec.Command[0], spec.Env)
	if err != nil {
		return nil, fmt.Errorf("starting %q: %w", spec.Command[0], err)
	}
	grace := spec.KillGrace
	if grace <= 0 {
		grace = 5 * time.Second
	}

	var files []*os.File // parent's copies of the child's ends; closed after start
	closeAll := func(fs ...*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting %q: stdin pipe: %w", spec.Command[0], err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, fmt.Errorf("starting %q: stdout pipe: %w", spec.Command[0], err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, fmt.Errorf("starting %q: stderr pipe: %w", spec.Command[0], err)
	}
	files = append(files, inR, outW, errW)

	argv, env, tmpDir := spec.Command, spec.Env, ""
	if spec.Sandbox != nil {
		if path, argv, env, tmpDir, err = sandboxed(path, spec); err != nil {
			closeAll(inR, inW, outR, outW, errR, errW)
			return nil, fmt.Errorf("starting %q: %w", spec.Command[0], err)
		}
	}
	cmd := &exec.Cmd{
		Path:   path,
		Args:   argv,
		Env:    env,
		Dir:    spec.Dir,
		Stdin:  inR,
		Stdout: outW,
		Stderr: errW,
		SysProcAttr: &syscall.SysProcAttr{
			// Own process group: signals reach every process the server forks.
			Setpgid: true,
			// Parent-death signal: if the gateway dies (even by SIGKILL), the
			// kernel kills the child. It is tied to the OS thread that forked;
			// the gateway never locks goroutines to threads that exit, so that
			// thread lives as long as the gateway.
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if cmd.Env == nil {
		cmd.Env = []string{} // nil would mean "inherit the gateway's environment"
	}
	if err := cmd.Start(); err != nil {
		closeAll(inR, inW, outR, outW, errR, errW)
		if tmpDir != "" {
			_ = os.RemoveAll(tmpDir)
		}
		return nil, fmt.Errorf("starting %q: %w", spec.Command[0], err)
	}
	closeAll(files...)

	p := &Process{
		cmd:    cmd,
		pid:    cmd.Process.Pid,
		grace:  grace,
		stdin:  inW,
		stdout: outR,
		stderr: errR,
		done:   make(chan struct{}),
		tmpDir: tmpDir,
	}
	// Owner: the Process. It ends when the child is reaped, which Stop
	// guarantees within its bound.
	go p.wait()
	return p, nil
}

func (p *Process) wait() {
	err := p.cmd.Wait()
	// The leader is gone; anything left in its group (a grandchild that did
	// not follow it) is killed so that nothing outlives the server. The group
	// id cannot have been reused: members keep it alive, and without members
	// the signal finds no one.
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	if p.tmpDir != "" {
		_ = os.RemoveAll(p.tmpDir)
	}
	p.waitErr = err
	close(p.done)
}

// sandboxed returns the program, argv and environment that start the
// command at path through the sandbox shim: this very binary, with the
// spec in sandbox.EnvVar. The shim runs with the pid that Process tracks and
// execs in place, so the process group and parent-death signal hold.
func sandboxed(path string, spec NativeSpec) (self string, argv, env []string, tmpDir string, err error) {
	self, err = os.Executable()
	if err != nil {
		return "", nil, nil, "", fmt.Errorf("locating the gateway binary for the sandbox: %w", err)
	}
	tmpDir, err = os.MkdirTemp("", "mcpgw-sandbox-")
	if err != nil {
		return "", nil, nil, "", fmt.Errorf("creating the sandbox's temporary directory: %w", err)
	}
	if real, err := filepath.EvalSymlinks(tmpDir); err == nil {
		tmpDir = real
	}
	rules := append([]sandbox.Rule(nil), spec.Sandbox.Rules...)
	rules = append(rules,
		sandbox.Rule{Path: tmpDir, Write: true, Exact: true},
		sandbox.Rule{Path: filepath.Dir(path)},
	)
	// A command reached through a symlink (/usr/local/bin/x → /opt/x/bin/x)
	// also needs the directory it really lives in.
	if real, err := filepath.EvalSymlinks(path); err == nil && filepath.Dir(real) != filepath.Dir(path) {
		rules = append(rules, sandbox.Rule{Path: filepath.Dir(real)})
	}
	for _, p := range sandbox.SystemReadPaths() {
		rules = append(rules, sandbox.Rule{Path: p})
	}
	b, err := json.Marshal(sandbox.Spec{Path: path, Args: spec.Command, Rules: rules, BestEffort: spec.Sandbox.BestEffort})
	if err != nil {
		_ = os.RemoveAll(tmpDir)
		return "", nil, nil, "", err
	}
	env = make([]string, 0, len(spec.Env)+2)
	for _, kv := range spec.Env {
		if !strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	env = append(env, "TMPDIR="+tmpDir, sandbox.EnvVar+"="+string(b))
	return self, []string{self}, env, tmpDir, nil
}

// LookPath resolves a command name like exec.LookPath, but against the PATH
// in env (KEY=value entries) when env sets one.
func LookPath(name string, env []string) (string, error) {
	for i := len(env) - 1; i >= 0; i-- {
		if len(env[i]) > 5 && env[i][:5] == "PATH=" {
			return lookPathIn(name, env[i][5:])
		}
	}
	return exec.LookPath(name)
}

func lookPathIn(name, pathList string) (string, error) {
	// exec.LookPath reads the gateway's own PATH; resolve by hand against
	// the child's instead of mutating the process environment.
	if containsSlash(name) {
		return exec.LookPath(name)
	}
	for _, dir := range splitList(pathList) {
		if dir == "" {
			dir = "."
		}
		cand := dir + "/" + name
		if fi, err := os.Stat(cand); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return cand, nil
		}
	}
	return "", fmt.Errorf("%w: not in any directory of the server's PATH (%s)", exec.ErrNotFound, pathList)
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ':' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// ID identifies the process in logs (its pid).
func (p *Process) ID() string { return strconv.Itoa(p.pid) }

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int { return p.pid }

// Stdin is the write end of the child's stdin.
func (p *Process) Stdin() *os.File { return p.stdin }

// Stdout is the read end of the child's stdout.
func (p *Process) Stdout() io.ReadCloser { return p.stdout }

// Stderr is the read end of the child's stderr.
func (p *Process) Stderr() io.ReadCloser { return p.stderr }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr describes how the process ended; valid after Done is closed.
func (p *Process) ExitErr() error {
	select {
	case <-p.done:
		return p.waitErr
	default:
		return nil
	}
}

// Stop runs the stop sequence (package comment) and returns once the process
// has been reaped. It returns an error only if a signal could not be sent for
// a reason other than the process being gone already.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stop() })
	<-p.done
	return p.stopErr
}

func (p *Process) stop() error {
	// 1. Close stdin: a well-behaved stdio server exits on EOF.
	_ = p.stdin.Close()
	if p.waitFor(p.grace) {
		return nil
	}
	// 2. SIGTERM to the whole group.
	if err := syscall.Kill(-p.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping pid %d: SIGTERM: %w", p.pid, err)
	}
	if p.waitFor(p.grace) {
		return nil
	}
	// 3. SIGKILL to the whole group; reaping follows in wait.
	if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping pid %d: SIGKILL: %w", p.pid, err)
	}
	<-p.done
	return nil
}

func (p *Process) waitFor(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// CloseOutputs closes the read ends of stdout and stderr, unblocking readers
// that wait on a pipe some escaped grandchild still holds open.
func (p *Process) CloseOutputs() {
	_ = p.stdout.Close()
	_ = p.stderr.Close()
}
