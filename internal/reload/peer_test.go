package reload

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/testutil"
)

// peerEnv makes the test binary, run as another user by
// TestControlSocketRefusesOtherUsers, the client at the other end: it sends
// "reload" to the socket it names and prints what comes back.
const peerEnv = "MCPGW_RELOAD_TEST_PEER_SOCKET"

func TestMain(m *testing.M) {
	if path := os.Getenv(peerEnv); path != "" {
		c, err := net.Dial("unix", path)
		if err != nil {
			os.Stdout.WriteString("dial: " + err.Error())
			os.Exit(3)
		}
		_, _ = io.WriteString(c, "reload\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		os.Stdout.WriteString("reply: " + line)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestControlSocketRefusesOtherUsers: even with the directory and the socket
// opened to everyone (a mistake the modes normally prevent), a process of
// another user gets no answer and reloads nothing; the peer's uid is logged.
// Running a process as another user needs root, as CI has.
func TestControlSocketRefusesOtherUsers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("runs a client as another user (uid 65534), which needs root; CI runs as root")
	}
	base, err := os.MkdirTemp("", "mcpgw-peer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	dir := filepath.Join(base, "state")
	var logs testutil.Buffer
	var calls atomic.Int32
	srv, err := Listen(dir, func(context.Context) Reply {
		calls.Add(1)
		return Reply{OK: true, Summary: "reloaded"}
	}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// The client binary, and the way to the socket, open to uid 65534.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	client := filepath.Join(base, "peer.test")
	if err := os.WriteFile(client, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{base, dir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(srv.Path(), 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(client)
	cmd.Env = []string{peerEnv + "=" + srv.Path()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client as uid 65534: %v: %s", err, out)
	}
	if string(out) != "reply: " {
		t.Errorf("the other user's client got %q, want no reply", out)
	}
	if calls.Load() != 0 {
		t.Errorf("the other user's request reloaded (%d calls)", calls.Load())
	}
	testutil.Eventually(t, 5*time.Second, "the refusal is logged", func() bool {
		return strings.Contains(logs.String(), `"msg":"control socket: refused a connection from another user","peer_uid":65534`)
	})
	// The gateway's own user is still answered.
	if r, err := Request(t.Context(), dir); err != nil || !r.OK || calls.Load() != 1 {
		t.Errorf("own request after the refusal: %+v, %v, %d calls", r, err, calls.Load())
	}
}
