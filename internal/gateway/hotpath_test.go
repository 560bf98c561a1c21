package gateway

import (
	"net/http"
	"testing"
)

// The hot path's hand-written checks must agree with the general ones they
// short-cut.

func TestValidServerNameMatchesPattern(t *testing.T) {
	long := "a"
	for len(long) < 70 {
		long += "b"
	}
	for _, name := range []string{"", "a", "demo", "my-server_2", "-a", "_a", "A", "a.b", "a/b", "é",
		"0", "9-", long[:64], long[:65], "a b", "a\x00"} {
		if got, want := validServerName(name), serverName.MatchString(name); got != want {
			t.Errorf("validServerName(%q) = %v, the pattern says %v", name, got, want)
		}
	}
}

func TestAcceptsFastPath(t *testing.T) {
	for _, tc := range []struct {
		accept []string
		json   bool
		sse    bool
	}{
		{[]string{"application/json, text/event-stream"}, true, true},
		{[]string{"Application/JSON,Text/Event-Stream"}, true, true},
		{[]string{"application/json", "text/event-stream"}, true, true},
		{[]string{"*/*"}, true, true},
		{[]string{"application/*"}, true, false},
		{[]string{"text/*"}, false, true},
		{[]string{"application/json;q=0, text/event-stream"}, false, true},
		{[]string{"application/json; q=0.5, text/event-stream;q=0"}, true, false},
		{[]string{"application/jsonx, text/event-streams"}, false, false},
		{[]string{"applicatio/*"}, false, false},
		{nil, false, false},
	} {
		r, _ := http.NewRequest(http.MethodPost, "http://x/", nil)
		for _, v := range tc.accept {
			r.Header.Add("Accept", v)
		}
		if got := accepts(r, "application/json"); got != tc.json {
			t.Errorf("Accept %q admits application/json: %v, want %v", tc.accept, got, tc.json)
		}
		if got := accepts(r, "text/event-stream"); got != tc.sse {
			t.Errorf("Accept %q admits text/event-stream: %v, want %v", tc.accept, got, tc.sse)
		}
	}
}
