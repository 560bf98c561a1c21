package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestDashboardReferencesExportedMetrics holds deploy/grafana/mcpgw.json
// to the registry: every metric name its queries use is one the gateway
// exports (a histogram through its _bucket, _sum or _count series), so a
// renamed family breaks this test rather than a panel.
func TestDashboardReferencesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("../../deploy/grafana/mcpgw.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("the dashboard is not valid JSON: %v", err)
	}
	m := testMetrics(t)
	everyEvent(m)
	exported := map[string]dto.MetricType{}
	for name, mf := range gather(t, m) {
		exported[name] = mf.GetType()
	}
	ref := regexp.MustCompile(`\bmcpgw_[a-z_]+`)
	check := func(where, expr string) {
		for _, name := range ref.FindAllString(expr, -1) {
			if _, ok := exported[name]; ok {
				continue
			}
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suffix)
			}
			if exported[base] == dto.MetricType_HISTOGRAM && base != name {
				continue
			}
			t.Errorf("%s: %s is not a metric the gateway exports", where, name)
		}
	}
	queries := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if !ref.MatchString(q.Expr) {
				t.Errorf("panel %q: query %q uses no mcpgw metric", p.Title, q.Expr)
			}
			check("panel "+p.Title, q.Expr)
			queries++
		}
	}
	for _, v := range dash.Templating.List {
		check("variable", v.Definition)
	}
	if len(dash.Panels) < 10 || queries < 15 {
		t.Errorf("the dashboard has %d panels and %d queries", len(dash.Panels), queries)
	}
	// The five views: requests, latency, errors, processes, rejections.
	for _, family := range []string{"mcpgw_requests_total", "mcpgw_request_duration_seconds", "mcpgw_processes", "mcpgw_rejections_total", "mcpgw_process_crashes_total"} {
		if !strings.Contains(string(data), family) {
			t.Errorf("the dashboard does not show %s", family)
		}
	}
}
