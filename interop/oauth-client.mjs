#!/usr/bin/env node
// A TypeScript-SDK MCP client that connects to an mcpgw server protected by
// mcpgw's own OAuth authorization server, using the SDK's own OAuth
// implementation (an OAuthClientProvider as the transport's authProvider):
// discovery from the 401, dynamic client registration, PKCE, the code
// exchange and the refresh are the SDK's. The browser step is the test's:
//
//   node oauth-client.mjs <URL of /mcp/{server}>
//
// When the SDK asks to send the user to the authorization URL, the script
// prints {"authorize": URL} as one line on stdout and reads one line from
// stdin: the URL the browser was finally sent to (the redirect URI with
// code, state and iss). At the end it prints one JSON object of what it
// saw; a failed step is recorded ({"error": …}) and the script goes on.
//
// Exit status: 0 when the JSON was written, 2 on usage errors, 1 when the
// script itself broke.

import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const [url] = process.argv.slice(2);
if (!url) {
  console.error("usage: node oauth-client.mjs <URL of /mcp/{server}>");
  process.exit(2);
}

// The redirect URI is never listened on: the test's browser stops there.
const REDIRECT = "http://127.0.0.1:9/ts-callback";

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

class Provider {
  constructor() {
    this.client = undefined;
    this.saved = undefined;
    this.verifier = undefined;
    this.expectedState = crypto.randomUUID();
    this.authorizations = 0;
    this.tokenSaves = 0;
  }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return {
      client_name: "mcpgw interop (TypeScript SDK)",
      redirect_uris: [REDIRECT],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() { return this.expectedState; }
  clientInformation() { return this.client; }
  saveClientInformation(info) { this.client = info; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; this.tokenSaves++; }
  redirectToAuthorization(authorizationUrl) {
    this.authorizations++;
    process.stdout.write(JSON.stringify({ authorize: authorizationUrl.toString() }) + "\n");
  }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
}

async function step(out, name, fn) {
  try {
    out[name] = await fn();
  } catch (e) {
    out[name] = { error: String(e && e.message ? e.message : e) };
  }
}

const texts = (res) => res.content.filter((c) => c.type === "text").map((c) => c.text).join("");

const out = {};
const provider = new Provider();
const client = new Client({ name: "mcpgw-interop-ts-oauth", version: "1.0.0" });

await step(out, "first_connect", async () => {
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
    return "connected without authorization";
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    return "unauthorized";
  }
});
out.registered_client = provider.client ? provider.client.client_id : null;

await step(out, "callback", async () => {
  const { value, done } = await lines.next();
  if (done) throw new Error("no callback URL on stdin");
  const cb = new URL(value.trim());
  const q = cb.searchParams;
  if (q.get("error")) throw new Error(`authorization error ${q.get("error")}: ${q.get("error_description")}`);
  if (q.get("state") !== provider.expectedState) throw new Error("state mismatch");
  return { iss: q.get("iss"), code: q.get("code") ? "present" : "missing", code_value: q.get("code") };
});

await step(out, "connect", async () => {
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  await transport.finishAuth(out.callback.code_value);
  delete out.callback.code_value;
  await client.connect(transport);
  return "connected";
});
out.has_refresh_token = Boolean(provider.saved && provider.saved.refresh_token);

await step(out, "echo", async () => texts(await client.callTool({ name: "echo", arguments: { text: "hello oauth from ts" } })));

// Spoil the access token: the next request gets 401, and the SDK refreshes
// with the refresh token (no new authorization) and retries.
const before = provider.saved ? provider.saved.refresh_token : undefined;
if (provider.saved) provider.saved = { ...provider.saved, access_token: "spoiled-access-token" };
const saves = provider.tokenSaves;
await step(out, "echo_after_refresh", async () => texts(await client.callTool({ name: "echo", arguments: { text: "after refresh" } })));
out.refreshed = provider.tokenSaves > saves && provider.saved.refresh_token !== before;
out.authorizations = provider.authorizations;

await step(out, "close", async () => { await client.close(); return "closed"; });
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0);
