package spawn

import (
	"bufio"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/proctest"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

func alive(pid int) bool { return proctest.Alive(pid) }

func TestStopSequence(t *testing.T) {
	cases := []struct {
		name    string
		script  string
		minTime time.Duration // the stop must not be faster (proves the grace steps)
		maxTime time.Duration
		signal  string
	}{
		// The exit status proves which step ended the process; the minimum
		// times prove that each grace period was waited out.
		// exits on stdin EOF: step 1 suffices
		{"exits on EOF", "echo ready >&2; cat >/dev/null", 0, 2 * time.Second, "exit status 0"},
		// ignores EOF, dies on SIGTERM: step 2
		{"dies on SIGTERM", "echo ready >&2; exec sleep 100", 200 * time.Millisecond, 3 * time.Second, "terminated"},
		// ignores EOF and SIGTERM: step 3
		{"needs SIGKILL", "trap '' TERM; echo ready >&2; while :; do sleep 0.05; done", 400 * time.Millisecond, 3 * time.Second, "killed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := StartNative(NativeSpec{Command: []string{"/bin/sh", "-c", c.script}, Env: []string{"PATH=/usr/bin:/bin"}, KillGrace: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			go io.Copy(io.Discard, p.Stdout())
			// The script says "ready" once its trap is installed: the
			// timings below depend on it.
			stderr := bufio.NewReader(p.Stderr())
			if line, err := stderr.ReadString('\n'); err != nil || line != "ready\n" {
				t.Fatalf("waiting for the script: %q %v", line, err)
			}
			go io.Copy(io.Discard, stderr)
			start := time.Now()
			if err := p.Stop(); err != nil {
				t.Fatal(err)
			}
			d := time.Since(start)
			if d < c.minTime || d > c.maxTime {
				t.Errorf("stop took %s, want between %s and %s", d, c.minTime, c.maxTime)
			}
			exit := "exit status 0"
			if p.ExitErr() != nil {
				exit = p.ExitErr().Error()
			}
			if !strings.Contains(exit, c.signal) {
				t.Errorf("exit = %q, want %q", exit, c.signal)
			}
			if alive(p.Pid()) {
				t.Error("process alive after Stop")
			}
			p.CloseOutputs()
		})
	}
}

func TestProcessGroupIsKilled(t *testing.T) {
	p, err := StartNative(NativeSpec{Command: []string{"/bin/sh", "-c", "sleep 100 & echo $!; wait"}, Env: []string{"PATH=/usr/bin:/bin"}, KillGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	n, _ := p.Stdout().Read(buf)
	var child int
	for _, c := range strings.TrimSpace(string(buf[:n])) {
		child = child*10 + int(c-'0')
	}
	if !alive(child) {
		t.Fatalf("grandchild %d not running", child)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if !testutil.WaitUntil(2*time.Second, func() bool { return !alive(child) }) {
		t.Errorf("grandchild %d survived the group stop", child)
		_ = syscall.Kill(child, syscall.SIGKILL)
	}
	p.CloseOutputs()
}

func TestEnvironmentIsExplicit(t *testing.T) {
	t.Setenv("MCPGW_RUNTIME_TEST_SECRET", "s3cret")
	p, err := StartNative(NativeSpec{Command: []string{"/usr/bin/env"}, Env: []string{"PATH=/usr/bin:/bin", "ONLY=this"}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(p.Stdout())
	_ = p.Stop()
	p.CloseOutputs()
	got := strings.Fields(string(out))
	if len(got) != 2 || got[0] != "PATH=/usr/bin:/bin" || got[1] != "ONLY=this" {
		t.Errorf("child env = %q, want exactly PATH and ONLY", got)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := StartNative(NativeSpec{Command: []string{"definitely-not-a-command-xyz"}, Env: []string{"PATH=/usr/bin"}}); err == nil {
		t.Error("unknown command started")
	}
	if _, err := StartNative(NativeSpec{}); err == nil {
		t.Error("empty command started")
	}
	if _, err := LookPath("sh", []string{"PATH=/nonexistent"}); err == nil {
		t.Error("LookPath ignored the child's PATH")
	}
}
