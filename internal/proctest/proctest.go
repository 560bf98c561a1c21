// Package proctest reads the Linux process table for tests that must prove
// no process was left behind.
package proctest

import (
	"fmt"
	"os"
	"strings"
)

// stat returns the state letter and parent pid of pid from /proc, or ""
// when the process does not exist.
func stat(pid int) (state string, ppid int) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0
	}
	// The command name is parenthesised and may contain spaces; the state
	// and the parent pid follow the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return "", 0
	}
	if _, err := fmt.Sscanf(s[i+2:], "%s %d", &state, &ppid); err != nil {
		return "", 0
	}
	return state, ppid
}

// Alive reports whether pid exists and is neither a zombie nor dead.
func Alive(pid int) bool {
	state, _ := stat(pid)
	return state != "" && state != "Z" && state != "X"
}

// ChildrenOf lists the live processes whose parent is pid.
func ChildrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		var p int
		if _, err := fmt.Sscanf(e.Name(), "%d", &p); err != nil {
			continue
		}
		if _, ppid := stat(p); ppid == pid && Alive(p) {
			out = append(out, p)
		}
	}
	return out
}
