package session

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// checkResponsive decides the fate of a shared process whose timed-out
// request stayed unanswered for kill_grace after its cancellation. A
// well-behaved server sends no response to a cancelled request (spec
// basic/utilities/cancellation), so that silence is not a sign of trouble;
// the process is asked for a ping and recycled only if it does not answer
// within grace either — a wedged process, which would fail every request
// sent to it. Any answer counts, an error too (ping is not a 2026-07-28
// method).
func (p *proc) checkResponsive(method string, grace time.Duration) {
	m := p.srv.m
	m.wg.Go(func() { // owner: the manager; bounded by grace
		ctx, cancel := context.WithTimeout(m.ctx, grace)
		defer cancel()
		_, err := p.b.Roundtrip(ctx, &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage("0"), Method: "ping"})
		switch {
		case err == nil:
			m.log.Info("server process answers after leaving a timed-out request unanswered: keeping it",
				"tool", p.srv.Name, "runtime", p.srv.cfg.Runtime, "process", p.b.ID(), "method", method)
		case m.ctx.Err() != nil || p.b.Err() != nil:
			// Shutting down, or already gone.
		default:
			p.recycle(fmt.Sprintf("request %s timed out, stayed unanswered %s after its cancellation, and the process did not answer a ping within %s",
				method, grace, grace))
		}
	})
}
