#!/usr/bin/env node
// A TypeScript SDK v2 client (@modelcontextprotocol/client) that exercises
// one server through mcpgw and prints what it saw as one JSON object on
// stdout, like client.mjs. internal/interop runs it and asserts on the
// output; it decides nothing itself, so a failed step is recorded
// ({"error": …}) and the script goes on with the next one.
//
//   node client2.mjs <auto|pin|legacy> <URL of /mcp/{server}> <scenario> [arg] [arg2]
//
// The first argument is the client's versionNegotiation mode. The v2 client
// speaks 2025-11-25 (initialize, sessions) unless told otherwise:
//   auto     probe with server/discover and use 2026-07-28 on a definitive
//            modern answer, else fall back to initialize
//   pin      2026-07-28 only ({pin: "2026-07-28"}): no fallback
//   legacy   the default: initialize, no 2026-07-28 at all
//
// Scenarios:
//   everything   @modelcontextprotocol/server-everything: tools, prompts,
//                resources, progress, sampling (answered here, through an
//                input_required round trip on 2026-07-28), elicitation
//                refused when not declared, subscriptions/listen
//   demo         mcpgw's own demo server (Go SDK): tools/list, echo
//   echoes       server-everything's echo, five calls one after another
//   aggregate    an aggregate of server-everything, server-filesystem,
//                server-memory and the demo server; arg is the members'
//                names in that order, comma-separated, and a fifth arg the
//                directory server-filesystem serves. Each member's tools
//                on its own URL, then the aggregate's page by page, and one
//                call to each member through it
//
// Besides the steps, "wire" lists every HTTP exchange the client made (its
// MCP headers, the JSON-RPC method, and what came back), recorded by a
// fetch wrapper.
//
// Exit status: 0 when the JSON was written (whatever it says), 2 on usage
// errors, 1 when the script itself broke.

import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const [negotiation, url, scenario, arg, arg2] = process.argv.slice(2);
const modes = { auto: "auto", pin: { pin: "2026-07-28" }, legacy: "legacy" };
if (!(negotiation in modes) || !url || !scenario) {
  console.error("usage: node client2.mjs <auto|pin|legacy> <URL> <everything|demo|echoes|aggregate> [arg] [arg2]");
  process.exit(2);
}

// The sampling answer; the Go test looks for it in the tool's output.
const SAMPLED_TEXT = "sampled by the TypeScript v2 interop client";

// wire: one entry per HTTP request, filled in as the response arrives.
const wire = [];

// describe summarises one JSON-RPC message from the gateway.
function describe(m) {
  if (m.method) {
    const d = { notification: m.method };
    if (m.method === "notifications/progress") d.progress = [m.params?.progressToken, m.params?.progress, m.params?.total];
    return d;
  }
  if (m.error) return { id: m.id, error: m.error.code, message: m.error.message };
  return {
    id: m.id,
    resultType: m.result?.resultType ?? null,
    inputRequests: m.result?.inputRequests ? Object.values(m.result.inputRequests).map((r) => r.method) : undefined,
    requestState: m.result?.requestState ? true : undefined,
  };
}

// recordBody reads a copy of a response body: JSON, or SSE whose data
// lines are JSON-RPC messages. A stream the client aborts ends the copy.
async function recordBody(entry, body, contentType) {
  let text = "";
  try {
    const dec = new TextDecoder();
    for await (const chunk of body) text += dec.decode(chunk, { stream: true });
  } catch (err) {
    entry.aborted = true;
  }
  const msgs = [];
  if ((contentType ?? "").startsWith("text/event-stream")) {
    for (const line of text.split("\n")) {
      if (line.startsWith("data:")) {
        try {
          msgs.push(JSON.parse(line.slice(5)));
        } catch {}
      }
    }
  } else if (text.trim() !== "") {
    try {
      msgs.push(JSON.parse(text));
    } catch {
      entry.body = text.slice(0, 300);
    }
  }
  entry.messages = msgs.map(describe);
}

const pending = [];

async function loggingFetch(input, init = {}) {
  const headers = new Headers(init.headers ?? {});
  let req = {};
  try {
    req = typeof init.body === "string" ? JSON.parse(init.body) : {};
  } catch {}
  const entry = {
    http: init.method ?? "GET",
    protocolVersionHeader: headers.get("mcp-protocol-version"),
    methodHeader: headers.get("mcp-method"),
    nameHeader: headers.get("mcp-name"),
    sessionHeader: headers.get("mcp-session-id"),
    method: req.method ?? null,
    id: req.id ?? null,
    metaKeys: Object.keys(req.params?._meta ?? {}).sort(),
    requestState: req.params?.requestState !== undefined,
    inputResponses: req.params?.inputResponses ? Object.keys(req.params.inputResponses) : undefined,
  };
  wire.push(entry);
  const res = await fetch(input, init);
  entry.status = res.status;
  entry.contentType = res.headers.get("content-type");
  if (!res.body) return res;
  const [mine, copy] = res.body.tee();
  pending.push(recordBody(entry, copy, entry.contentType));
  return new Response(mine, { status: res.status, statusText: res.statusText, headers: res.headers });
}

// step runs fn and stores its value, or the error it threw, under name.
async function step(out, name, fn) {
  try {
    out[name] = await fn();
  } catch (err) {
    out[name] = { error: String(err?.message ?? err), code: err?.code ?? null, data: err?.data ?? null };
  }
}

function texts(result) {
  return (result.content ?? []).filter((c) => c.type === "text").map((c) => c.text);
}

async function connect(out, { sampling = false, target = url } = {}) {
  const client = new Client(
    { name: "mcpgw-interop-ts2", version: "1.0.0" },
    { capabilities: sampling ? { sampling: {} } : {}, versionNegotiation: { mode: modes[negotiation] } },
  );
  if (sampling) {
    out.samplingRequests = [];
    client.setRequestHandler("sampling/createMessage", async (req) => {
      const prompt = req.params.messages?.[0]?.content?.text ?? "";
      out.samplingRequests.push(prompt);
      return {
        model: "interop-model",
        role: "assistant",
        content: { type: "text", text: `${SAMPLED_TEXT} for: ${prompt}` },
        stopReason: "endTurn",
      };
    });
  }
  // MCPGW_INTEROP_TOKEN: a bearer token for a gateway with auth.tokens.
  const token = process.env.MCPGW_INTEROP_TOKEN;
  const requestInit = token ? { headers: { Authorization: `Bearer ${token}` } } : undefined;
  const transport = new StreamableHTTPClientTransport(new URL(target), { fetch: loggingFetch, requestInit });
  await client.connect(transport);
  out.protocolVersion = client.getNegotiatedProtocolVersion() ?? null;
  out.era = client.getProtocolEra() ?? null;
  out.server = client.getServerVersion() ?? null;
  out.sessionId = transport.sessionId ?? null;
  const d = client.getDiscoverResult();
  out.discover = d ? { supportedVersions: d.supportedVersions } : null;
  return { client, transport };
}

async function everything(out) {
  const { client, transport } = await connect(out, { sampling: true });
  await step(out, "tools", async () => (await client.listTools()).tools.map((t) => t.name).sort());
  await step(out, "echo", async () => texts(await client.callTool({ name: "echo", arguments: { message: "hello from ts2" } })));
  await step(out, "sum", async () => texts(await client.callTool({ name: "get-sum", arguments: { a: 19, b: 23 } })));
  await step(out, "prompt", async () => {
    const r = await client.getPrompt({ name: "args-prompt", arguments: { city: "Porto" } });
    return r.messages.map((m) => m.content.text);
  });
  await step(out, "resource", async () => {
    const r = await client.readResource({ uri: "demo://resource/dynamic/text/3" });
    return r.contents.map((c) => c.text);
  });
  await step(out, "progress", async () => {
    // wire: the progress notifications as the transport got them; seen:
    // those the client passed to onprogress.
    const wire = [];
    const onmessage = transport.onmessage;
    transport.onmessage = (m, extra) => {
      if (m.method === "notifications/progress") wire.push({ progress: m.params.progress, total: m.params.total });
      onmessage(m, extra);
    };
    const seen = [];
    try {
      const r = await client.callTool(
        { name: "trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } },
        { onprogress: (p) => seen.push({ progress: p.progress, total: p.total }) },
      );
      return { wire, seen, text: texts(r) };
    } finally {
      transport.onmessage = onmessage;
    }
  });
  await step(out, "sampling", async () =>
    texts(await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "ping", maxTokens: 5 } })),
  );
  if (Array.isArray(out.tools) && out.tools.includes("trigger-elicitation-request")) {
    // This client declared no elicitation: the call must fail, not hang.
    // The failure is the expected outcome, so it is recorded as a value.
    await step(out, "elicitation", async () => {
      try {
        const r = await client.callTool({ name: "trigger-elicitation-request", arguments: {} });
        return { result: { isError: r.isError ?? false, text: texts(r) } };
      } catch (err) {
        return { code: err?.code ?? null, message: String(err?.message ?? err), data: err?.data ?? null };
      }
    });
  }
  if (out.era === "modern") {
    await step(out, "listen", async () => {
      const sub = await client.listen({ toolsListChanged: true, promptsListChanged: true, resourcesListChanged: true });
      const honored = sub.honoredFilter;
      await sub.close();
      return { honored, closed: await sub.closed };
    });
  }
  await client.close();
}

async function demo(out) {
  const { client } = await connect(out);
  await step(out, "tools", async () => (await client.listTools()).tools.map((t) => t.name).sort());
  await step(out, "echo", async () => texts(await client.callTool({ name: "echo", arguments: { text: "hello demo from ts2" } })));
  await client.close();
}

// echoes calls server-everything's echo five times, one after another.
async function echoes(out) {
  const { client } = await connect(out);
  out.echoes = [];
  for (let i = 0; i < 5; i++) {
    await step(out, "echo", async () => texts(await client.callTool({ name: "echo", arguments: { message: `ts2 ${i}` } })));
    out.echoes.push(out.echo);
  }
  await client.close();
}

// listPages lists the tools. The v2 client follows nextCursor itself when
// listTools is called without a cursor; pages is how many tools/list
// requests that took on the wire.
async function listPages(client) {
  const before = wire.length;
  const r = await client.listTools();
  const pages = wire.slice(before).filter((e) => e.method === "tools/list").length;
  return { names: r.tools.map((t) => t.name), pages };
}

async function aggregate(out) {
  const members = (arg ?? "").split(",");
  if (members.length !== 4 || !arg2) throw new Error("aggregate needs ev,fs,memory,demo member names and the filesystem directory");
  const [ev, fs, memory, demo] = members;
  const base = url.slice(0, url.lastIndexOf("/") + 1);
  out.direct = {};
  for (const m of members) {
    await step(out.direct, m, async () => {
      const { client } = await connect({}, { sampling: true, target: base + m });
      try {
        return (await listPages(client)).names;
      } finally {
        await client.close();
      }
    });
  }
  const { client } = await connect(out, { sampling: true });
  await step(out, "list", () => listPages(client));
  const call = async (name, args) => texts(await client.callTool({ name, arguments: args }));
  await step(out, "ev", () => call(ev + "__echo", { message: "hello aggregate" }));
  await step(out, "fs", () => call(fs + "__read_text_file", { path: arg2 + "/hello.txt" }));
  const entity = `ts2-${negotiation}-${memory}`;
  await step(out, "memory", async () => {
    await call(memory + "__create_entities", { entities: [{ name: entity, entityType: "test", observations: ["through the aggregate"] }] });
    return { entity, graph: (await call(memory + "__read_graph", {})).join("") };
  });
  await step(out, "demo", () => call(demo + "__echo", { text: "hello demo through the aggregate" }));
  await step(out, "sampling", () => call(ev + "__trigger-sampling-request", { prompt: "ping", maxTokens: 5 }));
  await client.close();
}

const out = { negotiation, scenario };
const scenarios = { everything, demo, echoes, aggregate };
try {
  if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
  await scenarios[scenario](out);
} catch (err) {
  out.fatal = String(err?.stack ?? err);
}
await Promise.race([Promise.allSettled(pending), new Promise((r) => setTimeout(r, 2000))]);
out.wire = wire;
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0);
