package config

import (
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Every default and every bound of the configuration lives in this file and
// nowhere else. docs/config.md mirrors it: change both.

// Defaults for keys the file does not set.
const (
	defaultListen    = "127.0.0.1:8080"
	defaultLogLevel  = "info"
	defaultLogFormat = "json"
	defaultReload    = ReloadSignal

	defaultMaxProcesses    = 32
	defaultMaxBodyBytes    = 4 << 20  // 4 MiB
	defaultMaxMessageBytes = 16 << 20 // 16 MiB
	defaultShutdownTimeout = 30 * time.Second
	defaultSSEKeepAlive    = 15 * time.Second
	defaultHoldMessages    = 60 * time.Second
	defaultMaxHeldMessages = 256
	defaultReplayEvents    = 256
	defaultReplayBytes     = 1 << 20
	defaultReplayAge       = 5 * time.Minute
	defaultSSERetry        = time.Second
	defaultReadTimeout     = 30 * time.Second
	defaultMaxSessions     = 4096

	defaultRuntime            = RuntimeNative
	defaultMode               = ModeLauncher
	defaultStartupTimeout     = 30 * time.Second
	defaultRequestTimeout     = 60 * time.Second
	defaultIdleTimeout        = 15 * time.Minute
	defaultMaxLifetime        = 24 * time.Hour
	defaultKillGrace          = 5 * time.Second
	defaultReclaimIdle        = 60 * time.Second
	defaultReclaimUnattended  = 2 * time.Second
	defaultMaxConcurrent      = 2
	defaultServerMaxProcesses = 4 // launcher: one process per session
	defaultDaemonMaxProcesses = 1 // daemon: the pool size
	defaultMinProcesses       = 0 // daemon: start on first use
	defaultMaxInflightPerProc = 16
	defaultQueueTimeout       = 0 // fail fast

	// Authentication and rate limits.
	defaultJWKSPath  = "/cdn-cgi/access/certs" // Cloudflare Access; appended to issuer
	defaultClockSkew = 60 * time.Second
	defaultRatePer   = "identity"

	// The OAuth authorization server (auth.oauth).
	defaultAdvertise          = true
	defaultAccessTokenTTL     = 15 * time.Minute
	defaultRefreshTokenTTL    = 720 * time.Hour
	defaultCodeTTL            = time.Minute
	defaultRegistration       = RegistrationOpen
	defaultRegistrationRPS    = 0.1 // one registration per 10 s per address…
	defaultRegistrationBurst  = 10  // …after a burst of ten
	defaultRegistrationPer    = "ip"
	defaultMaxClients         = 1000
	defaultClientMetadataDocs = true
	defaultGitHubURL          = "https://github.com"
	defaultGitHubAPIURL       = "https://api.github.com"
	defaultStateSubdir        = "mcpgw" // under $XDG_STATE_HOME or ~/.local/state

	defaultContainerNetwork   = "none"
	defaultContainerReadOnly  = true
	defaultContainerTmpSize   = 64 << 20 // 64 MiB
	defaultContainerUser      = "65534:65534"
	defaultContainerMemory    = 512 << 20 // 512 MiB
	defaultContainerCPUs      = 1.0
	defaultContainerPidsLimit = 128
	defaultContainerNoFile    = 1024
	defaultContainerPull      = PullNever
)

// Defaults that are lists: fresh copies each time, since a Config is
// mutable.
func defaultJWTHeaders() []string    { return []string{"Cf-Access-Jwt-Assertion", "Authorization"} }
func defaultJWTAlgorithms() []string { return []string{"RS256", "ES256"} }

// defaultRedirectHosts are the hosts whose redirect URIs clients may
// register: Claude (web, Desktop, mobile), ChatGPT, and this machine for
// native clients (RFC 8252, section 7.3).
func defaultRedirectHosts() []string {
	return []string{"claude.ai", "claude.com", "chatgpt.com", "localhost", "127.0.0.1", "::1"}
}
func defaultOIDCScopes() []string { return []string{"email", "profile"} }

// defaultStateDir is the per-user state directory: $XDG_STATE_HOME/mcpgw,
// else ~/.local/state/mcpgw (XDG Base Directory Specification); "" when
// neither variable is set.
func defaultStateDir(lookupEnv func(string) (string, bool)) string {
	if v, ok := lookupEnv("XDG_STATE_HOME"); ok && strings.HasPrefix(v, "/") {
		return filepath.Join(v, defaultStateSubdir)
	}
	if v, ok := lookupEnv("HOME"); ok && strings.HasPrefix(v, "/") {
		return filepath.Join(v, ".local", "state", defaultStateSubdir)
	}
	return ""
}

// Bounds, inclusive. A lower bound of positive means "greater than zero": a
// zero timeout or limit would make the gateway refuse all work.
const (
	positive = time.Duration(1)

	minMaxProcesses, maxMaxProcesses       = 1, 10000
	minMaxBodyBytes, maxMaxBodyBytes       = 1 << 10, 1 << 30  // 1 KiB .. 1 GiB
	minMaxMessageBytes, maxMaxMessageBytes = 64 << 10, 1 << 30 // 64 KiB .. 1 GiB
	minShutdownTimeout, maxShutdownTimeout = positive, time.Hour
	minSSEKeepAlive, maxSSEKeepAlive       = 100 * time.Millisecond, 10 * time.Minute
	minHoldMessages, maxHoldMessages       = positive, time.Hour
	minMaxHeldMessages, maxMaxHeldMessages = 1, 10000
	minReplayEvents, maxReplayEvents       = 0, 100000
	minReplayBytes, maxReplayBytes         = 0, 256 << 20
	minReplayAge, maxReplayAge             = time.Second, 24 * time.Hour
	minSSERetry, maxSSERetry               = 100 * time.Millisecond, 10 * time.Minute
	minReadTimeout, maxReadTimeout         = positive, time.Hour
	minMaxSessions, maxMaxSessions         = 1, 1000000

	minStartupTimeout, maxStartupTimeout         = positive, time.Hour
	minRequestTimeout, maxRequestTimeout         = positive, 24 * time.Hour
	minIdleTimeout, maxIdleTimeout               = positive, 7 * 24 * time.Hour
	minMaxLifetime, maxMaxLifetime               = positive, 30 * 24 * time.Hour
	minKillGrace, maxKillGrace                   = positive, 5 * time.Minute
	minReclaimIdle, maxReclaimIdle               = 0, 24 * time.Hour
	minReclaimUnattended, maxReclaimUnattended   = 0, 24 * time.Hour
	minMaxConcurrent, maxMaxConcurrent           = 1, 10000
	minServerMaxProcesses, maxServerMaxProcesses = 1, 10000
	minQueueTimeout, maxQueueTimeout             = 0, 10 * time.Minute
	minMinProcesses, maxMinProcesses             = 0, 10000
	minMaxInflightPerProc, maxMaxInflightPerProc = 1, 10000

	minClockSkew, maxClockSkew = 0, 5 * time.Minute
	// auth.oauth lifetimes and bounds.
	minAccessTokenTTL, maxAccessTokenTTL   = time.Minute, 24 * time.Hour
	minRefreshTokenTTL, maxRefreshTokenTTL = time.Hour, 8760 * time.Hour
	minCodeTTL, maxCodeTTL                 = 10 * time.Second, 10 * time.Minute
	minMaxClients, maxMaxClients           = 1, 1000000
	maxOAuthUsers, maxRedirectHosts        = 1000, 100
	maxScopes                              = 32
	// A bearer token from value_env must have at least this many bytes;
	// mcpgw token prints 43.
	minTokenBytes = 32
	// Token names and JWT audiences are short words; header names too.
	maxTokens, maxAudiences = 1000, 100
	// Rate limits: refill per second and bucket size.
	minRateRPS, maxRateRPS     = 0.001, 1e6
	minRateBurst, maxRateBurst = 1, 1000000

	minContainerTmpSize, maxContainerTmpSize     = 1 << 20, 16 << 30 // 1 MiB .. 16 GiB
	minContainerMemory, maxContainerMemory       = 16 << 20, 1 << 40 // 16 MiB .. 1 TiB
	minContainerCPUs, maxContainerCPUs           = 0.01, 1024.0      // CPUs
	minContainerPidsLimit, maxContainerPidsLimit = 8, 1 << 22        // processes and threads
	minContainerNoFile, maxContainerNoFile       = 16, 1 << 20       // open files

	// maxFileBytes bounds what Load reads; real configs are a few KiB.
	maxFileBytes = 1 << 20
)

// newConfig returns a Config holding the default of every gateway-wide key
// and no servers.
func newConfig() *Config {
	return &Config{
		Listen: defaultListen,
		Reload: defaultReload,
		Log: Log{
			Level:  defaultLogLevel,
			Format: defaultLogFormat,
		},
		Limits: Limits{
			MaxProcesses:    defaultMaxProcesses,
			MaxBodyBytes:    defaultMaxBodyBytes,
			MaxMessageBytes: defaultMaxMessageBytes,
			ShutdownTimeout: defaultShutdownTimeout,
			SSEKeepAlive:    defaultSSEKeepAlive,
			HoldMessages:    defaultHoldMessages,
			MaxHeldMessages: defaultMaxHeldMessages,
			ReplayEvents:    defaultReplayEvents,
			ReplayBytes:     defaultReplayBytes,
			ReplayAge:       defaultReplayAge,
			SSERetry:        defaultSSERetry,
			ReadTimeout:     defaultReadTimeout,
			MaxSessions:     defaultMaxSessions,
		},
		Servers: map[string]*Server{},
		Auth:    Auth{Mode: AuthLocal, Advertise: defaultAdvertise},
		Tracing: Tracing{SampleRatio: -1},
		Status:  Status{RecentErrors: defaultRecentErrors},
	}
}

// defaultRecentErrors is status.recent_errors; maxRecentErrors bounds it.
const (
	defaultRecentErrors = 50
	maxRecentErrors     = 1000
)

// newOAuth returns auth.oauth with the defaults of the keys it may leave
// out.
func newOAuth() *OAuth {
	return &OAuth{
		AccessTokenTTL:          defaultAccessTokenTTL,
		RefreshTokenTTL:         defaultRefreshTokenTTL,
		CodeTTL:                 defaultCodeTTL,
		Registration:            defaultRegistration,
		RegistrationRate:        &Rate{RequestsPerSecond: defaultRegistrationRPS, Burst: defaultRegistrationBurst, Per: defaultRegistrationPer},
		MaxClients:              defaultMaxClients,
		RedirectHosts:           defaultRedirectHosts(),
		ClientMetadataDocuments: defaultClientMetadataDocs,
	}
}

// newJWT returns auth.jwt with the defaults of the keys it may leave out.
// jwks_url defaults to the issuer's Cloudflare Access certs URL, filled in
// once the issuer is known.
func newJWT() *JWT {
	return &JWT{
		Headers:    defaultJWTHeaders(),
		Algorithms: defaultJWTAlgorithms(),
		ClockSkew:  defaultClockSkew,
	}
}

// newServer returns the settings of a server named name that sets nothing
// but its (still missing) command.
func newServer(name string) *Server {
	return &Server{
		Name:    name,
		Runtime: defaultRuntime,
		Mode:    defaultMode,
		Timeouts: Timeouts{
			Startup:           defaultStartupTimeout,
			Request:           defaultRequestTimeout,
			Idle:              defaultIdleTimeout,
			MaxLifetime:       defaultMaxLifetime,
			KillGrace:         defaultKillGrace,
			ReclaimIdle:       defaultReclaimIdle,
			ReclaimUnattended: defaultReclaimUnattended,
		},
		MaxConcurrent: defaultMaxConcurrent,
		MaxProcesses:  0, // by mode, in applyModeDefaults
		QueueTimeout:  defaultQueueTimeout,
		Isolation:     IsolationSession,

		MinProcesses:          defaultMinProcesses,
		MaxInflightPerProcess: defaultMaxInflightPerProc,
		PinTools:              PinOff,
	}
}

// applyModeDefaults fills the defaults that depend on the mode: a
// launcher's max_processes bounds its sessions, a daemon's is its pool size.
func applyModeDefaults(s *Server) {
	if s.MaxProcesses == 0 {
		s.MaxProcesses = defaultServerMaxProcesses
		if s.Mode == ModeDaemon {
			s.MaxProcesses = defaultDaemonMaxProcesses
		}
	}
}

// defaultMountMode is a workspace mount's mode when none is given: the
// least access.
const defaultMountMode = "ro"

// applyWorkspaceDefaults fills the defaults that depend on other keys: a
// container mount's target is /workspace/NAME; a native server with
// workspaces is confined with Landlock unless it says otherwise, one
// without is not; a container has no native sandbox.
func applyWorkspaceDefaults(s *Server) {
	for i := range s.Workspaces {
		m := &s.Workspaces[i]
		if s.Runtime == RuntimeContainer && m.Target == "" && m.Name != "" {
			m.Target = "/workspace/" + m.Name
		}
	}
	if s.Sandbox == "" {
		switch {
		case s.Runtime == RuntimeContainer:
			s.Sandbox = SandboxNone
		default:
			// Every native server is confined unless its configuration
			// opts out with sandbox: none.
			s.Sandbox = SandboxLandlock
		}
	}
}

// newContainer returns the container block of a server that sets nothing in
// it but (possibly) its image.
func newContainer() *Container {
	return &Container{
		Network:   defaultContainerNetwork,
		ReadOnly:  defaultContainerReadOnly,
		TmpSize:   defaultContainerTmpSize,
		User:      defaultContainerUser,
		Memory:    defaultContainerMemory,
		CPUs:      defaultContainerCPUs,
		PidsLimit: defaultContainerPidsLimit,
		NoFile:    defaultContainerNoFile,
		Pull:      defaultContainerPull,
	}
}

// allowedCapabilities are the only capabilities container.cap_add may add
// back after CapDrop ALL: an explicit allowlist of the harmless part of
// Docker's default set. The ones that widen the attack surface on the host
// or the network (SYS_ADMIN, SYS_PTRACE, NET_ADMIN, NET_RAW, SYS_MODULE,
// MKNOD, AUDIT_WRITE, …) can never be added.
var allowedCapabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE",
	"SETFCAP", "SETGID", "SETPCAP", "SETUID",
}

// AllowedCapabilities returns the capabilities container.cap_add may add.
func AllowedCapabilities() []string { return slices.Clone(allowedCapabilities) }
