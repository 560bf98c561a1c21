package importer

import (
	"path/filepath"
	"regexp"
	"strings"

	"github.com/mcpgw/mcpgw/internal/clip"
)

// Variable syntaxes of the source tools, and what they become:
//
//	${NAME}, ${NAME:-default}   Claude Code (.mcp.json)  → ${NAME} (the default is dropped)
//	${env:NAME}                 VS Code, Cursor          → ${NAME}
//	${input:ID}                 VS Code inputs           → ${ID as a variable name}
//	${workspaceFolder}          VS Code, Cursor          → the project directory, when known
//	${workspaceFolderBasename}  VS Code, Cursor          → its last element
//	${userHome}                 VS Code, Cursor          → ${HOME}
//	${pathSeparator}, ${/}      VS Code, Cursor          → /
//	${CLAUDE_PROJECT_DIR}       Claude Code              → the project directory, when known
//
// Any other "$" is written as "$$", mcpgw's literal dollar, so that a value
// reaches the server as the source tool passed it.

var refPattern = regexp.MustCompile(`\$\{([^{}]*)\}`)

// literalDollarNote explains a "$" that is not part of a ${…} reference.
const literalDollarNote = `a "$" that the source tool passed as it is stays so ("$$" in mcpgw); write ${NAME} where an environment variable was meant`

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// translated is a value in mcpgw's syntax.
type translated struct {
	text string
	// refs are the environment variables it references.
	refs []string
	// notes say what could not be kept as it was (one short clause each).
	notes []string
}

// translate rewrites s from the source tool's variable syntax to mcpgw's.
func (c *converter) translate(s string) translated {
	var t translated
	var b strings.Builder
	last := 0
	literal := func(part string) {
		if strings.Contains(part, "$") && !containsString(t.notes, literalDollarNote) {
			t.notes = append(t.notes, literalDollarNote)
		}
		b.WriteString(escapeDollars(part))
	}
	for _, m := range refPattern.FindAllStringSubmatchIndex(s, -1) {
		literal(s[last:m[0]])
		last = m[1]
		inner := s[m[2]:m[3]]
		b.WriteString(c.reference(inner, &t))
	}
	literal(s[last:])
	t.text = b.String()
	return t
}

// reference translates the inside of one ${…}.
func (c *converter) reference(inner string, t *translated) string {
	ref := func(name string) string {
		t.refs = append(t.refs, name)
		return "${" + name + "}"
	}
	switch {
	case inner == "workspaceFolder" || inner == "workspaceRoot" || inner == "CLAUDE_PROJECT_DIR":
		if c.project != "" {
			return escapeDollars(c.project)
		}
		if inner == "CLAUDE_PROJECT_DIR" {
			return ref(inner)
		}
		t.notes = append(t.notes, "${"+inner+"} is the project directory, which is not known here: export WORKSPACE_FOLDER")
		return ref("WORKSPACE_FOLDER")
	case inner == "workspaceFolderBasename":
		if c.project != "" {
			return escapeDollars(filepath.Base(c.project))
		}
		t.notes = append(t.notes, "${workspaceFolderBasename} is not known here: export WORKSPACE_FOLDER_BASENAME")
		return ref("WORKSPACE_FOLDER_BASENAME")
	case inner == "userHome":
		return ref("HOME")
	case inner == "pathSeparator" || inner == "/":
		return "/"
	case strings.HasPrefix(inner, "env:") && envName.MatchString(inner[4:]):
		return ref(inner[4:])
	case strings.HasPrefix(inner, "input:"):
		id := inner[len("input:"):]
		name := c.inputVar(id)
		if in, ok := c.inputs[id]; ok && in.Description != "" {
			t.notes = append(t.notes, "${input:"+id+"} was prompted for ("+quoteComment(in.Description)+"): export "+name)
		} else {
			t.notes = append(t.notes, "${input:"+id+"} was prompted for: export "+name)
		}
		return ref(name)
	case envName.MatchString(inner):
		return ref(inner)
	}
	if name, def, ok := strings.Cut(inner, ":-"); ok && envName.MatchString(name) {
		if def != "" {
			t.notes = append(t.notes, "${"+name+":-…} had a default, which mcpgw does not support: "+name+" must be set")
		}
		return ref(name)
	}
	t.notes = append(t.notes, "${"+clip.String(inner, 40)+"} has no mcpgw equivalent: it is kept as literal text")
	return escapeDollars("${" + inner + "}")
}

// inputVar is the environment variable that replaces the VS Code input
// id: its letters and digits in upper case, other characters as "_".
func (c *converter) inputVar(id string) string {
	if v, ok := c.inputNames[id]; ok {
		return v
	}
	name := envVarName(id)
	c.inputNames[id] = name
	return name
}

// envVarName turns s into a valid variable name: "github-token" →
// GITHUB_TOKEN, "1password" → _1PASSWORD.
func envVarName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "_") {
			b.WriteByte('_')
		}
		if b.Len() >= 64 {
			break
		}
	}
	name := strings.TrimSuffix(b.String(), "_")
	if name == "" {
		return "VALUE"
	}
	if name[0] >= '0' && name[0] <= '9' {
		name = "_" + name
	}
	return name
}

func escapeDollars(s string) string { return strings.ReplaceAll(s, "$", "$$") }
