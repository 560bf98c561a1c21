package importer

import (
	"fmt"
	"strings"
)

// Many servers document a "docker run -i --rm -e NAME image" command for
// the clients. Run natively, that would need the engine socket (root on
// the host) inside the sandbox; mcpgw runs containers itself, hardened, so
// such a command becomes a container server.

// containerSpec is the container block of a translated "docker run".
type containerSpec struct {
	image   string
	network string
	user    string
	memory  string
	cpus    string
	pull    string
	// networkAsked: the command chose the network (else it is docker
	// run's default, bridge).
	networkAsked bool
	// envNames are the -e NAME flags without a value: the variable comes
	// from the server's env (or the gateway's environment).
	envNames []string
	// envValues are -e NAME=VALUE flags.
	envValues [][2]string
}

// dockerValueFlags take a value; those mapped to "" are dropped (mcpgw
// decides them), the others are handled below.
var dockerValueFlags = map[string]string{
	"-e": "env", "--env": "env", "--env-file": "env-file",
	"--network": "network", "--net": "network",
	"-u": "user", "--user": "user",
	"-m": "memory", "--memory": "memory", "--cpus": "cpus",
	"--pull": "pull", "--name": "", "--label": "", "-l": "", "--hostname": "", "-h": "",
	"-v": "mount", "--volume": "mount", "--mount": "mount",
	"-w": "workdir", "--workdir": "workdir",
	"--platform": "", "--log-driver": "", "--stop-timeout": "", "--pids-limit": "",
}

// dockerBoolFlags take no value and are what mcpgw does anyway (or are
// meaningless for a stdio server).
var dockerBoolFlags = map[string]bool{
	"-i": true, "--interactive": true, "-t": true, "--tty": true, "-it": true, "-ti": true,
	"--rm": true, "--init": true, "--read-only": true,
}

// dockerRun translates argv when it is "docker run …" (or podman), and
// returns the container block, the command that replaces the image's CMD,
// review notes, and ok. A flag it does not know (it may take a value, so
// the image cannot be found safely) leaves the command as it is (ok
// false).
func dockerRun(argv []string) (spec *containerSpec, cmd []string, notes []string, ok bool) {
	if len(argv) < 3 || argv[1] != "run" {
		return nil, nil, nil, false
	}
	if base := lastElem(argv[0]); base != "docker" && base != "podman" {
		return nil, nil, nil, false
	}
	spec = &containerSpec{}
	args := argv[2:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" { // the image follows, whatever it looks like
			if i+1 < len(args) {
				spec.image, cmd = args[i+1], args[i+2:]
			}
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			spec.image = a
			cmd = args[i+1:]
			break
		}
		if dockerBoolFlags[a] {
			continue
		}
		flag, value, inline := strings.Cut(a, "=")
		kind, known := dockerValueFlags[flag]
		if !known {
			if a == "-d" || a == "--detach" {
				notes = append(notes, "docker run had -d, which would detach the server from its stdio; it is dropped")
				continue
			}
			return nil, nil, nil, false
		}
		if !inline {
			if i+1 >= len(args) {
				return nil, nil, nil, false
			}
			i++
			value = args[i]
		}
		switch kind {
		case "env":
			if name, v, hasValue := strings.Cut(value, "="); hasValue {
				spec.envValues = append(spec.envValues, [2]string{name, v})
			} else {
				spec.envNames = append(spec.envNames, value)
			}
		case "env-file":
			notes = append(notes, fmt.Sprintf("docker run read variables from %s: export them and list them under env: as NAME: \"${NAME}\"", quoteComment(value)))
		case "network":
			switch {
			case value == "host" || strings.HasPrefix(value, "container:"):
				notes = append(notes, fmt.Sprintf("docker run used --network %s, which mcpgw refuses; the container gets network: bridge (outbound access)", quoteComment(value)))
				spec.network = "bridge"
			default:
				spec.network = value
			}
		case "user":
			spec.user = value
		case "memory":
			spec.memory = value
		case "cpus":
			spec.cpus = value
		case "pull":
			if value == "always" || value == "missing" {
				spec.pull = "missing"
			}
		case "mount":
			notes = append(notes, fmt.Sprintf("docker run mounted %s: give the server a workspace instead (a top-level workspaces: entry and workspaces: [{name: …, target: …, mode: rw}] here)", quoteComment(value)))
		case "workdir":
			notes = append(notes, fmt.Sprintf("docker run set the working directory %s, which mcpgw leaves to the image (or to the first workspace)", quoteComment(value)))
		}
	}
	if spec.image == "" || strings.HasPrefix(spec.image, "$") || strings.Contains(spec.image, "${") {
		return nil, nil, nil, false
	}
	if len(cmd) == 0 {
		cmd = nil
	}
	if spec.network == "" {
		spec.network = "bridge" // what docker run does, where mcpgw's default is none
	} else {
		spec.networkAsked = true
	}
	return spec, cmd, notes, true
}

// containerEnv adds the -e variables of a translated docker run to the
// server's env: -e NAME takes NAME from the env block (already there) or
// from the gateway's environment; -e NAME=VALUE is a value like any other.
func (c *converter) containerEnv(s *server) {
	for _, kv := range s.container.envValues {
		if !envName.MatchString(kv[0]) || hasEnv(s, kv[0]) {
			continue
		}
		c.envVar(s, member{key: kv[0], value: jsonString(kv[1])})
	}
	for _, name := range s.container.envNames {
		if !envName.MatchString(name) || hasEnv(s, name) {
			continue
		}
		c.useVar(name)
		s.env = append(s.env, envVar{name: name, value: "${" + name + "}", comment: []string{"passed with docker run -e from the client's environment: export it for mcpgw."}})
	}
}

func lastElem(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		p = p[i+1:]
	}
	return strings.TrimSuffix(strings.ToLower(p), ".exe")
}
