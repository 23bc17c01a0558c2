'use strict'
// Remote mode (--upstream): stdio to the client, Streamable HTTP or legacy SSE to a real
// server-everything on a loopback port; and HTTP failures a client must never hang on.
const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { Client } = require('@modelcontextprotocol/sdk/client/index.js')
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js')
const { tempDir, writeIn } = require('./helpers.js')
const { BINARY, LAUNCHER, INIT, rawProcess, freePort, startEverything } = require('./mcp.js')

const POLICY = `
hide: [get-env]
tools:
  echo:
    rules:
      - name: no bangs
        conditions: [{path: args.message, op: regex, value: "^[^!]"}]
  get-sum:
    rules:
      - rate_limit: 2/minute
`


async function connectRemote(via, url, dir, extra = []) {
  const policy = writeIn(dir, 'policy.yaml', POLICY)
  const args = ['-c', policy, '--state', 'memory', '--log-level', 'warn', '--upstream', url, ...extra]
  const [command, argv] = via === 'binary' ? [BINARY, args] : [process.execPath, [LAUNCHER, ...args]]
  const client = new Client({ name: 'remote-tests', version: '1' }, { capabilities: {} })
  // The whole environment: the SDK passes on only a few variables, not INTERCEPT_AUDIT_DIR.
  await client.connect(new StdioClientTransport({ command, args: argv, stderr: 'pipe', env: process.env }))
  return client
}

async function exercise(client) {
  const { tools } = await client.listTools()
  const names = tools.map((t) => t.name)
  assert.ok(names.includes('echo'))
  assert.ok(!names.includes('get-env'), 'hidden tool removed from the remote list')
  assert.deepEqual((await client.callTool({ name: 'echo', arguments: { message: 'remote' } })).content, [
    { type: 'text', text: 'Echo: remote' },
  ])
  const denied = await client.callTool({ name: 'echo', arguments: { message: '!x' } })
  assert.equal(denied.content[0].text, '[INTERCEPT POLICY DENIED] Denied by rule "no bangs"')
  assert.equal((await client.callTool({ name: 'get-env', arguments: {} })).isError, true)
  await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })
  await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })
  const limited = await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })
  assert.match(limited.content[0].text, /Rate limit of 2 per minute reached/)
  // Calls run concurrently: a slow tool call does not hold up the others.
  const slow = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1.5, steps: 2 } })
  const started = Date.now()
  await client.ping()
  await client.callTool({ name: 'echo', arguments: { message: 'fast' } })
  assert.ok(Date.now() - started < 1000, 'ping and echo answered while the slow call ran')
  assert.match((await slow).content[0].text, /Long running operation completed/)
}

test('Streamable HTTP upstream: enforcement, filtering, concurrency (binary and launcher)', async () => {
  const server = await startEverything('streamableHttp')
  try {
    for (const via of ['binary', 'launcher']) {
      const client = await connectRemote(via, `http://127.0.0.1:${server.port}/mcp`, tempDir())
      await exercise(client)
      await client.close()
    }
  } finally {
    server.stop()
  }
})

test('a legacy HTTP+SSE upstream is used when the server does not speak Streamable HTTP', async () => {
  const server = await startEverything('sse')
  try {
    const client = await connectRemote('binary', `http://127.0.0.1:${server.port}/sse`, tempDir())
    await exercise(client)
    await client.close()
  } finally {
    server.stop()
  }
})

/** A tiny HTTP server that answers every request with `handler`. */
async function fakeHttp(handler) {
  const server = http.createServer(handler)
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${server.address().port}/mcp`, close: () => server.close() }
}

async function firstAnswer(url, extra = [], env = process.env) {
  const dir = tempDir()
  const policy = writeIn(dir, 'p.yaml', 'tools: {}\n')
  const p = rawProcess(BINARY, ['-c', policy, '--state', 'memory', '--log-level', 'error', '--upstream', url, '--request-timeout', '2', ...extra], { env })
  p.send(INIT)
  const answer = await p.next((m) => m.id === 'init', 10000)
  p.close()
  await p.exited
  return answer
}

test('every HTTP failure reaches the client as a JSON-RPC error on its request', async () => {
  // Nothing listening.
  const port = await freePort()
  let a = await firstAnswer(`http://127.0.0.1:${port}/mcp`)
  assert.equal(a.error.code, -32603)
  assert.match(a.error.message, new RegExp(`Cannot reach the MCP server at http://127.0.0.1:${port}/mcp`))

  // Authentication required: the message says which flag to add.
  let fake = await fakeHttp((req, res) => {
    res.writeHead(401, { 'www-authenticate': 'Bearer realm="mcp"' })
    res.end('unauthorized')
  })
  a = await firstAnswer(fake.url)
  assert.match(a.error.message, /refused the request \(HTTP 401 Unauthorized\) \(WWW-Authenticate: Bearer realm="mcp"\): pass credentials with --header-env NAME, where the variable NAME holds "Authorization: Bearer <token>"/)
  fake.close()

  // Custom headers are sent.
  let seenAuth
  fake = await fakeHttp((req, res) => {
    seenAuth = req.headers.authorization
    res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 's1' })
    res.end(JSON.stringify({ jsonrpc: '2.0', id: 'init', result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'f', version: '1' } } }))
  })
  a = await firstAnswer(fake.url, ['--header', 'Authorization: Bearer t0k'])
  assert.equal(a.result.serverInfo.name, 'f')
  assert.equal(seenAuth, 'Bearer t0k')
  // A --header-env header replaces a --header of the same name, wherever each is given.
  for (const extra of [
    ['--header', 'Authorization: Bearer argv', '--header-env', 'API_AUTH'],
    ['--header-env', 'API_AUTH', '--header', 'Authorization: Bearer argv'],
  ]) {
    a = await firstAnswer(fake.url, extra, { ...process.env, API_AUTH: 'Authorization: Bearer from-env' })
    assert.equal(a.result.serverInfo.name, 'f')
    assert.equal(seenAuth, 'Bearer from-env', extra.join(' '))
  }
  fake.close()

  // An HTML error page is summarised, not relayed into the JSON-RPC stream.
  fake = await fakeHttp((req, res) => {
    res.writeHead(502, { 'content-type': 'text/html' })
    res.end('<!DOCTYPE html><html><body><h1>Bad Gateway</h1></body></html>')
  })
  a = await firstAnswer(fake.url)
  assert.equal(a.error.message, `The MCP server at ${fake.url} answered HTTP 502 Bad Gateway: an HTML error page`)
  fake.close()

  // A server that never answers: the request times out instead of hanging.
  fake = await fakeHttp(() => {})
  a = await firstAnswer(fake.url)
  assert.match(a.error.message, /did not answer in time|failed/)
  fake.close()
})
