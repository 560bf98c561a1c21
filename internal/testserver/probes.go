package testserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Probe tools: they let a test prove, from inside a container and through
// the gateway, that each hardening setting is in effect. Each
// answers with a JSON text; failures the probe is looking for (a refused
// write, a refused dial, a failed fork) are results, not errors.

// ProbeResult is the JSON text of write_file, read_file and dial.
type ProbeResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Text is what read_file read, the working directory for getwd and
	// the variable's value for getenv.
	Text string `json:"text,omitempty"`
}

// ProcStatus is the JSON text of proc_status: the process's ids and the
// security fields of /proc/self/status.
type ProcStatus struct {
	UID        int    `json:"uid"`
	GID        int    `json:"gid"`
	CapEff     string `json:"capEff"`
	CapBnd     string `json:"capBnd"`
	NoNewPrivs string `json:"noNewPrivs"`
	Seccomp    string `json:"seccomp"`
	PID        int    `json:"pid"`
	// NoFile is the soft RLIMIT_NOFILE.
	NoFile uint64 `json:"nofile"`
}

// ForkResult is the JSON text of fork_loop.
type ForkResult struct {
	Started int    `json:"started"`
	Error   string `json:"error,omitempty"`
}

var probeTools = []map[string]any{
	tool("write_file", "Create path and write a byte to it; answer whether that worked.", props{"path": {"type": "string"}}, "path"),
	tool("read_file", "Read the file at path; answer with its text or the error.", props{"path": {"type": "string"}}, "path"),
	tool("getwd", "Answer with the working directory.", nil),
	tool("getenv", "Answer with the value of the environment variable name.", props{"name": {"type": "string"}}, "name"),
	tool("dial", "Open a TCP connection to addr (host:port; the host \"gateway\" is the default route's gateway) within 2s; answer whether that worked.", props{"addr": {"type": "string"}}, "addr"),
	tool("proc_status", "Answer with uid, gid, the open file limit and the CapEff, CapBnd, NoNewPrivs and Seccomp fields of /proc/self/status.", nil),
	tool("fork_loop", "Start up to count sleeping child processes until starting one fails, stop them all, answer how many started.", props{"count": {"type": "integer", "minimum": 0}}, "count"),
	tool("alloc", "Allocate and touch mb MiB of memory, then answer.", props{"mb": {"type": "integer", "minimum": 0}}, "mb"),
}

// probe runs a probe tool; it reports false if name is not one.
func (s *server) probe(ctx context.Context, id json.RawMessage, name string, raw json.RawMessage) bool {
	var a struct {
		Path  string `json:"path"`
		Name  string `json:"name"`
		Addr  string `json:"addr"`
		Count int    `json:"count"`
		MB    int    `json:"mb"`
	}
	switch name {
	case "write_file", "read_file", "getwd", "getenv", "dial", "proc_status", "fork_loop", "alloc":
	default:
		return false
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a); err != nil {
			s.replyError(ctx, id, codeInvalidParams, fmt.Sprintf("invalid arguments for %s: %v", name, err))
			return true
		}
	}
	var v any
	switch name {
	case "write_file":
		v = result(os.WriteFile(a.Path, []byte("x"), 0o600))
	case "read_file":
		b, err := os.ReadFile(a.Path)
		r := result(err)
		r.Text = string(b)
		v = r
	case "getwd":
		wd, err := os.Getwd()
		r := result(err)
		r.Text = wd
		v = r
	case "getenv":
		val, ok := os.LookupEnv(a.Name)
		v = ProbeResult{OK: ok, Text: val}
	case "dial":
		v = result(dial(a.Addr))
	case "proc_status":
		st, err := procStatus()
		if err != nil {
			s.reply(ctx, id, textResult(err.Error(), true))
			return true
		}
		v = st
	case "fork_loop":
		v = forkLoop(a.Count)
	case "alloc":
		v = alloc(a.MB)
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.reply(ctx, id, textResult(err.Error(), true))
		return true
	}
	s.reply(ctx, id, textResult(string(b), false))
	return true
}

func result(err error) ProbeResult {
	if err != nil {
		return ProbeResult{Error: err.Error()}
	}
	return ProbeResult{OK: true}
}

func dial(addr string) error {
	if rest, ok := strings.CutPrefix(addr, "gateway:"); ok {
		gw, err := defaultGateway()
		if err != nil {
			return err
		}
		addr = net.JoinHostPort(gw, rest)
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// defaultGateway reads the IPv4 default route's gateway from /proc/net/route.
func defaultGateway() (string, error) {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 3 || f[1] != "00000000" {
			continue
		}
		v, err := strconv.ParseUint(f[2], 16, 32)
		if err != nil {
			return "", err
		}
		// Little-endian hex of the address.
		return net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)).String(), nil
	}
	return "", errors.New("no default route")
}

func procStatus() (ProcStatus, error) {
	st := ProcStatus{UID: os.Getuid(), GID: os.Getgid(), PID: os.Getpid()}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return st, fmt.Errorf("getrlimit: %w", err)
	}
	st.NoFile = rl.Cur
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return st, fmt.Errorf("reading /proc/self/status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "CapEff":
			st.CapEff = v
		case "CapBnd":
			st.CapBnd = v
		case "NoNewPrivs":
			st.NoNewPrivs = v
		case "Seccomp":
			st.Seccomp = v
		}
	}
	return st, nil
}

// forkLoop starts sleepers until count or the first failure, then kills
// and reaps them all.
func forkLoop(count int) ForkResult {
	var kids []*exec.Cmd
	var res ForkResult
	for range count {
		cmd := exec.Command(os.Args[0])
		cmd.Env = []string{EnvMode + "=" + ModeSleeper}
		if err := cmd.Start(); err != nil {
			res.Error = err.Error()
			break
		}
		kids = append(kids, cmd)
	}
	res.Started = len(kids)
	for _, k := range kids {
		_ = k.Process.Kill()
		_ = k.Wait()
	}
	return res
}

// alloc touches mb MiB in 1 MiB pieces that stay reachable until it returns.
func alloc(mb int) string {
	keep := make([][]byte, 0, mb)
	for range mb {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		keep = append(keep, b)
	}
	return fmt.Sprintf("allocated %d MiB", len(keep))
}
