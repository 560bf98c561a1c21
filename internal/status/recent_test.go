package status

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRecentKeepsTheLastN(t *testing.T) {
	r := NewRecent(3)
	if got := r.List(); len(got) != 0 {
		t.Fatalf("empty ring lists %v", got)
	}
	for i := range 5 {
		r.Add(Error{RequestID: strconv.Itoa(i)})
	}
	var got []string
	for _, e := range r.List() {
		got = append(got, e.RequestID)
	}
	if diff := cmp.Diff([]string{"4", "3", "2"}, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

// TestHTMLEscapes: messages come from servers and clients; the page shows
// them as text.
func TestHTMLEscapes(t *testing.T) {
	var b strings.Builder
	p := &Page{Status: "ready", Detail: true, Servers: []Server{{Name: "s", Ready: false, Reason: `<img src=x onerror=alert(1)>`}},
		Errors: []Error{{Message: `<script>alert(1)</script>`, RequestID: "r1", Status: 502}}}
	if err := HTML(&b, p); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>") || strings.Contains(b.String(), "<img") {
		t.Errorf("unescaped markup in the page:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "&lt;script&gt;") {
		t.Errorf("the message is missing from the page")
	}
}

func TestTextWithoutDetail(t *testing.T) {
	var b strings.Builder
	if err := Text(&b, &Page{Status: "not ready", Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	if want := "mcpgw v1: not ready\n"; !strings.HasPrefix(b.String(), want) || !strings.Contains(b.String(), "MCPGW_TOKEN") {
		t.Errorf("got %q", b.String())
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{12 * time.Second: "12s", 250 * time.Second: "4m10s", 2*time.Hour + 5*time.Minute: "2h5m", 76 * time.Hour: "3d4h"} {
		if got := Age(d); got != want {
			t.Errorf("Age(%s) = %q, want %q", d, got, want)
		}
	}
}
