package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/internal/clip"
)

// ServerNamePattern is what a server name must match. The name is a path
// segment of /mcp/{server} (docs/design.md, "Endpoints"), so it is kept to
// characters that need no escaping and cannot form a dot segment.
var ServerNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidServerName reports whether name matches ServerNamePattern.
func ValidServerName(name string) bool {
	return ServerNamePattern.MatchString(name)
}

// Validate checks c against every rule that Parse applies, for callers that
// change a parsed Config (for example `mcpgw serve --listen`). It returns nil
// or an *Error listing all problems. Its messages quote no values: a Config
// does not record which values came from the environment.
func (c *Config) Validate() error {
	if c == nil {
		return &Error{Problems: []string{"no configuration"}}
	}
	var v validator
	v.config(c)
	return newError(v.problems)
}

// validator collects the problems of a decoded Config.
type validator struct {
	// literal holds the key paths whose value was written in the file
	// without any ${…}; only those values may be quoted in a message.
	// nil quotes nothing.
	literal  map[string]bool
	problems []problem
}

func (v *validator) add(path, msg string) {
	v.problems = append(v.problems, problem{path: path, msg: msg})
}

// got returns " (got "VALUE")" when value was written literally in the file
// at path, and "" when it may have come from the environment.
func (v *validator) got(path, value string) string {
	return gotSuffix(v.literal[path], value)
}

func (v *validator) config(c *Config) {
	v.observe(c)
	if err := checkListen(c.Listen); err != nil {
		v.add("listen", err.Error()+v.got("listen", c.Listen))
	}
	if c.PublicURL != "" {
		v.canonical("public_url", c.PublicURL, normalizePublicURL)
	}
	for i, h := range c.AllowedHosts {
		v.canonical(fmt.Sprintf("allowed_hosts[%d]", i), h, normalizeHost)
	}
	for i, o := range c.AllowedOrigins {
		v.canonical(fmt.Sprintf("allowed_origins[%d]", i), o, normalizeOrigin)
	}
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "json", "text")
	v.oneOf("reload", c.Reload, ReloadSignal, ReloadWatch)

	l := &c.Limits
	v.intRange("limits.max_processes", l.MaxProcesses, minMaxProcesses, maxMaxProcesses)
	v.sizeRange("limits.max_body_bytes", l.MaxBodyBytes, minMaxBodyBytes, maxMaxBodyBytes)
	v.sizeRange("limits.max_message_bytes", l.MaxMessageBytes, minMaxMessageBytes, maxMaxMessageBytes)
	v.durationRange("limits.shutdown_timeout", l.ShutdownTimeout, minShutdownTimeout, maxShutdownTimeout)
	v.durationRange("limits.sse_keepalive", l.SSEKeepAlive, minSSEKeepAlive, maxSSEKeepAlive)
	v.durationRange("limits.hold_messages", l.HoldMessages, minHoldMessages, maxHoldMessages)
	v.intRange("limits.max_held_messages", l.MaxHeldMessages, minMaxHeldMessages, maxMaxHeldMessages)
	v.intRange("limits.replay_events", l.ReplayEvents, minReplayEvents, maxReplayEvents)
	v.sizeRange("limits.replay_bytes", l.ReplayBytes, minReplayBytes, maxReplayBytes)
	v.durationRange("limits.replay_age", l.ReplayAge, minReplayAge, maxReplayAge)
	v.durationRange("limits.sse_retry", l.SSERetry, minSSERetry, maxSSERetry)
	v.durationRange("limits.read_timeout", l.ReadTimeout, minReadTimeout, maxReadTimeout)
	v.intRange("limits.max_sessions", l.MaxSessions, minMaxSessions, maxMaxSessions)

	v.auth(c)
	v.rate("rate", c.Rate)
	v.rate("session_rate", c.SessionRate)
	for i, p := range c.TrustedProxies {
		if !p.IsValid() || p != p.Masked() {
			v.add(fmt.Sprintf("trusted_proxies[%d]", i), "must be a valid, masked CIDR prefix")
		}
	}

	v.workspaces(c)
	v.cluster(c)
	if len(c.Servers) == 0 {
		v.add("servers", `at least one server is required, e.g. servers: {fs: {command: ["mcp-server-filesystem", "/srv"]}}`)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Servers)) {
		v.server(joinKey("servers", name), name, c.Servers[name])
		v.aggregate(joinKey("servers", name), c.Servers[name], c)
		if s := c.Servers[name]; s != nil && len(s.Allow) > 0 && c.Auth.Mode != AuthRequired {
			v.add(joinKey("servers", name)+".allow", "needs authentication (auth.tokens or auth.jwt): without it every caller is anonymous")
		}
		if s := c.Servers[name]; s != nil && (s.PinTools == PinWarn || s.PinTools == PinEnforce) {
			v.pinStateDir(joinKey("servers", name)+".pin_tools", c.StateDir)
		}
	}
}

func (v *validator) server(path, name string, s *Server) {
	if !ValidServerName(name) {
		v.add(path, "invalid server name: use 1 to 64 characters a-z, 0-9, _ and -, starting with a letter or digit (the name is the URL path /mcp/NAME)")
	}
	if s == nil {
		v.add(path, "has no settings")
		return
	}
	if s.Name != name {
		v.add(path, "the server's Name field does not match its key")
	}
	switch s.Runtime {
	case RuntimeNative:
		if s.Container != nil {
			v.add(path+".container", "is only for runtime: container; set runtime: container or remove the block")
		}
	case RuntimeContainer:
		if s.Container == nil {
			v.add(path+".container", "is required for runtime: container and must name the image, e.g. container: {image: mcp/filesystem}")
		}
		if s.Workdir != "" {
			v.add(path+".workdir", "is for runtime: native only; a container runs in its image's working directory")
		}
	default:
		v.add(path+".runtime", "must be native or container"+v.got(path+".runtime", string(s.Runtime)))
	}
	if s.Container != nil {
		v.container(path+".container", s.Container)
	}
	switch s.Mode {
	case ModeLauncher, ModeDaemon:
	default:
		v.add(path+".mode", "must be launcher or daemon"+v.got(path+".mode", string(s.Mode)))
	}

	// Arguments and env values may be secrets: never quote them. A
	// container's command is optional: without it the image's CMD runs.
	if len(s.Command) == 0 && s.Runtime != RuntimeContainer && !s.IsAggregate() {
		v.add(path+".command", `must name the program to run and its arguments as a list, e.g. ["mcp-server-filesystem", "/srv"]`)
	}
	for i, arg := range s.Command {
		p := fmt.Sprintf("%s.command[%d]", path, i)
		switch {
		case arg == "":
			v.add(p, "must not be empty")
		case strings.IndexByte(arg, 0) >= 0:
			v.add(p, "must not contain a NUL byte")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		p := joinKey(path+".env", k)
		if !envNamePattern.MatchString(k) {
			v.add(p, "is not a valid environment variable name: use letters, digits and _, not starting with a digit")
		}
		if strings.IndexByte(s.Env[k], 0) >= 0 {
			v.add(p, "value must not contain a NUL byte")
		}
	}
	if s.Workdir != "" {
		switch {
		case strings.IndexByte(s.Workdir, 0) >= 0:
			v.add(path+".workdir", "must not contain a NUL byte")
		case !filepath.IsAbs(s.Workdir):
			v.add(path+".workdir", "must be an absolute path"+v.got(path+".workdir", s.Workdir))
		}
	}

	t := &s.Timeouts
	p := path + ".timeouts"
	v.durationRange(p+".startup", t.Startup, minStartupTimeout, maxStartupTimeout)
	v.durationRange(p+".request", t.Request, minRequestTimeout, maxRequestTimeout)
	v.durationRange(p+".idle", t.Idle, minIdleTimeout, maxIdleTimeout)
	v.durationRange(p+".max_lifetime", t.MaxLifetime, minMaxLifetime, maxMaxLifetime)
	v.durationRange(p+".kill_grace", t.KillGrace, minKillGrace, maxKillGrace)
	v.durationRange(p+".reclaim_idle", t.ReclaimIdle, minReclaimIdle, maxReclaimIdle)
	v.durationRange(p+".reclaim_unattended", t.ReclaimUnattended, minReclaimUnattended, maxReclaimUnattended)
	v.intRange(path+".max_concurrent", s.MaxConcurrent, minMaxConcurrent, maxMaxConcurrent)
	v.intRange(path+".max_processes", s.MaxProcesses, minServerMaxProcesses, maxServerMaxProcesses)
	v.intRange(path+".min_processes", s.MinProcesses, minMinProcesses, maxMinProcesses)
	v.intRange(path+".max_inflight_per_process", s.MaxInflightPerProcess, minMaxInflightPerProc, maxMaxInflightPerProc)
	if s.MinProcesses > s.MaxProcesses {
		v.add(path+".min_processes", fmt.Sprintf("must not exceed max_processes (%d)", s.MaxProcesses))
	}
	v.oneOf(path+".isolation", s.Isolation, IsolationSession, IsolationRequest)
	if s.Mode == ModeDaemon && s.Isolation == IsolationRequest {
		v.add(path+".isolation", "applies to mode: launcher only; daemon processes are shared by every client: remove it or use mode: launcher")
	}
	if s.Mode != ModeDaemon && s.MinProcesses != 0 {
		v.add(path+".min_processes", "applies to mode: daemon only; a launcher starts one process per session")
	}
	v.durationRange(path+".queue_timeout", s.QueueTimeout, minQueueTimeout, maxQueueTimeout)
	v.allow(path+".allow", s.Allow)
	v.rate(path+".rate", s.Rate)
	v.rate(path+".session_rate", s.SessionRate)
	v.exposure(path+".tools", s.Tools)
	v.exposure(path+".prompts", s.Prompts)
	v.exposure(path+".resources", s.Resources)
	v.rules(path+".policy", s.Policy)
	v.oneOf(path+".pin_tools", s.PinTools, PinOff, PinWarn, PinEnforce)
}

var (
	// imagePattern is a Docker image reference: [registry[:port]/]path[:tag][@digest],
	// lower-case path components (distribution/reference, loosely).
	imagePattern = regexp.MustCompile(`^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`)
	// networkPattern is a Docker network name.
	networkPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	// userPattern is uid[:gid] or name[:group] as Docker accepts it.
	userPattern = regexp.MustCompile(`^(?:[0-9]{1,10}|[a-z_][a-z0-9_.-]{0,31})(?::(?:[0-9]{1,10}|[a-z_][a-z0-9_.-]{0,31}))?$`)
)

// container checks a server's container block.
func (v *validator) container(path string, c *Container) {
	switch {
	case c.Image == "":
		v.add(path+".image", "is required: the image to run, e.g. mcp/filesystem or ghcr.io/org/server:1.2")
	case len(c.Image) > 255 || !imagePattern.MatchString(c.Image):
		v.add(path+".image", "must be an image reference such as mcp/filesystem, mcp/filesystem:1.0 or registry.example.com/team/server@sha256:…"+v.got(path+".image", c.Image))
	}
	switch {
	case c.Network == "none", c.Network == "bridge":
	case c.Network == "host":
		v.add(path+".network", "host networking is not allowed: it gives the container the gateway's loopback and interfaces; use none, bridge or a named network")
	case strings.HasPrefix(c.Network, "container:"):
		v.add(path+".network", "sharing another container's network is not allowed; use none, bridge or a named network")
	case !networkPattern.MatchString(c.Network):
		v.add(path+".network", "must be none, bridge or the name of an existing Docker network"+v.got(path+".network", c.Network))
	}
	if !userPattern.MatchString(c.User) {
		v.add(path+".user", `must be uid[:gid] or name[:group], e.g. "65534:65534"`+v.got(path+".user", c.User))
	}
	v.sizeRange(path+".tmp_size", c.TmpSize, minContainerTmpSize, maxContainerTmpSize)
	v.sizeRange(path+".memory", c.Memory, minContainerMemory, maxContainerMemory)
	if c.CPUs < minContainerCPUs || c.CPUs > maxContainerCPUs {
		v.add(path+".cpus", fmt.Sprintf("must be between %g and %g", minContainerCPUs, maxContainerCPUs))
	}
	v.intRange(path+".pids_limit", c.PidsLimit, minContainerPidsLimit, maxContainerPidsLimit)
	v.intRange(path+".nofile", c.NoFile, minContainerNoFile, maxContainerNoFile)
	for i, capName := range c.CapAdd {
		p := fmt.Sprintf("%s.cap_add[%d]", path, i)
		name := strings.TrimPrefix(strings.ToUpper(capName), "CAP_")
		if !slices.Contains(allowedCapabilities, name) {
			v.add(p, "is not in the allowlist "+strings.Join(allowedCapabilities, ", ")+v.got(p, capName))
			continue
		}
		if name != capName {
			v.add(p, "must be written in upper case without CAP_, e.g. "+name)
		}
	}
	v.oneOf(path+".pull", c.Pull, PullNever, PullMissing)
}

// CheckMountSource reports why a host path must not be bind-mounted into a
// container, or nil. home is the gateway user's home directory
// ("" = unknown). Workspaces are checked with it as written and
// after resolving symlinks.
func CheckMountSource(src, home string) error {
	if !filepath.IsAbs(src) {
		return errors.New("must be an absolute host path")
	}
	clean := filepath.Clean(src)
	if strings.Contains(strings.ToLower(clean), "docker.sock") {
		return errors.New("must not expose a Docker socket: it is root on the host")
	}
	for _, p := range []string{"/", "/etc", "/proc", "/sys", "/dev", "/run", "/var/run", "/var/lib/docker", "/boot", "/root"} {
		if clean == p || (p != "/" && strings.HasPrefix(clean, p+"/")) {
			return fmt.Errorf("must not be %s or below it: a sensitive host path", p)
		}
	}
	if home != "" {
		if clean == filepath.Clean(home) {
			return errors.New("must not be the home directory: it holds credentials")
		}
		for _, d := range []string{".ssh", ".aws", ".docker", ".kube", ".gnupg"} {
			cred := filepath.Join(filepath.Clean(home), d)
			if clean == cred || strings.HasPrefix(clean, cred+"/") {
				return fmt.Errorf("must not be ~/%s or below it: it holds credentials", d)
			}
		}
	}
	if filepath.Base(clean) == ".ssh" || strings.Contains(clean, "/.ssh/") {
		return errors.New("must not be a .ssh directory: it holds credentials")
	}
	return nil
}

// canonical checks that value is valid and already in the form normalize
// gives it. Parse normalizes before validating, so the second check only
// fails for a Config changed by code.
func (v *validator) canonical(path, value string, normalize func(string) (string, error)) {
	n, err := normalize(value)
	switch {
	case err != nil:
		v.add(path, err.Error()+v.got(path, value))
	case n != value:
		v.add(path, "is not in canonical form: lower-case, without a trailing / or a default port")
	}
}

func (v *validator) oneOf(path, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		v.add(path, "must be one of "+strings.Join(allowed, ", ")+v.got(path, value))
	}
}

func (v *validator) intRange(path string, n, lo, hi int) {
	if n < lo || n > hi {
		v.add(path, fmt.Sprintf("must be between %d and %d", lo, hi))
	}
}

func (v *validator) sizeRange(path string, n, lo, hi int64) {
	if n < lo || n > hi {
		v.add(path, fmt.Sprintf("must be between %s and %s", formatSize(lo), formatSize(hi)))
	}
}

func (v *validator) durationRange(path string, d, lo, hi time.Duration) {
	switch {
	case d >= lo && d <= hi:
	case lo == positive:
		v.add(path, "must be greater than 0 and at most "+formatDuration(hi))
	default:
		v.add(path, fmt.Sprintf("must be between %s and %s", formatDuration(lo), formatDuration(hi)))
	}
}

// The checks below return errors whose text never contains the value:
// callers add the value themselves when it is safe to show.

// checkListen checks a listen address: host:port with a numeric port. An
// empty host listens on every interface; port 0 picks a free port.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("must be host:port, e.g. 127.0.0.1:8080 or :8080")
	}
	if !validPort(port, 0) {
		return errors.New("must end in a numeric port from 0 to 65535, e.g. 127.0.0.1:8080")
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err != nil && !validHostname(strings.ToLower(host)) {
		return errors.New("host must be an IP address or a host name, e.g. 127.0.0.1:8080")
	}
	return nil
}

// normalizeHost checks an allowed_hosts entry, a Host header value:
// a host name or IP address with an optional port, IPv6 in brackets.
// It returns the entry lower-cased.
func normalizeHost(s string) (string, error) {
	switch {
	case s == "":
		return "", errors.New("must not be empty")
	case strings.Contains(s, "://"):
		return "", errors.New("must be a host name or host:port, not a URL: drop the scheme")
	case strings.Contains(s, "*"):
		return "", errors.New("wildcards are not supported: list each host name")
	case strings.ContainsAny(s, "/?#@ "):
		return "", errors.New("must be a host name or host:port, without a path, user or spaces")
	}
	s = strings.ToLower(s)
	var port string
	var hasPort bool
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", errors.New(`IPv6 address is missing its closing "]"`)
		}
		if !validIPv6(s[1:end]) {
			return "", errors.New("must be a valid IPv6 address in brackets, e.g. [::1]:8080")
		}
		switch rest := s[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			port, hasPort = rest[1:], true
		default:
			return "", errors.New(`IPv6 address in brackets may only be followed by ":port"`)
		}
	} else {
		if strings.Count(s, ":") > 1 {
			return "", errors.New("IPv6 addresses must be in brackets, e.g. [::1]")
		}
		var host string
		host, port, hasPort = strings.Cut(s, ":")
		if !validHostname(host) {
			return "", errors.New("must be a host name or IP address, optionally with :port, e.g. mcp.example.com")
		}
	}
	if hasPort && !validPort(port, 1) {
		return "", errors.New("port must be a number from 1 to 65535")
	}
	return s, nil
}

// normalizeOrigin checks an allowed_origins entry, an Origin header value
// (RFC 6454): http(s)://host[:port]. It returns it lower-cased, without a
// trailing "/" and without the scheme's default port, which is how browsers
// serialize an origin.
func normalizeOrigin(s string) (string, error) {
	switch {
	case s == "null":
		return "", errors.New(`"null" cannot be allowed: it is the origin of sandboxed frames and local files, which any website can produce`)
	case s == "*":
		return "", errors.New(`"*" cannot be allowed: it would let every website call the gateway; list origins explicitly`)
	case strings.Contains(s, "*"):
		return "", errors.New("wildcards are not supported: list each origin")
	}
	// Only http and https: the front door matches web origins only, so an
	// entry with another scheme would never match.
	return normalizeBaseURL(s, "must be an origin, http(s)://host[:port], e.g. https://claude.ai", []string{"http", "https"})
}

// normalizePublicURL checks public_url: an absolute http or https URL
// without path, query or fragment. It returns it lower-cased without a
// trailing "/" or a default port.
func normalizePublicURL(s string) (string, error) {
	return normalizeBaseURL(s, "must be an absolute URL, http(s)://host[:port], e.g. https://mcp.example.com", []string{"http", "https"})
}

// normalizeBaseURL checks scheme://host[:port] with an optional trailing
// "/", the scheme one of schemes.
func normalizeBaseURL(s, syntax string, schemes []string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" || u.Host == "" {
		return "", errors.New(syntax)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case !slices.Contains(schemes, scheme):
		return "", errors.New("scheme must be " + strings.Join(schemes, " or "))
	case u.User != nil:
		return "", errors.New("must not contain a user name or password")
	case u.Path != "" && u.Path != "/", u.RawPath != "":
		return "", errors.New("must not have a path: " + syntax)
	case u.RawQuery != "" || u.ForceQuery || strings.Contains(s, "#"):
		return "", errors.New("must not have a query or fragment: " + syntax)
	case strings.HasSuffix(u.Host, ":"):
		return "", errors.New(`has an empty port after ":"`)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		if !validIPv6(host) {
			return "", errors.New("has an invalid IPv6 address")
		}
		host = "[" + host + "]"
	} else if !validHostname(host) {
		return "", errors.New("has an invalid host name: " + syntax)
	}
	if port != "" && !validPort(port, 1) {
		return "", errors.New("port must be a number from 1 to 65535")
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// validHostname reports whether s, lower-case, is a DNS name or an IPv4
// address: dot-separated labels of a-z, 0-9, - and _, each 1 to 63 bytes,
// not starting or ending with -.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validIPv6 reports whether s is an IPv6 address without a zone, in the
// form a Host or Origin header could carry it.
func validIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6() && a.Zone() == ""
}

// validPort reports whether s is a decimal port number from lo to 65535.
func validPort(s string, lo int) bool {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return false
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= lo && n <= 65535
}

// gotSuffix returns " (got "VALUE")" for a value that is safe to show, and
// "" otherwise. Long values are cut and control characters escaped, since
// messages end up in terminals and logs.
func gotSuffix(show bool, value string) string {
	if !show {
		return ""
	}
	return " (got " + strconv.Quote(clip.String(value, 64)) + ")"
}
