package session

import "context"

// A session is bound to the identity that created it (issue 6): requests
// that present its id under another identity are told it does not exist,
// exactly as for an unknown id, so that a leaked or guessed session id is
// worth nothing to anyone else and its existence is not revealed.

type identityKey struct{}

// WithIdentity returns ctx carrying the authenticated identity of the
// request; Initialize binds the session it creates to it. Without it a
// session is bound to the empty identity.
func WithIdentity(ctx context.Context, identity string) context.Context {
	return context.WithValue(ctx, identityKey{}, identity)
}

func identityFrom(ctx context.Context) string {
	id, _ := ctx.Value(identityKey{}).(string)
	return id
}

// Identity is the identity that created the session.
func (s *Session) Identity() string { return s.identity }

// LookupFor is Lookup for a request made by identity: a session of
// another identity is a 404 like an unknown one.
func (m *Manager) LookupFor(server, id, identity string) (*Session, error) {
	s, err := m.Lookup(server, id)
	if err != nil {
		return nil, err
	}
	if s.identity != identity {
		return nil, errSessionGone()
	}
	return s, nil
}

// clientIdentity is the session's identity for logs ("anonymous" without
// authentication), like the access log's client field.
func (s *Session) clientIdentity() string {
	if s.identity == "" {
		return "anonymous"
	}
	return s.identity
}
