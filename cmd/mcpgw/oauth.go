package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/oauth"
	"github.com/mcpgw/mcpgw/internal/oauth/redisstore"
	"github.com/mcpgw/mcpgw/internal/oauth/sqlitestore"
	"github.com/mcpgw/mcpgw/internal/redisconn"
)

const oauthUsage = `Subcommands:
  mcpgw oauth clients    [--config FILE | --state-dir DIR]   list registered clients
  mcpgw oauth grants     [--config FILE | --state-dir DIR]   list grants (consents) and their state
  mcpgw oauth revoke     [--config FILE | --state-dir DIR] GRANT_ID...
  mcpgw oauth revoke     [--config FILE | --state-dir DIR] --client CLIENT_ID   delete a client, revoke its grants
  mcpgw oauth revoke     [--config FILE | --state-dir DIR] --user EMAIL         revoke every grant of a user
  mcpgw oauth rotate-key [--config FILE | --state-dir DIR]   sign with a new key; the old one verifies until its tokens expire

The state directory may be in use by a running gateway. A revocation refuses
refresh at once; the gateway refuses the grant's access tokens within 30 s.
With --config naming a config with cluster.redis, the state is the one in
Redis that every replica shares (the command needs the same environment:
the Redis URL and the cluster key).
`

// oauthStore is the state of auth.oauth, with its Close.
type oauthStore interface {
	oauth.Store
	Close() error
}

// openOAuthStore opens the state of auth.oauth: in Redis when cfg has
// cluster.redis (every replica shares it), else the SQLite file under
// stateDir. where says which, for messages.
func openOAuthStore(ctx context.Context, cfg *config.Config, stateDir string) (st oauthStore, where string, err error) {
	if cfg != nil && cfg.Cluster != nil && cfg.Cluster.Redis != nil {
		conn, err := redisconn.New(cfg.Cluster.Redis)
		if err != nil {
			return nil, "", err
		}
		rs, err := redisstore.New(conn, cfg.Cluster.Key)
		if err != nil {
			_ = conn.Close()
			return nil, "", err
		}
		return rs, "Redis (cluster.redis, " + cfg.Cluster.Redis.URLEnv + ")", nil
	}
	ss, err := sqlitestore.Open(ctx, stateDir)
	if err != nil {
		return nil, "", err
	}
	return ss, stateDir, nil
}

// startOAuth opens the state of auth.oauth and builds the authorization
// server, for serve. The caller closes both after the gateway stopped.
func startOAuth(ctx context.Context, cfg *config.Config, log *slog.Logger, clientIP func(*http.Request) string) (*oauth.Server, oauthStore, error) {
	st, where, err := openOAuthStore(ctx, cfg, cfg.StateDir)
	if err != nil {
		return nil, nil, err
	}
	srv, err := oauth.New(ctx, cfg, st, &oauth.Options{Logger: log, ClientIP: clientIP})
	if err != nil {
		_ = st.Close()
		return nil, nil, fmt.Errorf("starting the authorization server: %w", err)
	}
	o := cfg.Auth.OAuth
	// What widens exposure is said at start.
	provider := "github"
	if o.Login.OIDC != nil {
		provider = o.Login.OIDC.Issuer
	}
	log.Info("OAuth authorization server enabled", "issuer", cfg.PublicURL, "login", provider,
		"users", strings.Join(o.Users, ","), "state", where)
	if o.Registration == config.RegistrationOpen {
		log.Warn("OAuth dynamic client registration is open: any client may register (auth.oauth.registration); only listed users can log in",
			"max_clients", o.MaxClients)
	}
	log.Info("OAuth redirect hosts accepted", "redirect_hosts", strings.Join(o.RedirectHosts, ","))
	if o.UnsafeMetadataPrivateAddresses {
		log.Warn("auth.oauth.unsafe_metadata_private_addresses is set: client metadata documents may be fetched from private and loopback addresses; for tests only")
	}
	return srv, st, nil
}

var oauthCommand = &command{
	name:     "oauth",
	synopsis: "clients|grants|revoke|rotate-key [--config FILE | --state-dir DIR]",
	summary:  "inspect and revoke the state of auth.oauth",
	about:    "Reads and changes the authorization server's state under state_dir.\n\n" + oauthUsage,
	maxArgs:  1 << 16,
	define: func(_ *flag.FlagSet, c *cli) action {
		return func(ctx context.Context, args []string) error {
			return runOAuth(ctx, args, c.stdout, c.stderr, c.lookupEnv)
		}
	},
}

// stateDirOf is the state directory a command that reads state_dir
// (oauth, tools) works on: --state-dir, or the state_dir of --config, or
// the per-user default; and the config of --config (else nil), whose
// cluster.redis, when set, holds the state instead.
func stateDirOf(cmd, cfgPath, stateDir string, lookupEnv func(string) (string, bool)) (string, *config.Config, error) {
	var cfg *config.Config
	switch {
	case stateDir != "" && cfgPath != "":
		return "", nil, usageError{fmt.Errorf("%s: give --config or --state-dir, not both", cmd)}
	case stateDir != "":
		return stateDir, nil, nil
	case cfgPath != "":
		var err error
		cfg, err = loadConfig(cfgPath, lookupEnv)
		if err != nil {
			return "", nil, usageError{fmt.Errorf("loading config: %w", err)}
		}
		stateDir = cfg.StateDir
	default:
		if c, err := config.Parse([]byte("auth: {mode: none}\nservers: {x: {command: [x]}}"), lookupEnv); err == nil {
			stateDir = c.StateDir
		}
	}
	if stateDir == "" {
		return "", nil, usageError{fmt.Errorf("%s: no state directory: give --state-dir or --config", cmd)}
	}
	return stateDir, cfg, nil
}

func runOAuth(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, oauthUsage)
		return usageError{errors.New("oauth: no subcommand given")}
	}
	sub := args[0]
	fs := flag.NewFlagSet("oauth "+sub, flag.ContinueOnError)
	// The error is returned and reported once by main, not printed here.
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "config file whose state_dir to use")
	stateDir := fs.String("state-dir", "", "state directory (default: the config's state_dir, else the per-user default)")
	client := fs.String("client", "", "revoke: delete this client and revoke its grants")
	user := fs.String("user", "", "revoke: revoke every grant of this user")
	switch sub {
	case "clients", "grants", "revoke", "rotate-key":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, oauthUsage)
		return nil
	default:
		fmt.Fprint(stderr, oauthUsage)
		return usageError{fmt.Errorf("oauth: unknown subcommand %q", sub)}
	}
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err}
	}
	if sub != "revoke" && (fs.NArg() > 0 || *client != "" || *user != "") {
		return usageError{fmt.Errorf("oauth %s takes no arguments besides --config or --state-dir", sub)}
	}
	dir, cfg, err := stateDirOf("oauth", *cfgPath, *stateDir, lookupEnv)
	if err != nil {
		return err
	}
	st, _, err := openOAuthStore(ctx, cfg, dir)
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "clients":
		return listClients(ctx, st, stdout)
	case "grants":
		return listGrants(ctx, st, stdout)
	case "rotate-key":
		k, err := oauth.RotateKey(ctx, st, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new signing key %s; a running gateway signs with it within 30 s, older keys verify until their tokens expire\n", k.ID)
		return nil
	}
	return revoke(ctx, st, fs.Args(), *client, *user, stdout)
}

func listClients(ctx context.Context, st oauth.Store, stdout io.Writer) error {
	clients, err := st.Clients(ctx)
	if err != nil {
		return fmt.Errorf("listing clients: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tNAME\tAUTH\tREGISTERED\tREDIRECT_URIS")
	for _, c := range clients {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, printable(c.Name), c.AuthMethod, c.Created.UTC().Format(time.RFC3339), strings.Join(c.RedirectURIs, " "))
	}
	return tw.Flush()
}

func listGrants(ctx context.Context, st oauth.Store, stdout io.Writer) error {
	grants, err := st.Grants(ctx)
	if err != nil {
		return fmt.Errorf("listing grants: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT_ID\tUSER\tCLIENT_ID\tRESOURCE\tSCOPES\tCREATED\tSTATE")
	for _, g := range grants {
		state := "active"
		if !g.Active() {
			state = "revoked " + g.Revoked.UTC().Format(time.RFC3339) + " (" + g.RevokeReason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, g.Subject, g.ClientID, g.Resource, strings.Join(g.Scopes, " "),
			g.Created.UTC().Format(time.RFC3339), state)
	}
	return tw.Flush()
}

func revoke(ctx context.Context, st oauth.Store, ids []string, client, user string, stdout io.Writer) error {
	now := time.Now()
	n := 0
	if client != "" {
		if err := st.DeleteClient(ctx, client, now); err != nil {
			return fmt.Errorf("deleting client %q: %w", client, err)
		}
		fmt.Fprintf(stdout, "client %s deleted and its grants revoked\n", client)
		n++
	}
	if user != "" {
		grants, err := st.Grants(ctx)
		if err != nil {
			return fmt.Errorf("listing grants: %w", err)
		}
		for _, g := range grants {
			if g.Active() && strings.EqualFold(g.Subject, user) {
				ids = append(ids, g.ID)
			}
		}
		if len(ids) == 0 {
			return fmt.Errorf("user %q has no active grant", user)
		}
	}
	for _, id := range ids {
		if err := st.RevokeGrant(ctx, id, "revoked by the operator", now); err != nil {
			return fmt.Errorf("revoking grant %q: %w", id, err)
		}
		fmt.Fprintf(stdout, "grant %s revoked\n", id)
		n++
	}
	if n == 0 {
		return usageError{errors.New("oauth revoke: name grant ids, --client or --user")}
	}
	return nil
}

// printable replaces control characters of a client-supplied name, which
// must not reach the operator's terminal as escape sequences.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}
