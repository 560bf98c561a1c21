package status

import (
	"strconv"
	"testing"

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
