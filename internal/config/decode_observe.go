package config

import (
	"strconv"

	"go.yaml.in/yaml/v3"
)

// number returns a field that decodes a decimal number.
func (d *decoder) number(dst *float64) field {
	return func(path string, n *yaml.Node) {
		s, ok := d.scalar(path, n, "a number")
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			d.addf(path, n, "must be a number, e.g. 0.1%s", d.got(path, s))
			return
		}
		*dst = f
	}
}

// observeFields are the top-level keys of metrics, tracing and status.
func (d *decoder) observeFields(c *Config) fields {
	return fields{
		"metrics": d.sub(fields{
			"listen":       d.str(&c.Metrics.Listen),
			"allow_remote": d.boolean(&c.Metrics.AllowRemote),
		}, nil),
		"tracing": d.sub(fields{
			"otlp_endpoint": d.str(&c.Tracing.OTLPEndpoint),
			"sample_ratio":  d.number(&c.Tracing.SampleRatio),
			"service_name":  d.str(&c.Tracing.ServiceName),
		}, nil),
		"status": d.sub(fields{
			"enabled": func(path string, n *yaml.Node) {
				var on bool
				d.boolean(&on)(path, n)
				c.Status.Enabled = &on
			},
			"recent_errors": d.integer(&c.Status.RecentErrors),
		}, nil),
	}
}
