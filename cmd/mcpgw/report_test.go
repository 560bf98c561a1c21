package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runBinary runs the built mcpgw with args in dir, with only PATH and HOME
// in its environment plus env, and returns its exit code and output.
func runBinary(t testing.TB, dir string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode(), out.String(), errOut.String()
	}
	if err != nil {
		t.Fatalf("running mcpgw %v: %v", args, err)
	}
	return 0, out.String(), errOut.String()
}

// TestErrorsReachThePerson runs the built binary into each failure a
// person meets first and checks that it says, once and on one stderr
// line, what went wrong and what to change, with the documented exit code
// (1 runtime failure, 2 usage or config error).
func TestErrorsReachThePerson(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := busy.Addr().String()
	writeFile(t, filepath.Join(dir, "private.yaml"), "servers: {a: {command: [x]}}\n")
	if err := os.Chmod(filepath.Join(dir, "private.yaml"), 0); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		code int
		line string // the one line on stderr
	}{
		{"port already in use", []string{"serve", "--listen", busyAddr}, 1,
			"mcpgw: listening on " + busyAddr + ": the address is already in use (another mcpgw, or another program, holds that port); stop it or choose another with --listen or listen: in the config"},
		{"missing config file", []string{"serve", "--config", "nope.yaml"}, 2,
			"mcpgw: config file nope.yaml does not exist (relative paths are from " + dir + "); check the path given to --config"},
		{"check a missing config file", []string{"check", "--config", "nope.yaml"}, 1,
			"mcpgw: config file nope.yaml does not exist (relative paths are from " + dir + "); check the path given to --config"},
		{"check without --config", []string{"check"}, 2,
			`mcpgw: check: no config file given; run "mcpgw check --config FILE"`},
		{"check with the file as an argument", []string{"check", "mcpgw.yaml"}, 2,
			`mcpgw: check: unexpected argument "mcpgw.yaml"; give the file with --config mcpgw.yaml`},
		{"serve --listen without a port", []string{"serve", "--listen", "nope"}, 2,
			`mcpgw: --listen "nope": missing port in address; write host:port, e.g. 127.0.0.1:8080 (or :8080 for every interface)`},
		{"token with a space in its name", []string{"token", "bad name"}, 2,
			`mcpgw: token name "bad name": use 1 to 64 characters A-Z, a-z, 0-9, _, . and -, starting with a letter or digit, e.g. "mcpgw token laptop"`},
		{"unknown command", []string{"frobnicate"}, 2,
			`mcpgw: unknown command "frobnicate"; "mcpgw help" lists the commands`},
		{"near miss of a command", []string{"serv"}, 2,
			`mcpgw: unknown command "serv" (did you mean "serve"?); "mcpgw help" lists the commands`},
		{"unknown flag", []string{"serve", "--bogus"}, 2,
			`mcpgw: serve: flag provided but not defined: -bogus; "mcpgw serve --help" lists its flags`},
		{"flag without its value", []string{"check", "--config"}, 2,
			`mcpgw: check: flag needs an argument: -config; "mcpgw check --help" lists its flags`},
		{"help for an unknown command", []string{"help", "nope"}, 2,
			`mcpgw: help: unknown command "nope"; "mcpgw help" lists the commands`},
	}
	if os.Getuid() != 0 { // root reads a file of mode 0
		tests = append(tests, struct {
			name string
			args []string
			code int
			line string
		}{"unreadable config file", []string{"check", "--config", "private.yaml"}, 1,
			"mcpgw: config file private.yaml cannot be read: permission denied; make it readable for uid " + strconv.Itoa(os.Getuid()) + ", which runs mcpgw"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runBinary(t, dir, nil, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if diff := cmp.Diff(tt.line+"\n", stderr); diff != "" {
				t.Errorf("stderr mismatch (-want +got):\n%s", diff)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestConfigErrorsWordedOnce: check and serve list the problems of one
// invalid file in the same words, one line each, then count them; the
// exit codes differ as documented (check 1, serve 2).
func TestConfigErrorsWordedOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "claude.yaml"), `servers:
  fs:
    command: npx
    args: ["-y", "@modelcontextprotocol/server-filesystem"]
    enviroment: {A: b}
    startup_timeout: 30
`)
	want := []string{
		"claude.yaml: servers.fs.command: must be a list, not a single value; write the program and its arguments as a list, e.g. [\"npx\", \"-y\", \"some-server\"] (it never runs through a shell) (line 3)",
		`claude.yaml: servers.fs.args: unknown key; mcpgw takes the whole argv in command: ["npx", "-y", …]: put the program first and its arguments after it in that one list (line 4)`,
		`claude.yaml: servers.fs.enviroment: unknown key; did you mean env? mcpgw passes variables as env: {NAME: value}, e.g. env: {GITHUB_TOKEN: "${GITHUB_TOKEN}"} (line 5)`,
		"claude.yaml: servers.fs.startup_timeout: unknown key; did you mean timeouts: {startup: 30s}? (durations carry their unit) (line 6)",
		"mcpgw: claude.yaml is not valid: 4 problems",
	}
	for _, tt := range []struct {
		cmd  string
		code int
	}{{"check", 1}, {"serve", 2}} {
		t.Run(tt.cmd, func(t *testing.T) {
			code, _, stderr := runBinary(t, dir, nil, tt.cmd, "--config", "claude.yaml")
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")); diff != "" {
				t.Errorf("stderr mismatch (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("tabs", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "tabs.yaml"), "servers:\n\tfs:\n\t\tcommand: [x]\n")
		code, _, stderr := runBinary(t, dir, nil, "check", "--config", "tabs.yaml")
		want := "tabs.yaml: invalid YAML: this line is indented with a tab (column 1); YAML indentation must be spaces: replace the tabs with spaces (line 2)\nmcpgw: tabs.yaml is not valid: 1 problem\n"
		if code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
		if diff := cmp.Diff(want, stderr); diff != "" {
			t.Errorf("stderr mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestHelp: help is not an error. Every command's -h and --help, and
// "mcpgw help COMMAND", print its usage and flags on stdout and exit 0.
func TestHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	wantFlags := map[string][]string{
		"serve":       {"Usage: mcpgw serve [--config FILE] [--listen ADDR]", "--config FILE", "--listen ADDR"},
		"reload":      {"Usage: mcpgw reload [--config FILE | --state-dir DIR]", "--config FILE", "--state-dir DIR"},
		"check":       {"Usage: mcpgw check --config FILE", "--config FILE"},
		"import":      {"Usage: mcpgw import FILE"},
		"token":       {"Usage: mcpgw token [NAME]"},
		"oauth":       {"Usage: mcpgw oauth clients|grants|revoke|rotate-key", "mcpgw oauth revoke", "--user EMAIL"},
		"status":      {"Usage: mcpgw status [--url URL]", "--url URL"},
		"tools":       {"Usage: mcpgw tools list|approve", "mcpgw tools approve [--config FILE | --state-dir DIR] SERVER TOOL"},
		"version":     {"Usage: mcpgw version"},
		"demo-server": {"Usage: mcpgw demo-server"},
	}
	if len(wantFlags) != len(commands) {
		t.Fatalf("the test covers %d commands, there are %d", len(wantFlags), len(commands))
	}
	for name, want := range wantFlags {
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, stdout, stderr := runBinary(t, dir, nil, args...)
				if code != 0 || stderr != "" {
					t.Errorf("exit code %d, stderr %q; want 0 and nothing", code, stderr)
				}
				for _, w := range want {
					if !strings.Contains(stdout, w) {
						t.Errorf("help lacks %q:\n%s", w, stdout)
					}
				}
			})
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runBinary(t, dir, nil, args...)
			if code != 0 || stderr != "" {
				t.Errorf("exit code %d, stderr %q; want 0 and nothing", code, stderr)
			}
			for name := range wantFlags {
				if !strings.Contains(stdout, "  mcpgw "+name) {
					t.Errorf("overview lacks %s:\n%s", name, stdout)
				}
			}
		})
	}
	t.Run("no command", func(t *testing.T) {
		code, stdout, stderr := runBinary(t, dir, nil)
		if code != 2 || stdout != "" {
			t.Errorf("exit code %d, stdout %q; want 2 and nothing", code, stdout)
		}
		if !strings.HasSuffix(stderr, "\nmcpgw: no command given; \"mcpgw serve\" runs the gateway, \"mcpgw help\" lists the commands\n") {
			t.Errorf("stderr does not end with the error line:\n%s", stderr)
		}
	})
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
