package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
)

// Bounds of a rule. Rules come from the operator's config, but a rule's
// cost also depends on what clients send (args) and servers list
// (names, annotations), so each evaluation is bounded as well.
const (
	// MaxRuleBytes bounds a rule's text.
	MaxRuleBytes = 4096
	// MaxRules bounds the rules of one server: each is evaluated per
	// listed item and per call.
	MaxRules = 64
	// CostLimit bounds one evaluation of one rule, in CEL's cost units
	// (about one per operation, and per byte or element that a string or
	// list function visits). An evaluation that exceeds it fails.
	CostLimit = 100_000
	// maxNesting bounds the parser's recursion.
	maxNesting = 32
)

// Rule is one policy rule: when Expr is true for a request, Allow
// decides it.
type Rule struct {
	Allow bool
	Expr  string
	// Path is the rule's key path in the config, for logs.
	Path string
}

// The variables a rule sees. Field names are the CEL names (cel tags);
// see docs/config.md.
type (
	celIdentity struct {
		Name   string         `cel:"name"`
		Email  string         `cel:"email"`
		Claims map[string]any `cel:"claims"`
	}
	celAnnotations struct {
		Title           string `cel:"title"`
		ReadOnlyHint    bool   `cel:"readOnlyHint"`
		DestructiveHint bool   `cel:"destructiveHint"`
		IdempotentHint  bool   `cel:"idempotentHint"`
		OpenWorldHint   bool   `cel:"openWorldHint"`
	}
	celTool struct {
		Name        string         `cel:"name"`
		Title       string         `cel:"title"`
		Description string         `cel:"description"`
		Annotations celAnnotations `cel:"annotations"`
	}
	celPrompt struct {
		Name string `cel:"name"`
	}
	celResource struct {
		URI  string `cel:"uri"`
		Name string `cel:"name"`
	}
)

// defaultAnnotations are the values the MCP spec gives to absent tool
// annotations (schema ToolAnnotations): a tool is assumed to write,
// possibly destructively, to an open world.
var defaultAnnotations = celAnnotations{DestructiveHint: true, OpenWorldHint: true}

var (
	envOnce sync.Once
	celEnv  *cel.Env
	envErr  error
)

// environment returns the one CEL environment of every rule.
func environment() (*cel.Env, error) {
	envOnce.Do(func() {
		celEnv, envErr = cel.NewEnv(
			ext.NativeTypes(ext.ParseStructTags(true),
				reflect.TypeFor[celIdentity](), reflect.TypeFor[celAnnotations](), reflect.TypeFor[celTool](),
				reflect.TypeFor[celPrompt](), reflect.TypeFor[celResource]()),
			cel.Variable("identity", cel.ObjectType("policy.celIdentity")),
			cel.Variable("server", cel.StringType),
			cel.Variable("method", cel.StringType),
			cel.Variable("tool", cel.ObjectType("policy.celTool")),
			cel.Variable("prompt", cel.ObjectType("policy.celPrompt")),
			cel.Variable("resource", cel.ObjectType("policy.celResource")),
			cel.Variable("args", cel.MapType(cel.StringType, cel.DynType)),
			ext.Strings(),
			cel.ParserRecursionLimit(maxNesting),
			cel.ParserExpressionSizeLimit(MaxRuleBytes),
		)
	})
	return celEnv, envErr
}

// program is a compiled rule.
type program struct {
	Rule
	prg cel.Program
}

// Check compiles and type-checks expr as a rule, for the config's
// validation. Its error says what is wrong in CEL's words, with the
// position in the expression.
func Check(expr string) error {
	_, err := compile(expr)
	return err
}

func compile(expr string) (cel.Program, error) {
	if len(expr) > MaxRuleBytes {
		return nil, fmt.Errorf("the rule is longer than %d bytes", MaxRuleBytes)
	}
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("the rule is empty; write a CEL expression such as identity.name == \"ci\"")
	}
	env, err := environment()
	if err != nil {
		return nil, fmt.Errorf("the rule environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, errors.New(oneLine(iss.Err().Error()))
	}
	if !ast.OutputType().IsExactType(types.BoolType) {
		return nil, fmt.Errorf("the rule is of type %s; it must be true or false (bool)", ast.OutputType())
	}
	return env.Program(ast, cel.CostLimit(CostLimit))
}

// oneLine turns CEL's errors (each a message, the source line and a
// caret) into one line, as config problems are printed: each error's
// position and message, joined by "; ".
func oneLine(s string) string {
	var parts []string
	for l := range strings.Lines(s) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(l), "ERROR: <input>:")
		if !ok {
			continue // the source line and the caret
		}
		pos, msg, _ := strings.Cut(rest, ": ")
		line, col, _ := strings.Cut(pos, ":")
		switch {
		case line == "1":
			parts = append(parts, "at column "+col+": "+msg)
		case line == "-1" || line == "":
			parts = append(parts, msg)
		default:
			parts = append(parts, "at line "+line+" column "+col+": "+msg)
		}
	}
	if len(parts) == 0 {
		return strings.Join(strings.Fields(s), " ")
	}
	return strings.Join(parts, "; ")
}

// compileRules compiles rules that Check accepted.
func compileRules(rules []Rule) ([]program, error) {
	var out []program
	for _, r := range rules {
		prg, err := compile(r.Expr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Path, err)
		}
		out = append(out, program{Rule: r, prg: prg})
	}
	return out, nil
}

// facts are the variables of one decision.
type facts struct {
	who      Who
	server   string
	method   string
	kind     Kind
	item     *item
	args     map[string]any
	tool     *celTool // the tool's definition as last listed; nil: unknown
	forCall  bool
	activate map[string]any // built on first use
}

func (f *facts) activation() map[string]any {
	if f.activate != nil {
		return f.activate
	}
	tool, prompt, resource := celTool{Annotations: defaultAnnotations}, celPrompt{}, celResource{}
	switch f.kind {
	case KindTool:
		if f.tool != nil {
			tool = *f.tool
		}
		tool.Name = f.item.Name
	case KindPrompt:
		prompt.Name = f.item.Name
	case KindResource:
		resource = celResource{URI: f.item.key(KindResource), Name: f.item.Name}
	}
	args := f.args
	if args == nil {
		args = map[string]any{}
	}
	claims := f.who.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	f.activate = map[string]any{
		"identity": celIdentity{Name: f.who.Name, Email: f.who.Email, Claims: claims},
		"server":   f.server,
		"method":   f.method,
		"tool":     tool,
		"prompt":   prompt,
		"resource": resource,
		"args":     args,
	}
	return f.activate
}

// decide applies the rules: the first rule that is true decides; when
// none is, the item is allowed. A rule whose evaluation fails (a missing
// claim or argument, the cost limit) refuses a call, and is passed over
// in a list: a call is where arguments are known and harm is done.
func (g *Guard) decide(f *facts) bool {
	for _, r := range g.rules {
		out, _, err := r.prg.Eval(f.activation())
		if err != nil {
			if f.forCall {
				if g.log != nil {
					g.log.Warn("policy rule failed: the request is refused", "tool", g.cfg.Server,
						"rule", r.Path, "method", f.method, "name", f.item.key(f.kind), "identity", f.who.Name, "error", err.Error())
				}
				return false
			}
			continue
		}
		if b, ok := out.Value().(bool); ok && b {
			return r.Allow
		}
	}
	return true
}
