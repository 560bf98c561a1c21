// Package reload is what asks a running gateway to re-read its
// configuration besides SIGHUP: the control socket that `mcpgw reload`
// talks to, and the watcher of `reload: watch`.
//
// The control socket is a Unix socket in the state directory
// (STATE_DIR/mcpgw.sock, mode 0600, in a directory of mode 0700). It is
// the one way in: nothing listens on TCP, the file's permissions keep
// other users out, and every connection's peer credentials are checked
// (SO_PEERCRED) so that only the gateway's own user, or root, is answered.
// Unlike a signal sent to a pid from a file, it cannot reach an unrelated
// process that reused a stale pid, and it tells the caller how the reload
// went.
//
// The protocol is one request line, "reload\n", answered by one JSON
// object (Reply) and the end of the connection.
package reload

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// SocketName is the control socket's file name in the state directory.
const SocketName = "mcpgw.sock"

// maxSocketPath is the longest path a Unix socket may have on Linux
// (sun_path is 108 bytes with its terminating NUL).
const maxSocketPath = 107

// Bounds of one control connection: the request line must arrive within
// requestTimeout and be at most maxRequest bytes; answering may take as
// long as a reload (binding a listener, connecting to the engine).
const (
	requestTimeout = 5 * time.Second
	maxRequest     = 64
	replyTimeout   = 2 * time.Minute
)

// Reply is the gateway's answer to one request.
type Reply struct {
	// OK reports that the new configuration is serving.
	OK bool `json:"ok"`
	// Summary says what changed, in one line.
	Summary string `json:"summary,omitempty"`
	// Problems are why the configuration was refused, one per line
	// (the same lines the gateway logs); empty when OK.
	Problems []string `json:"problems,omitempty"`
}

// SocketPath is the control socket's path under stateDir.
func SocketPath(stateDir string) (string, error) {
	if stateDir == "" {
		return "", errors.New("no state directory (state_dir), which holds the control socket")
	}
	p := filepath.Join(stateDir, SocketName)
	if len(p) > maxSocketPath {
		return "", fmt.Errorf("control socket path %s is longer than the %d bytes a Unix socket may have; choose a shorter state_dir", p, maxSocketPath)
	}
	return p, nil
}

// Server answers the control socket. Handle is called for each reload
// request, one at a time.
type Server struct {
	path   string
	ln     *net.UnixListener
	handle func(context.Context) Reply
	log    *slog.Logger
	uid    int

	mu     sync.Mutex // serialises handle
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection
}

// Listen creates the control socket under stateDir (creating the
// directory with mode 0700 if needed) and serves it until Close. A socket
// file that another live gateway answers is left alone (error); a stale
// one is replaced.
func Listen(stateDir string, handle func(context.Context) Reply, log *slog.Logger) (*Server, error) {
	path, err := SocketPath(stateDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the state directory %s: %w", stateDir, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another mcpgw answers the control socket %s (the same state_dir); `mcpgw reload` reaches that one", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale control socket %s: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("creating the control socket %s: %w", path, err)
	}
	// The directory (0700) already keeps others out; the socket's own
	// mode and the peer check below do too.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restricting the control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{path: path, ln: ln, handle: handle, log: log, uid: os.Getuid(), ctx: ctx, cancel: cancel}
	s.wg.Go(s.accept) // owner: Server, whose Close waits for it
	return s, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting, waits for the requests being answered and removes
// the socket file. Safe to call more than once.
func (s *Server) Close() error {
	s.cancel()
	err := s.ln.Close()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (s *Server) accept() {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("control socket: accept failed; mcpgw reload cannot reach this gateway, SIGHUP still works", "error", err.Error())
			}
			return
		}
		s.wg.Go(func() { s.serve(c) }) // owner: Server; bounded by requestTimeout and replyTimeout
	}
}

func (s *Server) serve(c *net.UnixConn) {
	defer c.Close()
	if uid, err := peerUID(c); err != nil || (uid != s.uid && uid != 0) {
		s.log.Warn("control socket: refused a connection from another user", "peer_uid", uid, "error", errString(err))
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(requestTimeout))
	line, err := bufio.NewReader(io.LimitReader(c, maxRequest)).ReadString('\n')
	if err != nil || line != "reload\n" {
		_ = c.SetWriteDeadline(time.Now().Add(requestTimeout))
		_ = json.NewEncoder(c).Encode(Reply{Problems: []string{`unknown request: the control socket takes "reload"`}})
		return
	}
	s.mu.Lock()
	reply := s.handle(s.ctx)
	s.mu.Unlock()
	_ = c.SetWriteDeadline(time.Now().Add(requestTimeout))
	if err := json.NewEncoder(c).Encode(reply); err != nil {
		s.log.Warn("control socket: could not answer mcpgw reload", "error", err.Error())
	}
}

// peerUID is the user id of the process at the other end of c.
func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, cerr
	}
	return int(cred.Uid), nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ErrNoGateway is wrapped by Request when no gateway answers the socket.
var ErrNoGateway = errors.New("no gateway answers")

// Request asks the gateway whose state directory is stateDir to reload,
// and returns its reply.
func Request(ctx context.Context, stateDir string) (*Reply, error) {
	path, err := SocketPath(stateDir)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("%w the control socket %s: is mcpgw serve running with this state_dir? (SIGHUP reloads it too)", ErrNoGateway, path)
		case errors.Is(err, fs.ErrPermission):
			return nil, fmt.Errorf("cannot open the control socket %s: permission denied; run mcpgw reload as the user that runs the gateway (or root)", path)
		}
		return nil, fmt.Errorf("connecting to the control socket %s: %w", path, err)
	}
	defer c.Close()
	deadline := time.Now().Add(replyTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	if _, err := io.WriteString(c, "reload\n"); err != nil {
		return nil, fmt.Errorf("asking the gateway to reload: %w", err)
	}
	var r Reply
	if err := json.NewDecoder(io.LimitReader(c, 1<<20)).Decode(&r); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("the gateway closed the control socket without answering (it refuses other users' connections: run mcpgw reload as the gateway's user or root)")
		}
		return nil, fmt.Errorf("reading the gateway's answer: %w", err)
	}
	return &r, nil
}
