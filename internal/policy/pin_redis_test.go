package policy_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/clustertest"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/pins/redispins"
	"github.com/mcpgw/mcpgw/internal/policy"
	"github.com/mcpgw/mcpgw/internal/redisconn"
)

// TestPinEnforceStoreNeverRead: under enforce, a gateway whose shared pin
// store has not answered since it started trusts no definition (it cannot
// tell a first sight from a change another replica holds); once the store
// answers, pinning works as usual.
func TestPinEnforceStoreNeverRead(t *testing.T) {
	rds := clustertest.StartRedis(t)
	rds.Stop()
	conn, err := redisconn.New(&config.Redis{URL: rds.URL(), Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st := redispins.New(conn, nil)
	defer st.Close()
	g, err := policy.New(policy.Config{Server: "s", PinTools: policy.PinEnforce}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.UsePins(st)
	list := func() []string {
		_, adapt := g.Request(policy.Who{}, &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage("1"), Method: "tools/list", Params: json.RawMessage("{}")})
		m := &jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: json.RawMessage("1"), Result: json.RawMessage(`{"tools":[{"name":"a","description":"one"}]}`)}
		adapt(m)
		var res struct{ Tools []struct{ Name string } }
		if err := json.Unmarshal(m.Result, &res); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tl := range res.Tools {
			names = append(names, tl.Name)
		}
		return names
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("store never read: listed %v, want nothing", got)
	}
	rds.Start()
	deadline := time.Now().Add(5 * time.Second)
	for len(list()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the store answers again, but a is still hidden")
		}
		time.Sleep(policy.PinRefresh / 5) // the pins are read at most once per PinRefresh
	}
}
