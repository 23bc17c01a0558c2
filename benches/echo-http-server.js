#!/usr/bin/env node
'use strict'
// The echo server of benches/echo-server.js over Streamable HTTP: a TS SDK `McpServer` with one
// `echo` tool that answers with its arguments as JSON text, on `StreamableHTTPServerTransport`
// in stateful mode (a session id per client, one transport and server per session), at
// http://127.0.0.1:PORT/mcp. The direct row of benches/gateway.js, and the upstream of
// intercept's HTTP-upstream row.
//
// Run: node benches/echo-http-server.js PORT [--json]
//   PORT     the port to listen on (or the PORT environment variable; 0 picks a free one)
//   --json   answer each POST with application/json instead of an SSE stream (the SDK's
//            default), or ECHO_JSON=1
// Prints `listening on http://127.0.0.1:PORT/mcp` once it accepts connections.
const http = require('node:http')
const { randomUUID } = require('node:crypto')
const { McpServer } = require('@modelcontextprotocol/sdk/server/mcp.js')
const { StreamableHTTPServerTransport } = require('@modelcontextprotocol/sdk/server/streamableHttp.js')
const { isInitializeRequest } = require('@modelcontextprotocol/sdk/types.js')
const z = require('zod')

const argv = process.argv.slice(2)
const portText = argv.find((a) => !a.startsWith('--')) ?? process.env.PORT
const port = Number(portText)
if (portText === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`echo-http-server: give the port to listen on (0-65535) as the first argument or PORT, got ${JSON.stringify(portText)}\n`)
  process.exit(2)
}
const unknown = argv.filter((a) => a.startsWith('--') && a !== '--json')
if (unknown.length) {
  process.stderr.write(`echo-http-server: unknown option ${unknown[0]}; the only option is --json\n`)
  process.exit(2)
}
const jsonResponse = argv.includes('--json') || process.env.ECHO_JSON === '1'

function newServer() {
  const server = new McpServer({ name: 'echo', version: '1' })
  // Any arguments, echoed in the order they came, as benches/echo-server.js does.
  server.registerTool('echo', { description: 'Echoes its arguments', inputSchema: z.looseObject({}) }, async (args) => ({
    content: [{ type: 'text', text: JSON.stringify(args) }],
  }))
  return server
}

const transports = new Map()

async function readJson(req) {
  const chunks = []
  for await (const chunk of req) chunks.push(chunk)
  const text = Buffer.concat(chunks).toString('utf8')
  return text ? JSON.parse(text) : undefined
}

function reject(res, status, message) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message } }))
}

const httpServer = http.createServer(async (req, res) => {
  try {
    if (new URL(req.url, 'http://localhost').pathname !== '/mcp') return reject(res, 404, 'not found: the endpoint is /mcp')
    const sessionId = req.headers['mcp-session-id']
    const existing = typeof sessionId === 'string' ? transports.get(sessionId) : undefined
    if (req.method === 'POST') {
      const body = await readJson(req)
      if (existing) return await existing.handleRequest(req, res, body)
      if (sessionId === undefined && isInitializeRequest(body)) {
        const transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          enableJsonResponse: jsonResponse,
          onsessioninitialized: (id) => transports.set(id, transport),
        })
        transport.onclose = () => {
          if (transport.sessionId) transports.delete(transport.sessionId)
        }
        await newServer().connect(transport)
        return await transport.handleRequest(req, res, body)
      }
      return reject(res, sessionId === undefined ? 400 : 404, sessionId === undefined ? 'no session: send initialize first' : 'unknown session')
    }
    if (req.method === 'GET' || req.method === 'DELETE') {
      if (!existing) return reject(res, sessionId === undefined ? 400 : 404, 'unknown or missing Mcp-Session-Id')
      return await existing.handleRequest(req, res)
    }
    res.setHeader('allow', 'GET, POST, DELETE')
    return reject(res, 405, 'method not allowed')
  } catch (err) {
    if (!res.headersSent) reject(res, 400, `bad request: ${err.message}`)
    else res.end()
  }
})

httpServer.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${httpServer.address().port}/mcp\n`)
})
const stop = () => {
  for (const t of transports.values()) t.close().catch(() => {})
  httpServer.close()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
