// Package sqlitestore keeps the OAuth authorization server's state in an
// SQLite database (modernc.org/sqlite, pure Go) under the state
// directory. The database runs in WAL mode with a busy timeout, so the
// gateway and `mcpgw oauth` commands can use the same file at once: a
// revocation written by a command is what the gateway reads next.
//
// Each table keeps the columns that lookups need and the record itself as
// JSON, which keeps the schema small and the records' evolution in Go.
package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/mcpgw/mcpgw/internal/oauth"
)

// FileName is the database's name in the state directory.
const FileName = "oauth.db"

const schema = `
CREATE TABLE IF NOT EXISTS clients (id TEXT PRIMARY KEY, created INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS grants (id TEXT PRIMARY KEY, client_id TEXT NOT NULL, subject TEXT NOT NULL,
	resource TEXT NOT NULL, revoked INTEGER NOT NULL, created INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS grants_lookup ON grants (client_id, subject, resource, revoked);
CREATE TABLE IF NOT EXISTS codes (digest TEXT PRIMARY KEY, expires INTEGER NOT NULL, used INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS refresh (digest TEXT PRIMARY KEY, grant_id TEXT NOT NULL, expires INTEGER NOT NULL,
	used INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, expires INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS keys (kid TEXT PRIMARY KEY, created INTEGER NOT NULL, data BLOB NOT NULL);
`

// Store is an oauth.Store in one SQLite file. Safe for concurrent use.
type Store struct {
	db *sql.DB
}

var _ oauth.Store = (*Store)(nil)

// Open opens (creating when needed) the database in dir, which is created
// with mode 0700; the database file is 0600, since it holds the signing
// keys.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening OAuth state %s: %w", path, err)
	}
	_ = f.Close()
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening OAuth state %s: %w", path, err)
	}
	// One connection: writes in this process are serialised here, and
	// across processes by SQLite's lock with the busy timeout.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("preparing OAuth state %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database. It may be called more than once.
func (s *Store) Close() error { return s.db.Close() }

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func (s *Store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// one decodes the record of a single-row query whose first column is the
// JSON data; extra receives the further columns.
func one[T any](row *sql.Row, extra ...any) (*T, error) {
	var data []byte
	err := row.Scan(append([]any{&data}, extra...)...)
	return decode[T](data, err)
}

func decode[T any](data []byte, err error) (*T, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return nil, oauth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("decoding stored record: %w", err)
	}
	return v, nil
}

func list[T any](ctx context.Context, db *sql.DB, query string, args ...any) ([]*T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		v, err := decode[T](data, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// CreateClient implements oauth.Store.
func (s *Store) CreateClient(ctx context.Context, c *oauth.Client, max int) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM clients`).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return oauth.ErrLimit
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO clients (id, created, data) VALUES (?, ?, ?)`, c.ID, unix(c.Created), data)
		return err
	})
}

// Client implements oauth.Store.
func (s *Store) Client(ctx context.Context, id string) (*oauth.Client, error) {
	return one[oauth.Client](s.db.QueryRowContext(ctx, `SELECT data FROM clients WHERE id = ?`, id))
}

// Clients implements oauth.Store.
func (s *Store) Clients(ctx context.Context) ([]*oauth.Client, error) {
	return list[oauth.Client](ctx, s.db, `SELECT data FROM clients ORDER BY created, id`)
}

// DeleteClient implements oauth.Store.
func (s *Store) DeleteClient(ctx context.Context, id string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM clients WHERE id = ?`, id)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		rows, err := tx.QueryContext(ctx, `SELECT data FROM grants WHERE client_id = ? AND revoked = 0`, id)
		if err != nil {
			return err
		}
		var grants []*oauth.Grant
		for rows.Next() {
			var data []byte
			if err := rows.Scan(&data); err != nil {
				rows.Close()
				return err
			}
			g, err := decode[oauth.Grant](data, nil)
			if err != nil {
				rows.Close()
				return err
			}
			grants = append(grants, g)
		}
		rows.Close()
		for _, g := range grants {
			if err := revoke(ctx, tx, g, "client deleted", at); err != nil {
				return err
			}
		}
		if n == 0 && len(grants) == 0 {
			return oauth.ErrNotFound
		}
		return nil
	})
}

// SaveGrant implements oauth.Store.
func (s *Store) SaveGrant(ctx context.Context, g *oauth.Grant) error {
	data, err := json.Marshal(g)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT OR REPLACE INTO grants (id, client_id, subject, resource, revoked, created, data)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, g.ID, g.ClientID, g.Subject, g.Resource, unix(g.Revoked), unix(g.Created), data)
	return err
}

// Grant implements oauth.Store.
func (s *Store) Grant(ctx context.Context, id string) (*oauth.Grant, error) {
	return one[oauth.Grant](s.db.QueryRowContext(ctx, `SELECT data FROM grants WHERE id = ?`, id))
}

// ActiveGrant implements oauth.Store.
func (s *Store) ActiveGrant(ctx context.Context, clientID, subject, resource string) (*oauth.Grant, error) {
	return one[oauth.Grant](s.db.QueryRowContext(ctx, `SELECT data FROM grants WHERE client_id = ? AND subject = ? AND resource = ? AND revoked = 0
		ORDER BY created DESC LIMIT 1`, clientID, subject, resource))
}

// Grants implements oauth.Store.
func (s *Store) Grants(ctx context.Context) ([]*oauth.Grant, error) {
	return list[oauth.Grant](ctx, s.db, `SELECT data FROM grants ORDER BY created, id`)
}

// RevokeGrant implements oauth.Store.
func (s *Store) RevokeGrant(ctx context.Context, id, reason string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		g, err := one[oauth.Grant](tx.QueryRowContext(ctx, `SELECT data FROM grants WHERE id = ?`, id))
		if err != nil {
			return err
		}
		if !g.Active() {
			return nil
		}
		return revoke(ctx, tx, g, reason, at)
	})
}

func revoke(ctx context.Context, tx *sql.Tx, g *oauth.Grant, reason string, at time.Time) error {
	g.Revoked, g.RevokeReason = at, reason
	data, err := json.Marshal(g)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE grants SET revoked = ?, data = ? WHERE id = ?`, unix(at), data, g.ID); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM refresh WHERE grant_id = ?`, g.ID)
	return err
}

// SaveCode implements oauth.Store.
func (s *Store) SaveCode(ctx context.Context, c *oauth.Code) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO codes (digest, expires, used, data) VALUES (?, ?, 0, ?)`, c.Digest, unix(c.Expires), data)
	return err
}

// UseCode implements oauth.Store.
func (s *Store) UseCode(ctx context.Context, digest string, now time.Time) (*oauth.Code, error) {
	var c *oauth.Code
	var used bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = one[oauth.Code](tx.QueryRowContext(ctx,
			`SELECT data, used FROM codes WHERE digest = ? AND expires > ?`, digest, unix(now)), &used)
		if err != nil {
			return err
		}
		c.Digest = digest
		_, err = tx.ExecContext(ctx, `UPDATE codes SET used = 1 WHERE digest = ?`, digest)
		return err
	})
	if err != nil {
		return nil, err
	}
	if used {
		return c, oauth.ErrUsed
	}
	return c, nil
}

// SaveRefresh implements oauth.Store.
func (s *Store) SaveRefresh(ctx context.Context, r *oauth.Refresh) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO refresh (digest, grant_id, expires, used, data) VALUES (?, ?, ?, 0, ?)`,
		r.Digest, r.GrantID, unix(r.Expires), data)
	return err
}

// UseRefresh implements oauth.Store.
func (s *Store) UseRefresh(ctx context.Context, digest string, now time.Time) (*oauth.Refresh, error) {
	var r *oauth.Refresh
	var used bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = one[oauth.Refresh](tx.QueryRowContext(ctx,
			`SELECT data, used FROM refresh WHERE digest = ? AND expires > ?`, digest, unix(now)), &used)
		if err != nil {
			return err
		}
		r.Digest = digest
		_, err = tx.ExecContext(ctx, `UPDATE refresh SET used = 1 WHERE digest = ?`, digest)
		return err
	})
	if err != nil {
		return nil, err
	}
	if used {
		return r, oauth.ErrUsed
	}
	return r, nil
}

// SaveRequest implements oauth.Store.
func (s *Store) SaveRequest(ctx context.Context, r *oauth.Request) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT OR REPLACE INTO requests (id, expires, data) VALUES (?, ?, ?)`, r.ID, unix(r.Expires), data)
	return err
}

// Request implements oauth.Store.
func (s *Store) Request(ctx context.Context, id string, now time.Time) (*oauth.Request, error) {
	return one[oauth.Request](s.db.QueryRowContext(ctx, `SELECT data FROM requests WHERE id = ? AND expires > ?`, id, unix(now)))
}

// DeleteRequest implements oauth.Store.
func (s *Store) DeleteRequest(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM requests WHERE id = ?`, id)
	return err
}

// Keys implements oauth.Store.
func (s *Store) Keys(ctx context.Context) ([]*oauth.Key, error) {
	return list[oauth.Key](ctx, s.db, `SELECT data FROM keys ORDER BY created DESC, kid`)
}

// AddKey implements oauth.Store.
func (s *Store) AddKey(ctx context.Context, k *oauth.Key) error {
	data, err := json.Marshal(k)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO keys (kid, created, data) VALUES (?, ?, ?)`, k.ID, unix(k.Created), data)
	return err
}

// RetireKey implements oauth.Store.
func (s *Store) RetireKey(ctx context.Context, kid string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		k, err := one[oauth.Key](tx.QueryRowContext(ctx, `SELECT data FROM keys WHERE kid = ?`, kid))
		if err != nil {
			return err
		}
		if !k.Retired.IsZero() {
			return nil
		}
		k.Retired = at
		data, err := json.Marshal(k)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE keys SET data = ? WHERE kid = ?`, data, kid)
		return err
	})
}

// DeleteKey implements oauth.Store.
func (s *Store) DeleteKey(ctx context.Context, kid string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM keys WHERE kid = ?`, kid)
	return err
}

// Purge implements oauth.Store.
func (s *Store) Purge(ctx context.Context, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, t := range []string{"codes", "refresh", "requests"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE expires <= ?`, unix(now)); err != nil {
				return err
			}
		}
		return nil
	})
}
