// Package sandbox confines a native MCP server to its workspaces with
// Landlock. It owns the re-exec shim: Go cannot run code between
// fork and exec, so the gateway starts itself with EnvVar holding a Spec;
// Main, called first thing by the gateway's main (and by test binaries'
// TestMain, which stand in for the gateway), restricts its own thread with
// Landlock and then execs the real server. The pid stays the same, so the
// process group and the parent-death signal set by package runtime carry
// over to the server.
//
// The shim calls the Landlock system calls through golang.org/x/sys/unix
// rather than through github.com/landlock-lsm/go-landlock: go-landlock
// enforces a ruleset on every thread of a Go program, which in cgo builds
// (the race detector's) links libcap's psx and wraps pthread_create for the
// whole binary. The shim needs none of that: it locks its goroutine to one
// thread, restricts that thread and execs from it, and the new program
// inherits exactly that thread's Landlock domain and no_new_privs.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// EnvVar carries the JSON Spec from the gateway to its re-exec'd self. The
// shim removes it from the environment before it execs the server.
const EnvVar = "MCPGW_SANDBOX_EXEC"

// MinABI is the Landlock ABI version that `sandbox: landlock` requires:
// version 3 (Linux 6.2) is the first that also restricts truncate(2), without
// which a read-only workspace's files could be truncated.
const MinABI = 3

// Rule allows access beneath one path (or to one file).
type Rule struct {
	Path  string `json:"path"`
	Write bool   `json:"write,omitempty"`
	// Exact: Path is a resolved real path that must still be what opening
	// it yields (workspaces, checked again at spawn); a mismatch (a
	// symlink swapped in since the check) refuses the start. Otherwise
	// (system directories such as /lib, often a symlink) the opened target
	// is allowed and a missing path is skipped.
	Exact bool `json:"exact,omitempty"`
}

// Spec is what the shim does: restrict itself to Rules, then exec Path
// with Args.
type Spec struct {
	Path  string   `json:"path"` // absolute path of the program
	Args  []string `json:"args"` // argv, Args[0] included
	Rules []Rule   `json:"rules"`
	// BestEffort runs the server unconfined (with a warning on stderr)
	// when the kernel lacks Landlock, and accepts ABI versions below MinABI.
	BestEffort bool `json:"best_effort,omitempty"`
}

// systemReadPaths are the directories every sandboxed program may read and
// execute from: what a dynamically linked program or an interpreter needs
// to start.
var systemReadPaths = []string{"/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/opt"}

// SystemReadPaths returns the directories every sandboxed program may
// read and execute from.
func SystemReadPaths() []string { return slices.Clone(systemReadPaths) }

// simulated, when set, is the reason ABI reports Landlock as unavailable.
var simulated atomic.Pointer[string]

// SimulateUnavailable makes ABI (and so Check) in this process report
// Landlock as unavailable with reason, until restore is called. It is a
// test seam: the kernels this project is tested on have Landlock, and the
// refusal path must be tested all the same. The shim of a started server
// still sees the real kernel.
func SimulateUnavailable(reason string) (restore func()) {
	simulated.Store(&reason)
	return func() { simulated.Store(nil) }
}

// Requested reports whether this process was started as the shim.
func Requested() bool {
	_, ok := os.LookupEnv(EnvVar)
	return ok
}

// ABI returns the kernel's Landlock ABI version, or an error saying why
// Landlock is unavailable (not built in, disabled at boot, or not Linux).
func ABI() (int, error) {
	if r := simulated.Load(); r != nil {
		return 0, errors.New(*r)
	}
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		switch errno {
		case unix.ENOSYS:
			return 0, errors.New("landlock unavailable: the kernel does not support it (Linux 5.13+ with CONFIG_SECURITY_LANDLOCK)")
		case unix.EOPNOTSUPP:
			return 0, errors.New("landlock unavailable: it is disabled on this kernel (add landlock to the lsm= boot parameter)")
		}
		return 0, fmt.Errorf("landlock unavailable: %w", errno)
	}
	return int(v), nil
}

// Check reports whether a server with `sandbox: landlock` can start here.
func Check() error {
	abi, err := ABI()
	if err != nil {
		return err
	}
	if abi < MinABI {
		return fmt.Errorf("landlock unavailable: the kernel has ABI version %d, %d (Linux 6.2) is needed to restrict truncation; use sandbox: best_effort to accept it", abi, MinABI)
	}
	return nil
}

// Main is the shim. It restricts the process and execs the server; it
// returns only on failure, with the exit status to use, after writing the
// reason to stderr.
func Main() int {
	raw := os.Getenv(EnvVar)
	var spec Spec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "mcpgw sandbox: invalid %s: %v\n", EnvVar, err)
		return 126
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvVar+"=") {
			env = append(env, kv)
		}
	}
	// Restriction and exec happen on this one thread: a Landlock domain
	// and no_new_privs are per thread, and execve keeps the caller's.
	goruntime.LockOSThread()
	if err := restrict(spec); err != nil {
		fmt.Fprintf(os.Stderr, "mcpgw sandbox: %v\n", err)
		return 126
	}
	err := syscall.Exec(spec.Path, spec.Args, env)
	fmt.Fprintf(os.Stderr, "mcpgw sandbox: exec %s: %v\n", spec.Path, err)
	return 127
}

// Access rights by the ABI version that introduced them.
const (
	accessABI1 = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR |
		unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR |
		unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_MAKE_SOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	accessRead = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	// accessFile are the rights that apply to a file (not a directory).
	accessFile = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
)

// handled returns the file system rights the kernel's ABI can restrict.
func handled(abi int) uint64 {
	h := uint64(accessABI1)
	if abi >= 2 {
		h |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		h |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 5 {
		h |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	return h
}

func restrict(spec Spec) error {
	abi, err := ABI()
	if err == nil && abi < MinABI && !spec.BestEffort {
		err = Check()
	}
	if err != nil {
		if spec.BestEffort {
			fmt.Fprintf(os.Stderr, "mcpgw sandbox: WARNING: %v; sandbox: best_effort runs the server unconfined\n", err)
			return nil
		}
		return err
	}
	h := handled(abi)
	attr := unix.LandlockRulesetAttr{Handled_access_fs: h}
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if errno != 0 {
		return fmt.Errorf("creating the landlock ruleset: %w", errno)
	}
	ruleset := int(fd)
	defer unix.Close(ruleset)
	rules := append([]Rule{{Path: "/dev/null", Write: true}}, spec.Rules...)
	for _, r := range rules {
		if err := addRule(ruleset, r, h); err != nil {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(ruleset), 0, 0); errno != 0 {
		return fmt.Errorf("enforcing the landlock ruleset: %w", errno)
	}
	return nil
}

// addRule opens r.Path once and grants access beneath what was opened, so
// that the path checked is the path allowed.
func addRule(ruleset int, r Rule, handledAccess uint64) error {
	fd, err := unix.Open(r.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		if !r.Exact && errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("opening %s: %w", r.Path, err)
	}
	defer unix.Close(fd)
	if r.Exact {
		got, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil {
			return fmt.Errorf("checking %s: %w", r.Path, err)
		}
		if filepath.Clean(got) != filepath.Clean(r.Path) {
			return fmt.Errorf("refusing %s: it now leads to %s (a symlink changed since the configuration was checked)", r.Path, got)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("checking %s: %w", r.Path, err)
	}
	access := uint64(accessRead)
	if r.Write {
		access = handledAccess
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		access &= accessFile
	}
	access &= handledAccess
	attr := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(fd)}
	if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&attr)), 0, 0, 0); errno != 0 {
		return fmt.Errorf("allowing %s: %w", r.Path, errno)
	}
	return nil
}
