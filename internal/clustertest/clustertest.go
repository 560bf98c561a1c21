// Package clustertest starts the external parts of the cluster tests on
// loopback ports: Debian's redis-server and haproxy, as real child
// processes of the test, which die with it (parent-death signal). When a
// program is missing the test is skipped with a message, or fails when
// its MCPGW_REQUIRE_… variable is 1 (set by .ci/run, which installs both).
package clustertest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Environment variables that turn a missing program into a failure.
const (
	EnvRequireRedis   = "MCPGW_REQUIRE_REDIS"
	EnvRequireHAProxy = "MCPGW_REQUIRE_HAPROXY"
)

// lookPath finds a program (also in the sbin directories, where Debian
// puts haproxy), skipping or failing tb when it is missing.
func lookPath(tb testing.TB, name, pkg, env string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		if p := filepath.Join(dir, name); isExec(p) {
			return p
		}
	}
	if os.Getenv(env) == "1" {
		tb.Fatalf("%s is not installed and %s=1: apt-get install -y %s", name, env, pkg)
	}
	tb.Skipf("skipping: %s is not installed (apt-get install -y %s; set %s=1 to make this a failure)", name, pkg, env)
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// FreePort returns a loopback port nothing listens on at the moment.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// child is a started program, stopped at the end of the test.
type child struct {
	tb   testing.TB
	cmd  *exec.Cmd
	done chan error
}

func start(tb testing.TB, path string, args ...string) *child {
	tb.Helper()
	cmd := exec.Command(path, args...)
	cmd.Dir = tb.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := os.Create(filepath.Join(cmd.Dir, "output.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", path, err)
	}
	out.Close()
	c := &child{tb: tb, cmd: cmd, done: make(chan error, 1)}
	// owner: child; ends when the process is reaped.
	go func() { c.done <- cmd.Wait() }()
	return c
}

// stop kills the process group and reaps the process.
func (c *child) stop() {
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-c.done:
		c.done <- nil // a second stop returns at once
	case <-time.After(10 * time.Second):
		c.tb.Errorf("%s did not end after SIGKILL", c.cmd.Path)
	}
}

// output is what the program printed, for failure messages.
func (c *child) output() string {
	b, _ := os.ReadFile(filepath.Join(c.cmd.Dir, "output.log"))
	return string(b)
}

// Redis is a redis-server on a loopback port.
type Redis struct {
	tb   testing.TB
	path string
	Port int
	opts RedisOptions
	dir  string // its data, kept across Stop and Start with Persist
	c    *child
}

// RedisOptions are the settings of StartRedisWith; the zero value is
// StartRedis's.
type RedisOptions struct {
	// Password is what the server requires (requirepass), "" for none.
	Password string
	// Persist keeps the data across Stop and Start (an append-only file
	// written at every command), as a production Redis does.
	Persist bool
}

// StartRedis starts redis-server without persistence on a free loopback
// port and waits until it answers PING.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	return StartRedisWith(tb, RedisOptions{})
}

// StartRedisWith is StartRedis with options.
func StartRedisWith(tb testing.TB, opts RedisOptions) *Redis {
	tb.Helper()
	r := &Redis{tb: tb, path: lookPath(tb, "redis-server", "redis-server", EnvRequireRedis), Port: FreePort(tb), opts: opts, dir: tb.TempDir()}
	r.Start()
	tb.Cleanup(r.Stop)
	return r
}

// URL is the redis:// URL of the server, with its password.
func (r *Redis) URL() string {
	if r.opts.Password != "" {
		return "redis://:" + r.opts.Password + "@127.0.0.1:" + strconv.Itoa(r.Port) + "/0"
	}
	return "redis://127.0.0.1:" + strconv.Itoa(r.Port) + "/0"
}

// Start starts the server (again, after Stop) on its port.
func (r *Redis) Start() {
	r.tb.Helper()
	args := []string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no", "--dir", r.dir}
	if r.opts.Persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if r.opts.Password != "" {
		args = append(args, "--requirepass", r.opts.Password)
	}
	r.c = start(r.tb, r.path, args...)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r.ping() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.tb.Fatalf("redis-server did not answer PING on port %d within 10s:\n%s", r.Port, r.c.output())
}

// Stop kills the server; its data is gone, unless it persists.
func (r *Redis) Stop() {
	if r.c != nil {
		r.c.stop()
	}
}

func (r *Redis) ping() bool {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.Port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	cmds := "PING\r\n"
	if r.opts.Password != "" {
		cmds = "AUTH " + r.opts.Password + "\r\n" + cmds
	}
	if _, err := conn.Write([]byte(cmds)); err != nil {
		return false
	}
	br := bufio.NewReader(conn)
	if r.opts.Password != "" {
		if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			return false
		}
	}
	// A server still loading its data answers -LOADING: not ready yet.
	line, err := br.ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// HAProxy is haproxy balancing HTTP round-robin, without affinity, over
// backends.
type HAProxy struct {
	Port int
	c    *child
}

// StartHAProxy starts haproxy in front of backends (host:port) and waits
// until it accepts connections.
func StartHAProxy(tb testing.TB, backends []string) *HAProxy {
	tb.Helper()
	path := lookPath(tb, "haproxy", "haproxy", EnvRequireHAProxy)
	h := &HAProxy{Port: FreePort(tb)}
	var b strings.Builder
	fmt.Fprintf(&b, `global
  maxconn 256
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout tunnel 60s
  option http-server-close
frontend mcp
  bind 127.0.0.1:%d
  default_backend gateways
backend gateways
  balance roundrobin
  # A replica that refuses the connection: the request goes to the next.
  option redispatch 1
  retries 2
  option httpchk GET /healthz
`, h.Port)
	for i, be := range backends {
		fmt.Fprintf(&b, "  server g%d %s check inter 1s fall 1 rise 1\n", i, be)
	}
	dir := tb.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command(path, "-c", "-f", cfg).CombinedOutput(); err != nil {
		tb.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	h.c = start(tb, path, "-db", "-f", cfg)
	tb.Cleanup(h.c.stop)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(h.Port), 200*time.Millisecond); err == nil {
			conn.Close()
			return h
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("haproxy did not listen on port %d within 10s:\n%s", h.Port, h.c.output())
	return nil
}

// URL is the balancer's base URL.
func (h *HAProxy) URL() string { return "http://127.0.0.1:" + strconv.Itoa(h.Port) }
