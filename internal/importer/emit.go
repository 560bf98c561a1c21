package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"github.com/mcpgw/mcpgw/internal/clip"

	"github.com/mcpgw/mcpgw/internal/config"
)

// header writes the comment at the top and the keys before the servers.
func (c *converter) header(tool string) {
	from := "standard input"
	if c.path != "" {
		from = quoteComment(c.path)
	}
	fmt.Fprintf(&c.out, "# mcpgw configuration imported by \"mcpgw import\" from %s (%s).\n", from, tool)
	c.out.WriteString("# Read every \"review:\" comment, then check it: mcpgw check --config FILE\n")
	c.out.WriteString("# docs/config.md describes every key.\n")
	c.out.WriteString("@VARIABLES@")
	c.out.WriteString("\nlisten: 127.0.0.1:8080\n\nservers:\n")
}

// finish fills in the list of variables that the header announces.
func (c *converter) finish() []byte {
	var v bytes.Buffer
	if len(c.vars) > 0 {
		v.WriteString("#\n# It references these environment variables; export each of them before\n# \"mcpgw serve\" (an unset variable is a config error):\n")
		line := "#  "
		for i, name := range c.vars {
			item := " " + name
			if i < len(c.vars)-1 {
				item += ","
			}
			if len(line)+len(item) > 78 {
				v.WriteString(line + "\n")
				line = "#  "
			}
			line += item
		}
		v.WriteString(line + "\n")
	}
	return bytes.Replace(c.out.Bytes(), []byte("@VARIABLES@"), v.Bytes(), 1)
}

// yaml is the server's block under servers:, two spaces in.
func (s *server) yaml() string {
	var b strings.Builder
	for _, c := range s.comments {
		b.WriteString("  # " + c + "\n")
	}
	b.WriteString("  " + s.name + ":\n")
	if s.container != nil {
		b.WriteString("    runtime: container\n")
		b.WriteString("    container:\n")
		b.WriteString("      image: " + yamlString(s.container.image) + "\n")
		for _, kv := range [][2]string{{"network", s.container.network}, {"user", s.container.user}, {"memory", s.container.memory}, {"cpus", s.container.cpus}, {"pull", s.container.pull}} {
			if kv[1] != "" {
				b.WriteString("      " + kv[0] + ": " + yamlString(escapeDollars(kv[1])) + "\n")
			}
		}
	}
	if len(s.command) > 0 {
		b.WriteString("    command:" + yamlList(s.command, "    ") + "\n")
	}
	if len(s.env) > 0 {
		b.WriteString("    env:\n")
		for _, e := range s.env {
			for _, c := range e.comment {
				b.WriteString("      # " + c + "\n")
			}
			b.WriteString("      " + e.name + ": " + yamlString(e.value) + "\n")
		}
	}
	if s.workdir != "" {
		b.WriteString("    workdir: " + yamlString(s.workdir) + "\n")
	}
	if s.startup != "" {
		b.WriteString("    timeouts: {startup: " + s.startup + "}\n")
	}
	for _, r := range s.review {
		writeWrapped(&b, "    # review: ", "    #   ", r)
	}
	return b.String()
}

// yamlString quotes s as a YAML double-quoted scalar (JSON's escapes are
// YAML's too), so that no value can change the document's structure.
func yamlString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// yamlList writes the value of a list key: " [a, b]", or a block list on
// the following lines when that would be long.
func yamlList(items []string, indent string) string {
	quoted := make([]string, len(items))
	n := 0
	for i, it := range items {
		quoted[i] = yamlString(it)
		n += len(quoted[i]) + 2
	}
	if n <= 90 {
		return " [" + strings.Join(quoted, ", ") + "]"
	}
	var b strings.Builder
	for _, q := range quoted {
		b.WriteString("\n" + indent + "  - " + q)
	}
	return b.String()
}

// writeWrapped writes text as comment lines of at most about 100
// characters: first with head, the rest with cont.
func writeWrapped(b *strings.Builder, head, cont, text string) {
	line := head
	fresh := true
	for _, w := range strings.Fields(text) {
		if !fresh && len(line)+1+len(w) > 100 {
			b.WriteString(line + "\n")
			line, fresh = cont, true
		}
		if !fresh {
			line += " "
		}
		line += w
		fresh = false
	}
	b.WriteString(line + "\n")
}

// quoteComment makes an untrusted string (a server name, a path, a
// description from the source file) safe inside a comment: quoted, with
// newlines and control characters escaped, and bounded.
func quoteComment(s string) string {
	return strconv.Quote(clip.String(s, 120))
}

// oneLineComment removes line breaks from text written in a comment.
func oneLineComment(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = quoteComment(s)
	}
	return strings.Join(q, ", ")
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// validate parses one server's block as mcpgw would, with every variable
// set, and returns its problems (nil: it is valid).
func validate(block string) []string {
	_, err := config.Parse([]byte("servers:\n"+block), func(string) (string, bool) { return "set", true })
	if err == nil {
		return nil
	}
	if ce, ok := errors.AsType[*config.Error](err); ok {
		return ce.Problems
	}
	return []string{err.Error()}
}

// reviewLauncher adds what to check for servers started through a package
// runner, an interpreter, Docker or Windows, and for host paths in argv.
func (c *converter) reviewLauncher(s *server, argv []string) {
	if s.container != nil {
		img := s.container.image
		if s.container.network == "bridge" && !s.container.networkAsked {
			s.review = append(s.review, "docker run put it on the engine's default network, so it keeps network: bridge (outbound access); set network: none if it calls no API")
		}
		s.review = append(s.review, fmt.Sprintf("it runs the image %s in a container that mcpgw creates itself, hardened (read-only root, user 65534, all capabilities dropped): pull or build the image first (docker pull %s), or set container.pull: missing", quoteComment(img), img))
		return
	}
	prog := lastElem(argv[0])
	script := 0 // the interpreter's script in s.command, if any
	switch prog {
	case "npx", "bunx", "pnpx":
		s.startup = "60s"
		s.review = append(s.review, fmt.Sprintf("%s fetches %s on first start (hence timeouts.startup: 60s) into the server's private cache (state_dir/cache/NAME). Under the default sandbox a native server reads only system directories, its command's directory and read_paths, and writes only its temporary directory and that cache: if it fails, its error says what the sandbox allowed; see \"Workspaces\" in docs/config.md", prog, packageOf(argv[1:])))
	case "uvx", "uv", "pipx":
		s.startup = "60s"
		s.review = append(s.review, fmt.Sprintf("%s fetches %s on first start (hence timeouts.startup: 60s) into the server's private cache (state_dir/cache/NAME). Under the default sandbox a native server reads only system directories, its command's directory and read_paths, and writes only its temporary directory and that cache: if it fails, its error says what the sandbox allowed; see \"Workspaces\" in docs/config.md", prog, packageOf(argv[1:])))
	case "node", "python", "python3", "deno", "bun", "ruby", "java":
		for i, a := range s.command[1:] {
			if p := strings.ReplaceAll(a, "$$", "$"); filepath.IsAbs(p) && !strings.Contains(p, "${") {
				script = i + 1
				s.review = append(s.review, fmt.Sprintf("its code is in %s: the sandbox lets a native server read system directories and %s's directory, so add read_paths: [%s] unless it lives there", quoteComment(filepath.Dir(p)), prog, yamlString(filepath.Dir(p))))
				break
			}
			if !strings.HasPrefix(a, "-") {
				break
			}
		}
	case "cmd", "powershell", "pwsh":
		s.review = append(s.review, "it runs through a Windows shell, which mcpgw (on Linux, never through a shell) does not have: write the server's own command")
	}
	if strings.Contains(argv[0], `\`) || strings.HasSuffix(strings.ToLower(argv[0]), ".exe") {
		s.review = append(s.review, "its command is a Windows path: give the path of the program on this host")
	}
	var paths, dirs, relative []string
	for i, a := range s.command {
		if i == 0 || i == script || strings.HasPrefix(a, "-") {
			continue
		}
		p := strings.ReplaceAll(a, "$$", "$")
		switch {
		case filepath.IsAbs(p) || strings.HasPrefix(p, "~/"):
			paths = append(paths, p)
			if ext := filepath.Ext(p); ext != "" && ext != p {
				p = filepath.Dir(p) // a file: its directory is the workspace
			}
			dirs = append(dirs, p)
		case i == 1 && !strings.Contains(p, "://") && strings.Contains(p, "/") && !strings.HasPrefix(p, "@") && filepath.Ext(p) != "":
			relative = append(relative, p)
		}
	}
	for _, e := range s.env {
		if p := strings.ReplaceAll(e.value, "$$", "$"); filepath.IsAbs(p) && !strings.Contains(p, "${") {
			paths = append(paths, p)
			if ext := filepath.Ext(p); ext != "" && ext != p {
				p = filepath.Dir(p)
			}
			dirs = append(dirs, p)
		}
	}
	if len(paths) > 0 {
		s.review = append(s.review, fmt.Sprintf("it is given host paths (%s); under the default sandbox it can read or write none of them until each is a workspace: at the top level workspaces: {files: %s}, and in this server workspaces: [{name: files, mode: rw}] (or mode: ro)", quoteList(paths), yamlString(dirs[0])))
	}
	if len(relative) > 0 && s.workdir == "" {
		s.review = append(s.review, fmt.Sprintf("it is given a relative path (%s), which is resolved from mcpgw's working directory: make it absolute, or set workdir:", quoteList(relative)))
	}
}

// packageOf returns the package a runner is told to fetch: its first
// argument that is not a flag (nor the value of -p/--package/--from).
func packageOf(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch a {
		case "-p", "--package", "--from", "--with":
			if i+1 < len(args) {
				return quoteComment(args[i+1])
			}
		case "run", "tool", "exec", "dlx":
			continue
		}
		if !strings.HasPrefix(a, "-") {
			return quoteComment(a)
		}
	}
	return "its package"
}
