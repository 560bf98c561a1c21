#!/usr/bin/env node
// A TypeScript-SDK MCP client that exercises one server through mcpgw and
// prints what it saw as one JSON object on stdout. internal/interop runs it
// and asserts on the output; it decides nothing itself, so a failed step is
// recorded ({"error": …}) and the script goes on with the next one.
//
//   node client.mjs <streamable|sse> <URL of /mcp/{server}> <scenario> [arg] [arg2]
//
// Scenarios:
//   everything   @modelcontextprotocol/server-everything: tools, prompts,
//                resources, progress, sampling (answered here)
//   filesystem   @modelcontextprotocol/server-filesystem; arg is the
//                directory it serves, which holds hello.txt and sub/
//   demo         mcpgw's own demo server (Go SDK): tools/list, echo
//   rejections   status codes of requests the gateway must refuse
//   resume       server-everything: the POST stream of a tool call with
//                progress is cut after its priming event and first
//                progress notification (as a proxy would cut it); the SDK
//                resumes it with a GET carrying Last-Event-ID
//   aggregate    an aggregate of server-everything, server-filesystem,
//                server-memory and the demo server; arg is the members'
//                names in that order, comma-separated, and a fifth arg the
//                directory server-filesystem serves (holding hello.txt).
//                Each member's tools are listed on its own URL first,
//                with the same client capabilities, then the aggregate's,
//                following nextCursor page by page; one call to each
//                member, progress and sampling through the aggregate
//
// Exit status: 0 when the JSON was written (whatever it says), 2 on usage
// errors, 1 when the script itself broke.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { CreateMessageRequestSchema, LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";

const [transportName, url, scenario, arg, arg2] = process.argv.slice(2);
if (!["streamable", "sse"].includes(transportName) || !url || !scenario) {
  console.error("usage: node client.mjs <streamable|sse> <URL> <everything|filesystem|demo|rejections|resume|aggregate> [arg] [arg2]");
  process.exit(2);
}

// The sampling answer; the Go test looks for it in the tool's output.
const SAMPLED_TEXT = "sampled by the interop client";

function newTransport(base) {
  if (transportName === "sse") {
    return new SSEClientTransport(new URL(base + "/sse"));
  }
  return new StreamableHTTPClientTransport(new URL(base));
}

async function connect(base, { sampling = false } = {}) {
  const client = new Client(
    { name: "mcpgw-interop-ts", version: "1.0.0" },
    { capabilities: sampling ? { sampling: {} } : {} },
  );
  if (sampling) {
    client.setRequestHandler(CreateMessageRequestSchema, async (req) => ({
      model: "interop-model",
      role: "assistant",
      content: { type: "text", text: SAMPLED_TEXT },
      stopReason: "endTurn",
    }));
  }
  const transport = newTransport(base);
  await client.connect(transport);
  return { client, transport };
}

// step runs fn and stores its value, or the error it threw, under name.
async function step(out, name, fn) {
  try {
    out[name] = await fn();
  } catch (err) {
    out[name] = { error: String(err?.message ?? err), code: err?.code ?? null };
  }
}

function texts(result) {
  return (result.content ?? []).filter((c) => c.type === "text").map((c) => c.text);
}

async function everything(out) {
  const { client, transport } = await connect(url, { sampling: true });
  out.server = client.getServerVersion();
  out.protocolVersion = transport.protocolVersion ?? null; // SSE transports do not expose it
  out.sessionId = transport.sessionId ?? null;
  await step(out, "tools", async () => (await client.listTools()).tools.map((t) => t.name).sort());
  await step(out, "echo", async () => texts(await client.callTool({ name: "echo", arguments: { message: "hello from ts" } })));
  await step(out, "sum", async () => texts(await client.callTool({ name: "get-sum", arguments: { a: 2, b: 40 } })));
  await step(out, "prompts", async () => (await client.listPrompts()).prompts.map((p) => p.name).sort());
  await step(out, "prompt", async () => {
    const r = await client.getPrompt({ name: "args-prompt", arguments: { city: "Lisbon", state: "Portugal" } });
    return r.messages.map((m) => m.content.text);
  });
  await step(out, "resource", async () => {
    const r = await client.readResource({ uri: "demo://resource/dynamic/text/7" });
    return r.contents.map((c) => c.text);
  });
  await step(out, "resources", async () => (await client.listResources()).resources.length);
  await step(out, "progress", async () => {
    // wire: progress notifications as they arrived from the gateway.
    // seen: those the SDK passed to onprogress. The SDK runs notification
    // handlers a microtask later than response handlers, so a last
    // progress that arrives in the same read as the response is dropped
    // by the client (observed over SSE); wire is what the gateway sent.
    const wire = [];
    const onmessage = transport.onmessage;
    transport.onmessage = (m, extra) => {
      if (m.method === "notifications/progress") wire.push({ progress: m.params.progress, total: m.params.total });
      onmessage(m, extra);
    };
    const seen = [];
    const r = await client.callTool(
      { name: "trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } },
      undefined,
      { onprogress: (p) => seen.push({ progress: p.progress, total: p.total }) },
    );
    transport.onmessage = onmessage;
    return { wire, seen, text: texts(r) };
  });
  await step(out, "sampling", async () =>
    texts(await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "ping", maxTokens: 5 } })),
  );
  if (transportName === "streamable") {
    // DELETE ends the session; the gateway must then forget it (404).
    await step(out, "terminate", async () => {
      const sid = transport.sessionId;
      await transport.terminateSession();
      const r = await fetch(url, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json, text/event-stream",
          "Mcp-Session-Id": sid,
          "MCP-Protocol-Version": transport.protocolVersion,
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 99, method: "tools/list" }),
      });
      return { statusAfter: r.status };
    });
  }
  await client.close();
}

async function filesystem(out) {
  const { client, transport } = await connect(url);
  out.server = client.getServerVersion();
  out.protocolVersion = transport.protocolVersion ?? null;
  await step(out, "tools", async () => (await client.listTools()).tools.map((t) => t.name).sort());
  await step(out, "list", async () => texts(await client.callTool({ name: "list_directory", arguments: { path: arg } })));
  await step(out, "read", async () => texts(await client.callTool({ name: "read_text_file", arguments: { path: arg + "/hello.txt" } })));
  await step(out, "outside", async () => {
    const r = await client.callTool({ name: "read_text_file", arguments: { path: "/etc/hostname" } });
    return { isError: r.isError ?? false, text: texts(r) };
  });
  await client.close();
}

async function demo(out) {
  const { client, transport } = await connect(url);
  out.server = client.getServerVersion();
  out.protocolVersion = transport.protocolVersion ?? null;
  await step(out, "tools", async () => (await client.listTools()).tools.map((t) => t.name).sort());
  await step(out, "echo", async () => texts(await client.callTool({ name: "echo", arguments: { text: "hello demo from ts" } })));
  await client.close();
}

// rejections records the HTTP status (or the SDK's error code, which is
// the status) of requests the gateway must refuse before any process runs.
async function rejections(out) {
  const base = new URL(url);
  const root = `${base.protocol}//${base.host}`;
  const connectCode = async (u) => {
    try {
      const { client } = await connect(u);
      await client.close();
      return { connected: true };
    } catch (err) {
      return { code: err?.code ?? null, message: String(err?.message ?? err) };
    }
  };
  await step(out, "unknownServer", () => connectCode(root + "/mcp/no-such-server"));
  await step(out, "badServerName", () => connectCode(root + "/mcp/Bad.Name"));
  const raw = async (method, u, headers, body) => (await fetch(u, { method, headers, body })).status;
  const init = JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "raw", version: "1" } },
  });
  const json = { "Content-Type": "application/json", Accept: "application/json, text/event-stream" };
  await step(out, "wrongAccept", () => raw("POST", url, { ...json, Accept: "text/html" }, init));
  await step(out, "wrongContentType", () => raw("POST", url, { ...json, "Content-Type": "text/plain" }, init));
  await step(out, "unknownSession", () => raw("POST", url, { ...json, "Mcp-Session-Id": "not-a-session" }, init));
  await step(out, "wrongMethod", () => raw("PUT", url, json, init));
  await step(out, "unknownSSESession", () => raw("POST", url + "/message?sessionId=nope", json, init));
}

// resume: the transport's fetch cuts the first POST response that is an
// SSE stream and carries a tools/call after two events, failing the read
// as a dropped connection does; everything else passes through. out
// records what went over the wire: the cut, the GETs with Last-Event-ID,
// every response to the call's id the transport delivered (counted over
// the call and a while after it), and the progress notifications.
async function resume(out) {
  const wire = { cut: null, resumes: [], responses: 0, progress: [], errors: [] };
  out.wire = wire;
  let callId = null;
  const cutAfterEvents = (body, n) => {
    const reader = body.getReader();
    let tail = "";
    const decoder = new TextDecoder();
    return new ReadableStream({
      async pull(controller) {
        const { value, done } = await reader.read();
        if (done) {
          controller.close();
          return;
        }
        // Pass bytes through up to the end of the n-th event, then fail.
        const text = decoder.decode(value, { stream: true });
        let passed = 0;
        for (let i = 0; i < text.length; i++) {
          tail = (tail + text[i]).slice(-2);
          if (tail === "\n\n" && --n === 0) {
            passed = i + 1;
            break;
          }
        }
        if (n > 0) {
          controller.enqueue(new TextEncoder().encode(text));
          return;
        }
        controller.enqueue(new TextEncoder().encode(text.slice(0, passed)));
        wire.cut = { afterEvents: 2 };
        reader.cancel().catch(() => {});
        controller.error(new TypeError("terminated: the interop test cut the stream"));
      },
    });
  };
  const cuttingFetch = async (input, init) => {
    const method = init?.method ?? "GET";
    const headers = new Headers(init?.headers);
    if (method === "GET" && headers.get("last-event-id")) {
      wire.resumes.push(headers.get("last-event-id"));
    }
    const resp = await fetch(input, init);
    const isCall = method === "POST" && typeof init?.body === "string" && init.body.includes('"tools/call"');
    if (isCall && wire.cut === null && resp.headers.get("content-type")?.startsWith("text/event-stream")) {
      return new Response(cutAfterEvents(resp.body, 2), { status: resp.status, headers: resp.headers });
    }
    return resp;
  };
  const client = new Client({ name: "mcpgw-interop-ts", version: "1.0.0" }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: cuttingFetch });
  await client.connect(transport);
  out.protocolVersion = transport.protocolVersion ?? null;
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    if (message.method === "tools/call") callId = message.id;
    return send(message, options);
  };
  const onmessage = transport.onmessage;
  transport.onmessage = (m, extra) => {
    if (m.method === "notifications/progress") wire.progress.push(m.params.progress);
    if (callId !== null && m.id === callId && (m.result || m.error)) wire.responses++;
    onmessage(m, extra);
  };
  const onerror = transport.onerror;
  transport.onerror = (err) => {
    wire.errors.push(String(err?.message ?? err));
    onerror?.(err);
  };
  await step(out, "call", async () => {
    const r = await client.callTool(
      { name: "trigger-long-running-operation", arguments: { duration: 2, steps: 4 } },
      undefined,
      { onprogress: () => {}, timeout: 30000 },
    );
    return texts(r);
  });
  // A response delivered twice would arrive after the first: wait for it.
  await new Promise((r) => setTimeout(r, 1500));
  await client.close();
}

// listPages lists every page of the tools, following nextCursor; it
// returns the names and how many pages there were.
async function listPages(client) {
  const names = [];
  let cursor;
  let pages = 0;
  do {
    const r = await client.listTools(cursor === undefined ? undefined : { cursor });
    pages++;
    names.push(...r.tools.map((t) => t.name));
    cursor = r.nextCursor;
  } while (cursor !== undefined && pages < 100);
  return { names, pages };
}

async function aggregate(out) {
  const members = (arg ?? "").split(",");
  if (members.length !== 4 || !arg2) throw new Error("aggregate needs ev,fs,memory,demo member names and the filesystem directory");
  const [ev, fs, memory, demo] = members;
  const base = url.slice(0, url.lastIndexOf("/") + 1);
  out.direct = {};
  for (const m of members) {
    await step(out.direct, m, async () => {
      const { client } = await connect(base + m, { sampling: true });
      try {
        return (await listPages(client)).names;
      } finally {
        await client.close();
      }
    });
  }
  const { client, transport } = await connect(url, { sampling: true });
  out.server = client.getServerVersion();
  await step(out, "list", () => listPages(client));
  const call = async (name, args) => texts(await client.callTool({ name, arguments: args }));
  await step(out, "ev", () => call(ev + "__echo", { message: "hello aggregate" }));
  await step(out, "fs", () => call(fs + "__read_text_file", { path: arg2 + "/hello.txt" }));
  const entity = `ts-${transportName}-${memory}`;
  await step(out, "memory", async () => {
    await call(memory + "__create_entities", { entities: [{ name: entity, entityType: "test", observations: ["through the aggregate"] }] });
    return { entity, graph: (await call(memory + "__read_graph", {})).join("") };
  });
  await step(out, "demo", () => call(demo + "__echo", { text: "hello demo through the aggregate" }));
  await step(out, "progress", async () => {
    // As in everything: wire is what the gateway sent, seen what the SDK
    // passed on.
    const wire = [];
    const onmessage = transport.onmessage;
    transport.onmessage = (m, extra) => {
      if (m.method === "notifications/progress") wire.push({ progress: m.params.progress, total: m.params.total });
      onmessage(m, extra);
    };
    const seen = [];
    try {
      const r = await client.callTool(
        { name: ev + "__trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } },
        undefined,
        { onprogress: (p) => seen.push({ progress: p.progress, total: p.total }) },
      );
      return { wire, seen, text: texts(r) };
    } finally {
      transport.onmessage = onmessage;
    }
  });
  await step(out, "sampling", () => call(ev + "__trigger-sampling-request", { prompt: "ping", maxTokens: 5 }));
  await client.close();
}

const out = { transport: transportName, scenario };
const scenarios = { everything, filesystem, demo, rejections, resume, aggregate };
try {
  if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
  await scenarios[scenario](out);
} catch (err) {
  out.fatal = String(err?.stack ?? err);
}
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0);
