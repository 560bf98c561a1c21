package importer

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mcpgw/mcpgw/internal/clip"
)

// server is one server as it will be written.
type server struct {
	name     string
	comments []string // above the server's key
	command  []string // mcpgw syntax
	// container is set for a translated "docker run".
	container *containerSpec
	env       []envVar
	workdir   string
	startup   string // timeouts.startup, "" for the default
	review    []string
}

type envVar struct {
	name, value string
	comment     []string
}

// source is what the converter reads of one server of the source file.
type source struct {
	typ, command, envFile, cwd, remote string
	args                               []string
	env                                []member
	disabled                           bool
	ignored                            []string // keys with no mcpgw equivalent
}

// server converts and writes one member of the servers object. It
// returns the mcpgw name and whether the server was written.
func (c *converter) server(m member) (string, bool) {
	label := fmt.Sprintf("server %q (line %d)", clip.String(m.key, 64), m.line)
	src, err := c.readSource(m)
	if err != nil {
		c.note("%s: not imported: %v", label, err)
		c.skipped(m.key, err.Error())
		return "", false
	}
	switch {
	case src.remote != "":
		c.note("%s: not imported: it is a remote server (%s); mcpgw publishes stdio servers, and a client can connect to a remote one directly", label, src.remote)
		c.skipped(m.key, "a remote server ("+src.remote+"): mcpgw publishes stdio servers; connect clients to it directly")
		return "", false
	case src.disabled:
		c.note("%s: not imported: it is disabled in the source file", label)
		c.skipped(m.key, "disabled in the source file")
		return "", false
	case src.command == "":
		c.note("%s: not imported: it has no command", label)
		c.skipped(m.key, "no command")
		return "", false
	}
	s := &server{name: c.serverName(m.key)}
	if s.name != m.key {
		s.comments = append(s.comments, fmt.Sprintf("%s in the source file; a server's name is its URL path /mcp/NAME (a-z, 0-9, _ and -).", quoteComment(m.key)))
	}
	c.convert(s, src)
	block := s.yaml()
	if problems := validate(block); problems != nil {
		c.note("%s: written commented out: mcpgw would refuse it: %s", label, strings.Join(problems, "; "))
		c.out.WriteString("  # " + quoteComment(m.key) + " is commented out: mcpgw refuses it as converted:\n")
		for _, p := range problems {
			c.out.WriteString("  #   " + oneLineComment(p) + "\n")
		}
		for _, l := range strings.SplitAfter(strings.TrimSuffix(block, "\n"), "\n") {
			c.out.WriteString("  # " + strings.TrimPrefix(l, "  "))
		}
		c.out.WriteString("\n\n")
		return "", false
	}
	c.out.WriteString(block)
	c.out.WriteString("\n")
	return s.name, true
}

// skipped writes a comment for a server that was not imported.
func (c *converter) skipped(name, why string) {
	c.out.WriteString("  # " + quoteComment(name) + " is not imported: " + oneLineComment(why) + ".\n\n")
}

// readSource reads the fields of one source server that the converter
// knows; it accepts the spellings of every supported tool.
func (c *converter) readSource(m member) (*source, error) {
	fields, _, err := objectMembers(c.doc, m.value, m.off)
	if err != nil {
		return nil, err
	}
	src := &source{}
	str := func(f member) (string, error) {
		var s string
		if err := json.Unmarshal(f.value, &s); err != nil {
			return "", fmt.Errorf("line %d: %q must be a string", f.line, f.key)
		}
		return s, nil
	}
	for _, f := range fields {
		switch f.key {
		case "type", "transport":
			if src.typ, err = str(f); err != nil {
				return nil, err
			}
		case "command":
			if src.command, err = str(f); err != nil {
				return nil, err
			}
		case "args":
			var raw []any
			if err := json.Unmarshal(f.value, &raw); err != nil {
				return nil, fmt.Errorf("line %d: \"args\" must be a list of strings", f.line)
			}
			for _, a := range raw {
				s, ok := scalarString(a)
				if !ok {
					return nil, fmt.Errorf("line %d: \"args\" must be a list of strings", f.line)
				}
				src.args = append(src.args, s)
			}
		case "env":
			if src.env, _, err = objectMembers(c.doc, f.value, f.off); err != nil {
				return nil, fmt.Errorf("\"env\": %w", err)
			}
		case "envFile":
			if src.envFile, err = str(f); err != nil {
				return nil, err
			}
		case "cwd":
			if src.cwd, err = str(f); err != nil {
				return nil, err
			}
		case "url", "serverUrl", "httpUrl":
			u, err := str(f)
			if err != nil {
				return nil, err
			}
			src.remote = describeURL(u)
		case "disabled":
			_ = json.Unmarshal(f.value, &src.disabled)
		case "headers", "oauth", "auth":
			// Only remote servers have them; they are never written.
		default:
			src.ignored = append(src.ignored, f.key)
		}
	}
	switch strings.ToLower(src.typ) {
	case "", "stdio", "local":
	case "http", "sse", "streamable-http", "streamablehttp", "streamable_http", "ws", "websocket", "remote":
		if src.remote == "" {
			src.remote = src.typ
		} else {
			src.remote = src.typ + ", " + src.remote
		}
	default:
		return nil, fmt.Errorf("its type %q is unknown", clip.String(src.typ, 32))
	}
	return src, nil
}

// scalarString is a JSON scalar as text: VS Code allows numbers in env.
func scalarString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

// describeURL names a remote server's endpoint without anything that may
// be a secret: scheme and host only.
func describeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "a URL"
	}
	return quoteComment(u.Scheme + "://" + u.Host)
}

// convert fills s from src.
func (c *converter) convert(s *server, src *source) {
	argv := append([]string{src.command}, src.args...)
	if spec, rest, notes, ok := dockerRun(argv); ok {
		s.container = spec
		argv = rest
		s.review = append(s.review, notes...)
	}
	// The env first: a secret found there is also replaced where argv
	// repeats it.
	for _, e := range src.env {
		c.envVar(s, e)
	}
	if s.container != nil {
		c.containerEnv(s)
	}
	prefix := envVarName(s.name)
	for i, a := range argv {
		prev := ""
		if i > 0 {
			prev = argv[i-1]
		}
		if flag, value, ok := strings.Cut(a, "="); ok && strings.HasPrefix(flag, "-") && secretFlags[flagName(flag)] && value != "" && !strings.Contains(value, "${") {
			name := c.secretVar(prefix+"_"+envVarName(flagName(flag)), value)
			s.command = append(s.command, escapeDollars(flag)+"=${"+name+"}")
			c.movedSecret(s, name, fmt.Sprintf("argument %d (%s)", i, flag))
			continue
		}
		if !strings.Contains(a, "${") && argIsSecret(prev, a) {
			var name string
			switch f := flagName(prev); {
			case f != "" && secretFlags[f]:
				name = c.secretVar(prefix+"_"+envVarName(f), a)
			case userinfoPassword.MatchString(a):
				name = c.secretVar(prefix+"_URL", a)
			case tokenPatterns.MatchString(a):
				name = c.secretVar(prefix+"_TOKEN", a)
			default:
				name = c.secretVar(fmt.Sprintf("%s_ARG%d", prefix, i), a)
			}
			s.command = append(s.command, "${"+name+"}")
			c.movedSecret(s, name, fmt.Sprintf("argument %d", i))
			continue
		}
		s.command = append(s.command, c.translateArg(s, i, a))
	}
	if src.envFile != "" {
		c.envFile(s, src.envFile)
	}
	if src.cwd != "" {
		t := c.translate(src.cwd)
		c.keep(s, t)
		if filepath.IsAbs(src.cwd) || strings.HasPrefix(t.text, "/") || strings.HasPrefix(t.text, "${") {
			s.workdir = t.text
		} else if c.project != "" {
			s.workdir = escapeDollars(filepath.Join(c.project, src.cwd))
		} else {
			s.review = append(s.review, fmt.Sprintf("its working directory was %s, relative to the project: set workdir: to an absolute path", quoteComment(src.cwd)))
		}
	}
	if len(src.ignored) > 0 {
		s.review = append(s.review, fmt.Sprintf("not imported, no mcpgw equivalent: %s", quoteList(src.ignored)))
	}
	c.reviewLauncher(s, argv)
}

// translateArg translates one argument in which a secret already moved
// to a variable may appear as well: every occurrence of it becomes that
// ${NAME} too.
func (c *converter) translateArg(s *server, i int, a string) string {
	for _, name := range slices.Sorted(maps.Keys(c.secrets)) {
		value := c.secrets[name]
		if len(value) < 8 || !strings.Contains(a, value) {
			continue
		}
		var b strings.Builder
		for j, part := range strings.Split(a, value) {
			if j > 0 {
				b.WriteString("${" + name + "}")
			}
			t := c.translate(part)
			c.keep(s, t)
			b.WriteString(t.text)
		}
		c.useVar(name)
		c.movedSecret(s, name, fmt.Sprintf("argument %d", i))
		return b.String()
	}
	t := c.translate(a)
	c.keep(s, t)
	return t.text
}

// keep records what a translated value references and notes.
func (c *converter) keep(s *server, t translated) {
	for _, r := range t.refs {
		c.useVar(r)
	}
	for _, n := range t.notes {
		if !containsString(s.review, n) {
			s.review = append(s.review, n)
		}
	}
}

// secretVar returns the variable that will hold a literal secret value,
// preferring want; another value under the same name gets a suffix.
func (c *converter) secretVar(want, value string) string {
	name := want
	for i := 2; ; i++ {
		prev, taken := c.secrets[name]
		if !taken || prev == value {
			c.secrets[name] = value
			c.useVar(name)
			return name
		}
		name = fmt.Sprintf("%s_%d", want, i)
	}
}

// movedSecret records a literal secret replaced by ${name}.
func (c *converter) movedSecret(s *server, name, what string) {
	s.review = append(s.review, fmt.Sprintf("%s held a literal secret, which is not copied here: export %s before starting mcpgw", what, name))
	c.note("server %q: %s held a literal secret; it is written as ${%s}: export %s before starting mcpgw", s.name, what, name, name)
}

// envVar converts one env entry.
func (c *converter) envVar(s *server, e member) {
	if !envName.MatchString(e.key) {
		s.review = append(s.review, fmt.Sprintf("the variable %s is not imported: its name is not a valid environment variable name", quoteComment(e.key)))
		return
	}
	var v any
	_ = json.Unmarshal(e.value, &v)
	if v == nil {
		s.review = append(s.review, fmt.Sprintf("%s was null in the source file (unset): a server gets only PATH, HOME, LANG, TZ and its env anyway", e.key))
		return
	}
	value, ok := scalarString(v)
	if !ok {
		s.review = append(s.review, fmt.Sprintf("%s is not imported: its value is not a string", e.key))
		return
	}
	if !strings.Contains(value, "${") && envIsSecret(e.key, value) {
		name := c.secretVar(e.key, value)
		s.env = append(s.env, envVar{name: e.key, value: "${" + name + "}", comment: []string{
			"held a literal secret in the source file, which is not copied here:",
			"export " + name + " before starting mcpgw.",
		}})
		c.note("server %q: env %s held a literal secret; it is written as ${%s}: export %s before starting mcpgw", s.name, e.key, name, name)
		return
	}
	t := c.translate(value)
	c.keep(s, t)
	s.env = append(s.env, envVar{name: e.key, value: t.text})
}

// envFile lists the variables of an env file as references: mcpgw reads
// no env file, and the file's values are secrets more often than not.
func (c *converter) envFile(s *server, file string) {
	t := c.translate(file)
	path := strings.ReplaceAll(t.text, "$$", "$")
	if len(t.refs) > 0 || !filepath.IsAbs(path) {
		if c.project != "" && len(t.refs) == 0 {
			path = filepath.Join(c.project, path)
		} else {
			s.review = append(s.review, fmt.Sprintf("its envFile %s is not read: export its variables and list them under env: as NAME: \"${NAME}\"", quoteComment(file)))
			return
		}
	}
	data, err := c.readFile(path)
	if err != nil {
		s.review = append(s.review, fmt.Sprintf("its envFile %s cannot be read (%v): export its variables and list them under env: as NAME: \"${NAME}\"", quoteComment(path), errText(err)))
		return
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "export "))
		name, _, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || strings.HasPrefix(line, "#") || !envName.MatchString(name) || hasEnv(s, name) {
			continue
		}
		names = append(names, name)
		c.useVar(name)
		s.env = append(s.env, envVar{name: name, value: "${" + name + "}"})
	}
	if len(names) > 0 {
		s.review = append(s.review, fmt.Sprintf("its envFile %s gave %s: mcpgw reads no env file, so export them before starting mcpgw (their values are not copied here)", quoteComment(path), strings.Join(names, ", ")))
	}
}

func hasEnv(s *server, name string) bool {
	for _, e := range s.env {
		if e.name == name {
			return true
		}
	}
	return false
}

func errText(err error) string {
	if pe, ok := err.(interface{ Unwrap() error }); ok && pe.Unwrap() != nil {
		return pe.Unwrap().Error()
	}
	return err.Error()
}

func containsString(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
