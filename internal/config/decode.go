package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcpgw/mcpgw/internal/clip"
)

// The decoder walks the yaml.Node tree itself instead of unmarshalling into
// tagged structs: that is what lets every problem name its key path and
// line, lets one run report all problems, and keeps ${VAR} expansion on
// scalar values after parsing, where it cannot change the structure.

const (
	// maxValues bounds the keys and list items the decoder visits, counting
	// each use of a YAML alias again: a few lines of nested aliases can
	// otherwise expand to billions of values.
	maxValues = 1 << 20
	// maxMergeDepth bounds merge keys (<<) that merge mappings which merge.
	maxMergeDepth = 16
)

// Keys that are planned but this version does not implement. They
// get their own message so that an operator does not hunt for a typo.
var (
	reservedTopKeys    []string
	reservedServerKeys []string
)

// field decodes the value node n found at key path.
type field func(path string, n *yaml.Node)

// fields maps the keys of one YAML mapping to their decoders.
type fields map[string]field

type decoder struct {
	lookupEnv    func(string) (string, bool)
	budget       int
	exhausted    bool
	mergeTooDeep bool
	problems     []problem
	// lines maps key paths to the line where the key (or list item) is.
	lines map[string]int
	// literal marks key paths whose scalar value contains no "$", so
	// that messages may quote it: it cannot hold an expanded secret.
	literal map[string]bool
	// failed marks key paths that have a decoding problem; validation
	// problems at or below them would only repeat it.
	failed map[string]bool
}

func newDecoder(lookupEnv func(string) (string, bool)) *decoder {
	if lookupEnv == nil {
		lookupEnv = noEnv
	}
	return &decoder{
		lookupEnv: lookupEnv,
		budget:    maxValues,
		lines:     map[string]int{},
		literal:   map[string]bool{},
		failed:    map[string]bool{},
	}
}

// decode parses data into a Config that holds the default of every key the
// data does not set. It returns nil when data is not usable YAML at all.
func (d *decoder) decode(data []byte) *Config {
	c := newConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c // an empty file: validation says what is missing
		}
		d.yamlError(err, data)
		return nil
	}
	// A second document is refused rather than ignored; an empty one (a
	// trailing "---") is harmless.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.yamlError(err, data)
			return nil
		}
		if len(next.Content) > 0 && !isNull(next.Content[0]) {
			d.addf("", next.Content[0], `the file holds more than one YAML document (separated by "---"); put the whole configuration in one`)
			return nil
		}
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return c
		}
		root = doc.Content[0]
	}
	top := fields{
		"listen":          d.str(&c.Listen),
		"public_url":      d.str(&c.PublicURL),
		"allowed_hosts":   d.strList(&c.AllowedHosts, ""),
		"allowed_origins": d.strList(&c.AllowedOrigins, ""),
		"log": d.sub(fields{
			"level":  d.str(&c.Log.Level),
			"format": d.str(&c.Log.Format),
		}, nil),
		"limits": d.sub(fields{
			"max_processes":           d.integer(&c.Limits.MaxProcesses),
			"max_body_bytes":          d.size(&c.Limits.MaxBodyBytes),
			"max_message_bytes":       d.size(&c.Limits.MaxMessageBytes),
			"shutdown_timeout":        d.duration(&c.Limits.ShutdownTimeout),
			"sse_keepalive":           d.duration(&c.Limits.SSEKeepAlive),
			"hold_messages":           d.duration(&c.Limits.HoldMessages),
			"max_held_messages":       d.integer(&c.Limits.MaxHeldMessages),
			"replay_events":           d.integer(&c.Limits.ReplayEvents),
			"replay_bytes":            d.size(&c.Limits.ReplayBytes),
			"replay_age":              d.duration(&c.Limits.ReplayAge),
			"sse_retry":               d.duration(&c.Limits.SSERetry),
			"sse_close_after_priming": d.boolean(&c.Limits.SSECloseAfterPriming),
			"read_timeout":            d.duration(&c.Limits.ReadTimeout),
			"max_sessions":            d.integer(&c.Limits.MaxSessions),
		}, nil),
		"servers":         func(path string, n *yaml.Node) { d.servers(path, n, c) },
		"auth":            func(path string, n *yaml.Node) { d.auth(path, n, &c.Auth) },
		"trusted_proxies": d.prefixes(&c.TrustedProxies),
		"rate":            d.rate(&c.Rate),
		"session_rate":    d.rate(&c.SessionRate),
		"workspaces":      d.env(&c.Workspaces),
		"state_dir":       d.str(&c.StateDir),
		"reload":          d.str(&c.Reload),
		"cluster":         func(path string, n *yaml.Node) { d.cluster(path, n, &c.Cluster) },
	}
	maps.Copy(top, d.observeFields(c))
	d.mapping("", root, top, reservedTopKeys)
	if c.StateDir == "" {
		c.StateDir = defaultStateDir(d.lookupEnv)
	}
	return c
}

func (d *decoder) servers(path string, n *yaml.Node, c *Config) {
	n = d.resolve(n)
	if isNull(n) || d.badTag(path, n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.addf(path, n, "must be a mapping of server name to settings, not %s", kindName(n))
		return
	}
	for _, e := range d.entries(path, n) {
		p := joinKey(path, e.key)
		d.lines[p] = e.k.Line
		s := newServer(e.key)
		c.Servers[e.key] = s
		agg := &aggregateKeys{}
		defer d.aggregate(p, s, agg)
		d.mapping(p, e.v, fields{
			"runtime": d.str((*string)(&s.Runtime)),
			"mode":    d.str((*string)(&s.Mode)),
			"command": d.strList(&s.Command, `; write the program and its arguments as a list, e.g. ["npx", "-y", "some-server"] (it never runs through a shell)`),
			"env":     d.env(&s.Env),
			"workdir": d.str(&s.Workdir),
			"timeouts": d.sub(fields{
				"startup":            d.duration(&s.Timeouts.Startup),
				"request":            d.duration(&s.Timeouts.Request),
				"idle":               d.duration(&s.Timeouts.Idle),
				"max_lifetime":       d.duration(&s.Timeouts.MaxLifetime),
				"kill_grace":         d.duration(&s.Timeouts.KillGrace),
				"reclaim_idle":       d.duration(&s.Timeouts.ReclaimIdle),
				"reclaim_unattended": d.duration(&s.Timeouts.ReclaimUnattended),
			}, nil),
			"max_concurrent":           d.integer(&s.MaxConcurrent),
			"isolation":                d.str(&s.Isolation),
			"max_processes":            d.integer(&s.MaxProcesses),
			"queue_timeout":            d.duration(&s.QueueTimeout),
			"min_processes":            d.integer(&s.MinProcesses),
			"max_inflight_per_process": d.integer(&s.MaxInflightPerProcess),
			"allow":                    d.strList(&s.Allow, `; write identities as a list, e.g. ["*@example.com", laptop]`),
			"rate":                     d.rate(&s.Rate),
			"session_rate":             d.rate(&s.SessionRate),
			"container":                func(path string, n *yaml.Node) { d.container(path, n, s) },
			"workspaces":               func(path string, n *yaml.Node) { d.mounts(path, n, s) },
			"sandbox":                  d.str(&s.Sandbox),
			"read_paths":               d.strList(&s.ReadPaths, `; list absolute paths, e.g. [/opt/node]`),
			"tools":                    d.exposure(&s.Tools, `["get_*", "list_*"]`),
			"prompts":                  d.exposure(&s.Prompts, `["review_*"]`),
			"resources":                d.exposure(&s.Resources, `["file:///srv/docs/*"]`),
			"policy":                   d.rules(&s.Policy),
			"pin_tools":                d.str(&s.PinTools),
			"aggregate":                d.members(agg),
			"prefix":                   d.keep(agg, &agg.prefix),
			"separator":                d.keep(agg, &agg.separator),
			"on_member_error":          d.keep(agg, &agg.onMemberError),
			"page_size":                d.pageSize(agg),
		}, reservedServerKeys)
	}
}

// container decodes a server's container block. Its defaults exist only
// when the block does: a native server has no Container.
func (d *decoder) container(path string, n *yaml.Node, s *Server) {
	c := newContainer()
	s.Container = c
	d.mapping(path, n, fields{
		"image":      d.str(&c.Image),
		"network":    d.str(&c.Network),
		"read_only":  d.boolean(&c.ReadOnly),
		"tmp_size":   d.size(&c.TmpSize),
		"user":       d.str(&c.User),
		"memory":     d.size(&c.Memory),
		"cpus":       d.float(&c.CPUs),
		"pids_limit": d.integer(&c.PidsLimit),
		"nofile":     d.integer(&c.NoFile),
		"cap_add":    d.strList(&c.CapAdd, `; list capabilities, e.g. [NET_BIND_SERVICE]`),
		"pull":       d.str(&c.Pull),
	}, nil)
}

// mounts decodes a server's workspaces: a list of {name, subpath, target,
// mode} mappings.
func (d *decoder) mounts(path string, n *yaml.Node, s *Server) {
	n = d.resolve(n)
	if isNull(n) || d.badTag(path, n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.addf(path, n, "must be a list, not %s; e.g. [{name: projects, mode: ro}]", kindName(n))
		return
	}
	for i, item := range n.Content {
		if !d.spend() {
			return
		}
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		m := Mount{Mode: defaultMountMode}
		d.mapping(p, item, fields{
			"name":    d.str(&m.Name),
			"subpath": d.str(&m.Subpath),
			"target":  d.str(&m.Target),
			"mode":    d.str(&m.Mode),
		}, nil)
		s.Workspaces = append(s.Workspaces, m)
	}
}

// mapping decodes the mapping n at path with known, reporting keys that are
// reserved or unknown. A null value leaves every key at its default.
func (d *decoder) mapping(path string, n *yaml.Node, known fields, reserved []string) {
	n = d.resolve(n)
	if isNull(n) || d.badTag(path, n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		if path == "" {
			d.addf(path, n, "the configuration must be a mapping of keys such as listen: and servers:, not %s", kindName(n))
		} else {
			d.addf(path, n, "must be a mapping (key: value), not %s", kindName(n))
		}
		return
	}
	for _, e := range d.entries(path, n) {
		p := joinKey(path, e.key)
		d.lines[p] = e.k.Line
		switch f, ok := known[e.key]; {
		case ok:
			f(p, e.v)
		case slices.Contains(reserved, e.key):
			d.keyf(p, e.k, "not supported by this version of mcpgw yet")
		default:
			d.keyf(p, e.k, "unknown key%s", suggest(path, e.key, known))
		}
	}
}

// sub returns a field that decodes a nested mapping.
func (d *decoder) sub(known fields, reserved []string) field {
	return func(path string, n *yaml.Node) { d.mapping(path, n, known, reserved) }
}

// entry is one key: value pair of a mapping.
type entry struct {
	key  string
	k, v *yaml.Node
}

// entries returns the pairs of mapping n in file order, with YAML merge
// keys (<<: *anchor) applied: keys written in the mapping win over merged
// ones, and earlier merged mappings over later ones. Duplicate and
// non-string keys are reported.
func (d *decoder) entries(path string, n *yaml.Node) []entry {
	var out []entry
	d.collect(path, n, 0, map[string]int{}, &out)
	return out
}

func (d *decoder) collect(path string, n *yaml.Node, depth int, seen map[string]int, out *[]entry) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend() {
			return
		}
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		rk := d.resolve(k)
		if rk.Kind != yaml.ScalarNode {
			if depth == 0 {
				d.keyf(path, k, "keys must be plain strings, not %s", kindName(rk))
			}
			continue
		}
		key := rk.Value
		if first, dup := seen[key]; dup {
			if depth == 0 {
				d.keyf(joinKey(path, key), k, "duplicate key: it is already set on line %d", first)
			}
			continue
		}
		// Keys of this mapping are all seen before any merged one, so
		// a duplicate found here is always on a line of this mapping.
		seen[key] = k.Line
		*out = append(*out, entry{key: key, k: k, v: v})
	}
	for _, m := range merges {
		p := joinKey(path, "<<")
		if depth >= maxMergeDepth {
			if !d.mergeTooDeep {
				d.mergeTooDeep = true
				d.keyf(p, m, "merge keys are nested more than %d deep", maxMergeDepth)
			}
			return
		}
		m = d.resolve(m)
		list := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			list = m.Content
		}
		for _, item := range list {
			item = d.resolve(item)
			if item.Kind != yaml.MappingNode {
				d.keyf(p, item, "a merge key must refer to a mapping or a list of mappings, not %s", kindName(item))
				continue
			}
			d.collect(path, item, depth+1, seen, out)
		}
	}
}

// str returns a field that decodes a string.
func (d *decoder) str(dst *string) field {
	return func(path string, n *yaml.Node) {
		if s, ok := d.scalar(path, n, "a string"); ok {
			*dst = s
		}
	}
}

// strList returns a field that decodes a list of strings; hint is added to
// the message when the value is not a list.
func (d *decoder) strList(dst *[]string, hint string) field {
	return func(path string, n *yaml.Node) {
		n = d.resolve(n)
		if isNull(n) || d.badTag(path, n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.addf(path, n, "must be a list, not %s%s", kindName(n), hint)
			return
		}
		var list []string
		for i, item := range n.Content {
			if !d.spend() {
				return
			}
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			if r := d.resolve(item); isNull(r) {
				d.addf(p, item, "must be a string, not empty%s", bareNull(r))
				list = append(list, "") // keep the indexes of later items
				continue
			}
			s, _ := d.scalar(p, item, "a string")
			list = append(list, s)
		}
		*dst = list
	}
}

// env returns a field that decodes a mapping of environment variables.
func (d *decoder) env(dst *map[string]string) field {
	return func(path string, n *yaml.Node) {
		n = d.resolve(n)
		if isNull(n) || d.badTag(path, n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.addf(path, n, "must be a mapping of variable name to value, not %s", kindName(n))
			return
		}
		m := map[string]string{}
		for _, e := range d.entries(path, n) {
			p := joinKey(path, e.key)
			d.lines[p] = e.k.Line
			if r := d.resolve(e.v); isNull(r) {
				d.addf(p, e.v, `has no value%s; write "" for an empty one`, bareNull(r))
				continue
			}
			if s, ok := d.scalar(p, e.v, "a string"); ok {
				m[e.key] = s
			}
		}
		*dst = m
	}
}

// integer returns a field that decodes a whole number.
func (d *decoder) integer(dst *int) field {
	return func(path string, n *yaml.Node) {
		s, ok := d.scalar(path, n, "a whole number")
		if !ok {
			return
		}
		i, err := strconv.Atoi(s)
		switch {
		case errors.Is(err, strconv.ErrRange) && strings.HasPrefix(s, "-"):
			*dst = math.MinInt // validation reports the bounds
		case errors.Is(err, strconv.ErrRange):
			*dst = math.MaxInt
		case err != nil:
			d.addf(path, n, "must be a whole number%s", d.got(path, s))
		default:
			*dst = i
		}
	}
}

// boolean returns a field that decodes true or false (YAML 1.2 spelling
// only: yes/no/on/off are refused rather than guessed).
func (d *decoder) boolean(dst *bool) field {
	return func(path string, n *yaml.Node) {
		s, ok := d.scalar(path, n, "true or false")
		if !ok {
			return
		}
		switch s {
		case "true":
			*dst = true
		case "false":
			*dst = false
		default:
			d.addf(path, n, "must be true or false%s", d.got(path, s))
		}
	}
}

// size returns a field that decodes a byte count (see parseSize).
func (d *decoder) size(dst *int64) field {
	return func(path string, n *yaml.Node) {
		s, ok := d.scalar(path, n, "a size")
		if !ok {
			return
		}
		v, err := parseSize(s)
		if err != nil {
			d.addf(path, n, "%v%s", err, d.got(path, s))
			return
		}
		*dst = v
	}
}

// duration returns a field that decodes a Go duration.
func (d *decoder) duration(dst *time.Duration) field {
	return func(path string, n *yaml.Node) {
		s, ok := d.scalar(path, n, "a duration")
		if !ok {
			return
		}
		v, err := parseDuration(s)
		if err != nil {
			d.addf(path, n, "%v%s", err, d.got(path, s))
			return
		}
		*dst = v
	}
}

// scalar returns the ${VAR}-expanded text of the scalar n at path. ok is
// false when n is null (the key keeps its default) or when a problem was
// reported. The text is taken as written, whatever YAML type it resolves
// to, so `DEBUG: 1` and `DEBUG: "1"` both mean the string "1".
func (d *decoder) scalar(path string, n *yaml.Node, what string) (s string, ok bool) {
	n = d.resolve(n)
	if isNull(n) || d.badTag(path, n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.addf(path, n, "must be %s, not %s", what, kindName(n))
		return "", false
	}
	s, err := expand(n.Value, d.lookupEnv)
	if err != nil {
		d.addf(path, n, "%v", err)
		return "", false
	}
	d.literal[path] = !strings.Contains(n.Value, "$")
	return s, true
}

// standardTags are the YAML tags a value may carry explicitly. mcpgw reads
// every scalar as text, so they change nothing; other tags (!!binary, or
// !env and the like from other tools) would be silently misread.
var standardTags = []string{"!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!!map", "!!seq"}

// badTag reports a node that carries a tag other than a standard one.
func (d *decoder) badTag(path string, n *yaml.Node) bool {
	if n.Style&yaml.TaggedStyle == 0 || slices.Contains(standardTags, n.ShortTag()) {
		return false
	}
	d.addf(path, n, "the YAML tag %s is not supported; write the plain value (and ${NAME} for an environment variable)", clip.String(n.Tag, 64))
	return true
}

// got returns " (got "s")" if the value at path was written literally.
func (d *decoder) got(path, s string) string {
	return gotSuffix(d.literal[path], s)
}

// resolve follows an alias to the node it names. Aliases cannot point at
// aliases, and a cycle (an anchored node containing its own alias) only
// recurses as deep as the schema, which is bounded.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// spend takes one value from the budget, reporting once when it runs out.
func (d *decoder) spend() bool {
	if d.exhausted {
		return false
	}
	d.budget--
	if d.budget < 0 {
		d.exhausted = true
		d.keyf("", nil, "the configuration expands to more than %d keys and list items (through YAML aliases?); simplify it", maxValues)
		return false
	}
	return true
}

// addf reports a problem with the value at path, found at node n (nil: no
// line known). Validation problems at or below path are not reported.
func (d *decoder) addf(path string, n *yaml.Node, format string, args ...any) {
	d.failed[path] = true
	d.keyf(path, n, format, args...)
}

// keyf reports a problem with a key (unknown, duplicate, …), which leaves
// the validation of its neighbours meaningful.
func (d *decoder) keyf(path string, n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.problems = append(d.problems, problem{path: path, line: line, msg: fmt.Sprintf(format, args...)})
}

var yamlLine = regexp.MustCompile(`^line (\d+): `)

// yamlError reports a YAML syntax error in data, moving the line number
// that the parser puts first to where all problems have it. A tab in the
// indentation is named as such: the parser only says that it "cannot start
// any token".
func (d *decoder) yamlError(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	if l, tab, ok := tabProblem(data, line); ok {
		d.problems = append(d.problems, problem{line: l, msg: tab})
		return
	}
	d.problems = append(d.problems, problem{line: line, msg: "invalid YAML: " + msg})
}

// suppressed reports whether a validation problem at path would repeat a
// decoding problem at path or above it.
func (d *decoder) suppressed(path string) bool {
	if d.failed[path] || d.failed[""] {
		return true
	}
	for i := len(path) - 1; i > 0; i-- {
		if (path[i] == '.' || path[i] == '[') && d.failed[path[:i]] {
			return true
		}
	}
	return false
}

// lineFor returns the line of path or of its nearest ancestor in the file;
// "servers.fs.command" is missing when the command is, but "servers.fs" is
// not.
func (d *decoder) lineFor(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return 0
		}
		path = path[:i]
	}
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// bareNull explains a null written as a word, which YAML reads as no value.
func bareNull(n *yaml.Node) string {
	if n == nil || n.Value == "" {
		return ""
	}
	return fmt.Sprintf(" (YAML reads a bare %s as no value)", n.Value)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "empty"
		}
		return "a single value"
	}
	return "empty"
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinKey appends key to the key path parent. Keys that are not plain
// words are quoted, so a path stays readable and unambiguous.
func joinKey(parent, key string) string {
	if !plainKey.MatchString(key) {
		key = strconv.Quote(clip.String(key, 64))
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// suggest returns what to write instead of the unknown key in the mapping
// at path: the mcpgw way of a key that other tools use there (keyHint),
// else "; did you mean KEY?" for the known key closest to it, else "".
func suggest(path, key string, known fields) string {
	if h := keyHint(path, key); h != "" {
		return h
	}
	if len(key) < 3 || len(key) > 64 {
		return ""
	}
	squash := strings.NewReplacer("_", "", "-", "")
	norm := func(s string) string { return squash.Replace(strings.ToLower(s)) }
	best, bestDist := "", 3
	for k := range known {
		dist := EditDistance(key, k)
		if norm(k) == norm(key) {
			dist = 0 // maxConcurrent, Max-Concurrent, MAX_CONCURRENT
		}
		if dist < bestDist || (dist == bestDist && k < best) {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + best + "?"
}

// EditDistance is the Levenshtein distance between a and b, in bytes: how
// the "did you mean" hints of the config and the command line pick a name.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
