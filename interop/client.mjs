#!/usr/bin/env node
// A TypeScript-SDK MCP client that exercises one server through mcpgw and
// prints what it saw as one JSON object on stdout. internal/interop runs it
// and asserts on the output; it decides nothing itself, so a failed step is
// recorded ({"error": …}) and the script goes on with the next one.
//
//   node client.mjs <streamable|sse> <URL of /mcp/{server}> <scenario> [arg]
//
// Scenarios:
//   everything   @modelcontextprotocol/server-everything: tools, prompts,
//                resources, progress, sampling (answered here)
//   filesystem   @modelcontextprotocol/server-filesystem; arg is the
//                directory it serves, which holds hello.txt and sub/
//   demo         mcpgw's own demo server (Go SDK): tools/list, echo
//   rejections   status codes of requests the gateway must refuse
//
// Exit status: 0 when the JSON was written (whatever it says), 2 on usage
// errors, 1 when the script itself broke.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { CreateMessageRequestSchema, LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";

const [transportName, url, scenario, arg] = process.argv.slice(2);
if (!["streamable", "sse"].includes(transportName) || !url || !scenario) {
  console.error("usage: node client.mjs <streamable|sse> <URL> <everything|filesystem|demo|rejections> [arg]");
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

const out = { transport: transportName, scenario };
const scenarios = { everything, filesystem, demo, rejections };
try {
  if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
  await scenarios[scenario](out);
} catch (err) {
  out.fatal = String(err?.stack ?? err);
}
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0);
