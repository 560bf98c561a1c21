package auth

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/internal/auth/authtest"
)

// FuzzAuthenticate feeds untrusted header values through the parsers this
// package writes itself (Bearer, the JOSE header) and the whole
// verification path: nothing may panic, every refusal is a *Failure, and no
// error repeats the credential.
func FuzzAuthenticate(f *testing.F) {
	key := authtest.NewECDSA(f, "k")
	is := authtest.NewIssuer(f, key)
	a, _ := newAuth(f, is, "")
	valid := authtest.Sign(f, key, is.Claims(audience, "a@example.com"))
	for _, s := range []string{
		"Bearer " + laptopToken, "Bearer " + valid, "bearer   x", "Basic abc", "Bearer =", "",
		valid, "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJSUzI1NiJ9.e30.sig", "..",
	} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, authz, cf string) {
		if _, ok := parseBearer(authz); ok && strings.ContainsAny(authz[len("bearer"):], "\x00\r\n\t") {
			t.Errorf("parseBearer accepted control characters in %q", authz)
		}
		_, _ = parseHeader(cf)
		h := http.Header{}
		if authz != "" {
			h.Set("Authorization", authz)
		}
		if cf != "" {
			h.Set("Cf-Access-Jwt-Assertion", cf)
		}
		_, err := a.Authenticate(context.Background(), h)
		if err == nil {
			return
		}
		if _, ok := IsFailure(err); !ok {
			t.Fatalf("error is not a *Failure: %v", err)
		}
		msg := err.Error()
		// Fixed texts of the messages are shorter than 64 bytes, so a
		// longer credential found in one was copied there.
		for _, secret := range []string{authz, cf} {
			if len(secret) >= 64 && strings.Contains(msg, secret) {
				t.Fatalf("error %q repeats the credential", msg)
			}
		}
	})
}
