// An outside MCP client of triage's decide tool: the official TypeScript
// SDK's client, which declares sampling and answers sampling/createMessage
// with a fixed verdict (model "ts-client-model"), as a host would with its
// own LLM. Usage: node decide.mjs URL TOKEN EVENT_JSON [pool]
// Prints {"result": <the tool's structured content>, "sampled": n} or
// {"error": "..."} on stdout; "pool" declares no sampling.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const [url, token, eventJSON, mode] = process.argv.slice(2);
const sampling = mode !== "pool";
const client = new Client({ name: "ts-interop", version: "1.0.0" }, { capabilities: sampling ? { sampling: {} } : {} });
let sampled = 0;
if (sampling) {
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    sampled++;
    const text = req.params.messages.map((m) => m.content.text ?? "").join(" ");
    return {
      role: "assistant",
      model: "ts-client-model",
      stopReason: "endTurn",
      content: { type: "text", text: JSON.stringify({ outcome: "block", reason: `seen ${text.length} chars`, score: 0.7 }) },
    };
  });
}
const headers = token ? { Authorization: `Bearer ${token}` } : {};
try {
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  const res = await client.callTool({ name: "decide", arguments: { event: JSON.parse(eventJSON) } });
  if (res.isError) {
    console.log(JSON.stringify({ error: res.content.map((c) => c.text).join(" ") }));
  } else {
    console.log(JSON.stringify({ result: res.structuredContent, sampled }));
  }
} catch (e) {
  console.log(JSON.stringify({ error: String(e) }));
} finally {
  await client.close();
}
