package spawn

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// The sweep's liveness rule: only containers of a gateway process that is
// gone from this host are removed.
func TestOwnerAlive(t *testing.T) {
	host, _ := os.Hostname()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := strconv.Itoa(dead.Process.Pid)
	self := strconv.Itoa(os.Getpid())
	tests := []struct {
		name  string
		owner string
		want  bool
	}{
		{"this process", Owner(), true},
		{"this pid, other start time", host + "/" + self + "/1", false},
		{"exited process", host + "/" + deadPID + "/" + processStart(os.Getpid()), false},
		{"other host", "elsewhere.example/" + self + "/1", true},
		{"malformed", "garbage", false},
		{"empty", "", false},
		{"bad pid", host + "/x/1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ownerAlive(tt.owner); got != tt.want {
				t.Errorf("ownerAlive(%q) = %v, want %v", tt.owner, got, tt.want)
			}
		})
	}
	if processStart(os.Getpid()) == "" {
		t.Error("processStart of this process is empty")
	}
}
