package config

import (
	"net/netip"
	"time"
)

// Config is a validated gateway configuration. Every field holds its
// effective value: defaults are applied by Load/Parse, so consumers never
// need to know what a zero value means. Code that changes a field (such as
// `serve --listen`) calls Validate afterwards.
type Config struct {
	// Listen is the TCP address of the HTTP listener (host:port).
	Listen string
	// PublicURL is how clients reach the gateway (http(s)://host[:port],
	// lower-cased, no path or trailing "/", no default port), or "" when
	// unset.
	PublicURL string
	// AllowedHosts are Host header values accepted besides loopback names.
	// Lower-cased; an entry without a port matches any port.
	AllowedHosts []string
	// AllowedOrigins are Origin header values accepted besides loopback
	// origins, lower-cased, in http(s)://host[:port] form without a
	// default port (as browsers send them).
	AllowedOrigins []string
	// Log selects the gateway's own log output.
	Log Log
	// Limits are the gateway-wide bounds.
	Limits Limits
	// Servers maps a server name (matching ServerNamePattern) to its settings.
	Servers map[string]*Server
	// Auth says who may call the gateway.
	Auth Auth
	// TrustedProxies are the peers (CIDR prefixes, masked) whose
	// CF-Connecting-IP and X-Forwarded-For headers name the client.
	TrustedProxies []netip.Prefix
	// Rate limits client requests across all servers; nil: no limit.
	Rate *Rate
	// SessionRate limits new sessions (initialize requests) across all
	// servers; nil: no limit beyond Rate.
	SessionRate *Rate
	// Workspaces maps a workspace name to its host directory, as written.
	// Servers mount them through Server.Workspaces, which hold the
	// resolved paths.
	Workspaces map[string]string
	// StateDir is the directory of persistent state (the OAuth
	// authorization server's clients, grants and keys): state_dir, else
	// the per-user default (see defaultStateDir); "" when neither is
	// known.
	StateDir string
	// Reload is what makes a running gateway re-read this file:
	// ReloadSignal (SIGHUP or `mcpgw reload`) or ReloadWatch (those, and
	// any change to the file).
	Reload string
	// Metrics, Tracing and Status are how the gateway shows what it does
	// (types_observe.go).
	Metrics Metrics
	Tracing Tracing
	Status  Status
	// Cluster makes this gateway one of several replicas; nil for a
	// single gateway.
	Cluster *Cluster
}

// Reload triggers (Config.Reload).
const (
	// ReloadSignal reloads on SIGHUP and `mcpgw reload` only.
	ReloadSignal = "signal"
	// ReloadWatch also reloads when the file's content changes.
	ReloadWatch = "watch"
)

// Auth modes (Auth.Mode).
const (
	// AuthLocal is the mode without an auth section: no credentials are
	// checked, so only loopback listeners and Host headers are allowed.
	AuthLocal = "local"
	// AuthNone is the explicit opt-out (auth: {mode: none}): no
	// credentials are checked, on any listener and Host.
	AuthNone = "none"
	// AuthRequired: every request to /mcp/ needs a valid bearer token or
	// JWT. It is implied by tokens or jwt.
	AuthRequired = "required"
)

// Auth is the authentication of clients.
type Auth struct {
	// Mode is AuthLocal, AuthNone or AuthRequired.
	Mode string
	// Tokens are the static bearer tokens; only with AuthRequired.
	Tokens []Token
	// JWT verifies OIDC / Cloudflare Access JWTs; nil when not configured.
	JWT *JWT
	// Advertise puts OAuth discovery hints (resource_metadata in 401
	// challenges, the protected resource metadata) on the wire; false
	// for deployments whose clients all send tokens.
	Advertise bool
	// OAuth makes the gateway its own OAuth 2.1 authorization server;
	// nil when not configured.
	OAuth *OAuth
}

// Token is one static bearer token. Its identity is Name.
type Token struct {
	Name string
	// SHA256 is the token's SHA-256 digest (32 bytes), from sha256 or,
	// for value_env, computed from the variable's value at load time so
	// that the token itself is not kept in the Config.
	SHA256 []byte
}

// JWT configures the verification of JSON Web Tokens (OIDC ID tokens,
// Cloudflare Access application tokens).
type JWT struct {
	Issuer     string   // exact iss claim; https (http only for loopback)
	Audiences  []string // a token's aud must contain one of these
	JWKSURL    string   // default Issuer + "/cdn-cgi/access/certs"
	Headers    []string // canonical header names, tried in order
	Algorithms []string // RS256 and/or ES256 (default both)
	ClockSkew  time.Duration
}

// Rate is a token bucket: RequestsPerSecond refill, Burst capacity, one
// bucket per Per key (global, identity or ip).
type Rate struct {
	RequestsPerSecond float64
	Burst             int
	Per               string
}

// Log selects the gateway's own log output.
type Log struct {
	Level  string // debug | info | warn | error (default info)
	Format string // json | text (default json)
}

// Limits are gateway-wide bounds.
type Limits struct {
	MaxProcesses    int           // live processes, all servers together (default 32)
	MaxBodyBytes    int64         // request body bound (default 4 MiB)
	MaxMessageBytes int64         // one line from a backend's stdout (default 16 MiB)
	ShutdownTimeout time.Duration // drain bound on SIGTERM (default 30s)
	SSEKeepAlive    time.Duration // comment keep-alive period on open SSE streams (default 15s)
	HoldMessages    time.Duration // how long server messages wait for a GET stream (default 60s)
	MaxHeldMessages int           // messages held per session without a GET stream (default 256)
	// Resumable SSE streams of sessions (session/resume.go).
	ReplayEvents         int           // events kept per session for Last-Event-ID (default 256)
	ReplayBytes          int64         // their bytes per session (default 1 MiB)
	ReplayAge            time.Duration // how long they and a cut POST stream are kept (default 5m)
	SSERetry             time.Duration // the retry field of POST streams' priming events (default 1s)
	SSECloseAfterPriming bool          // close a POST stream after its priming event; the response comes on the resuming GET (default false)
	ReadTimeout          time.Duration // reading a request's headers and body (default 30s)
	MaxSessions          int           // live client sessions, all servers together (default 4096)
}

// Server is one configured stdio MCP server.
type Server struct {
	// Name is the server's key under servers:, repeated here for logs.
	Name          string
	Runtime       Runtime           // RuntimeNative (default) | RuntimeContainer
	Mode          Mode              // ModeLauncher (default) | ModeDaemon
	Command       []string          // argv; never run through a shell
	Env           map[string]string // expanded values; secrets: never log them
	Workdir       string            // "" = the gateway's working directory
	Timeouts      Timeouts
	MaxConcurrent int           // requests in flight to this server (default 2)
	MaxProcesses  int           // live processes of this server (default 4 in launcher mode, 1 in daemon mode)
	QueueTimeout  time.Duration // wait for a slot before 429 (default 0 = fail fast)
	// Isolation is the unit a launcher process serves for 2026-07-28
	// requests, which have no session: IsolationSession (default) keeps one
	// identity's processes warm for its later requests; IsolationRequest
	// starts a process per request.
	Isolation string

	// Daemon mode only.
	MinProcesses          int // warm processes started with the gateway and kept (default 0)
	MaxInflightPerProcess int // requests in flight on one pooled process (default 16)
	// Allow lists the identities that may use the server: exact
	// identities or token names, or "*@domain" patterns. Empty: every
	// authenticated identity.
	Allow []string
	// Rate and SessionRate limit this server's requests and new sessions
	// (nil: no limit besides the gateway-wide ones).
	Rate        *Rate
	SessionRate *Rate

	// Container is set exactly when Runtime is "container".
	Container *Container

	// Workspaces are the host directories the server may use,
	// in file order; the first is its working directory.
	Workspaces []Mount
	// Sandbox is how a native server is confined: SandboxLandlock,
	// SandboxBestEffort or SandboxNone. Its default is landlock for a
	// server with workspaces and none for one without. Containers are
	// confined by their mounts and have SandboxNone.
	Sandbox string
	// ReadPaths are extra absolute paths a sandboxed native server may
	// read (and execute from), resolved to real paths.
	ReadPaths []string

	// Tools, Prompts and Resources filter what the server exposes at all
	// (resources by URI, templates by URI template); empty: everything.
	Tools, Prompts, Resources Exposure
	// PinTools is the tool pinning mode: PinOff (default), PinWarn or
	// PinEnforce. Pins persist under Config.StateDir.
	PinTools string
	// Policy are the server's rules, in order: the first whose
	// expression is true decides; when none is, the request is allowed.
	Policy []Rule

	// Aggregate is set when the entry serves other servers instead of a
	// command of its own (types_aggregate.go); nil for a plain server.
	Aggregate *Aggregate
}

// Tool pinning modes (Server.PinTools).
const (
	PinOff     = "off"
	PinWarn    = "warn"
	PinEnforce = "enforce"
)

// Rule is one policy rule: a CEL expression and what it decides.
type Rule struct {
	Allow bool   // true for {allow: EXPR}, false for {deny: EXPR}
	Expr  string // a CEL expression of type bool (docs/config.md)
}

// Exposure is a server's allow/deny globs for one kind of item: an item
// is exposed when its name matches an Allow glob (or Allow is empty) and
// no Deny glob. In a glob "*" matches any characters, "/" included, and
// "?" one character.
type Exposure struct {
	Allow, Deny []string
}

// Runtime is how a server's processes run (Server.Runtime).
type Runtime string

// Runtimes.
const (
	// RuntimeNative runs a server as a process of its own process group,
	// confined by Landlock unless it opts out.
	RuntimeNative Runtime = "native"
	// RuntimeContainer runs a server in a hardened container created
	// through the Docker Engine API.
	RuntimeContainer Runtime = "container"
)

// Mode is how a server's processes are shared (Server.Mode).
type Mode string

// Modes.
const (
	// ModeLauncher gives each client session a process of its own.
	ModeLauncher Mode = "launcher"
	// ModeDaemon keeps a pool of processes shared by every session.
	ModeDaemon Mode = "daemon"
)

// Isolation of 2026-07-28 requests in launcher mode (Server.Isolation).
const (
	// IsolationSession: an identity's requests reuse its own processes;
	// no two identities share one.
	IsolationSession = "session"
	// IsolationRequest: each request gets a process of its own.
	IsolationRequest = "request"
)

// Image pull policies (Container.Pull).
const (
	PullNever   = "never"
	PullMissing = "missing"
)

// Sandbox modes (Server.Sandbox).
const (
	// SandboxLandlock confines a native server with Landlock and refuses
	// to start it where the kernel lacks Landlock.
	SandboxLandlock = "landlock"
	// SandboxBestEffort is landlock where the kernel has it, and an
	// unconfined server (with a warning) where it does not.
	SandboxBestEffort = "best_effort"
	// SandboxNone runs the server unconfined; not allowed with workspaces.
	SandboxNone = "none"
)

// Mount is one workspace that a server uses.
type Mount struct {
	Name    string // key of Config.Workspaces
	Subpath string // relative path inside the workspace, "" for all of it
	// Target is where a container sees the directory (default
	// /workspace/NAME); "" for native servers, which see HostPath.
	Target string
	Mode   string // ro (default) | rw
	// HostPath is the real path of the workspace joined with Subpath,
	// all symlinks resolved at load time. It is what is mounted or
	// allowed, and it is checked again at every start (VerifyMount).
	HostPath string
}

// ReadOnly reports whether the mount is read-only.
func (m Mount) ReadOnly() bool { return m.Mode != "rw" }

// Container is the per-server container block. The
// hardening that is not configurable (no privileged mode, CapDrop ALL,
// no-new-privileges, default seccomp, an init process, private PID, IPC
// and UTS namespaces, no device or Docker socket mounts) is applied by
// package runtime and has no field here.
type Container struct {
	Image     string   // image reference; required
	Network   string   // none (default) | bridge | name of an existing network
	ReadOnly  bool     // read-only root filesystem (default true)
	TmpSize   int64    // size of the noexec,nosuid tmpfs at /tmp (default 64 MiB)
	User      string   // uid[:gid] or name[:group] (default 65534:65534)
	Memory    int64    // memory limit in bytes; swap is limited to the same (default 512 MiB)
	CPUs      float64  // CPU quota in CPUs (default 1)
	PidsLimit int      // processes and threads (default 128)
	NoFile    int      // RLIMIT_NOFILE soft and hard (default 1024)
	CapAdd    []string // capabilities added back, from AllowedCapabilities; upper case without CAP_
	Pull      string   // never (default) | missing
}

// Timeouts implement the core rule: no process without a deadline.
type Timeouts struct {
	Startup     time.Duration // spawn until the initialize answer (default 30s)
	Request     time.Duration // one request (default 60s)
	Idle        time.Duration // session without traffic is stopped (default 15m)
	MaxLifetime time.Duration // process age bound; drained then stopped (default 24h)
	KillGrace   time.Duration // each step of the stop sequence (default 5s)
	ReclaimIdle time.Duration // minimum idleness before a session may be reclaimed at the process cap (default 60s; 0 = any idle session)
	// ReclaimUnattended is the shorter idleness after which a session with
	// no open stream and nothing in flight may be reclaimed (default 2s):
	// the session of a client that left without DELETE.
	ReclaimUnattended time.Duration
}
