'use strict'
// `intercept scan` against real servers (stdio, Streamable HTTP, legacy SSE) and against a
// fixture server for pagination, the stateless revision and failures; the scaffold it
// writes validates and is enforced by the proxy.
const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { execFile } = require('node:child_process')
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const { tempDir } = require('./helpers.js')
const { BINARY, LAUNCHER, SERVERS, INIT, rawProcess, freePort, startEverything } = require('./mcp.js')

const FIXTURE = join(__dirname, 'fixtures', 'scan-server.js')

/** Runs intercept with `args`; resolves with { code, stdout, stderr }. */
function intercept(args, options = {}) {
  return new Promise((resolve) => {
    execFile(BINARY, args, { maxBuffer: 32 * 1024 * 1024, ...options }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr })
    })
  })
}

async function scanJson(args) {
  const r = await intercept(['scan', '--format', 'json', ...args])
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout)
}

const byName = (doc) => Object.fromEntries(doc.tools.map((t) => [t.name, t]))

async function validates(file) {
  const r = await intercept(['validate', '-c', file])
  assert.equal(r.code, 0, `${r.stdout}\n${readFileSync(file, 'utf8')}`)
}

test('scans server-everything over stdio into a policy that validates', async () => {
  const dir = tempDir()
  const out = join(dir, 'everything.yaml')
  const r = await intercept(['scan', '-o', out, '--', process.execPath, ...SERVERS.everything])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, /Initialising/)
  assert.match(r.stderr, /Found 13 tools/)
  const yaml = readFileSync(out, 'utf8')
  assert.match(yaml, /^# Server: mcp-servers\/everything \S+ \(protocol 2025-11-25, stdio\)$/m)
  assert.match(yaml, /^# Tools: 13 \(Read \d+, Write \d+, Execute \d+, Financial \d+, Destructive \d+\); highest risk \d\/5$/m)
  assert.match(yaml, /^# Scanned: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ with intercept /m)
  assert.match(yaml, /^ {2}echo:\n {4}# Read · risk 1\/5 · read-only \(readOnlyHint\)\n {4}# Echoes back the input string\n {4}# Parameters: message \(string, required\)\n {4}rules: \[\]$/m)
  await validates(out)
})

test('the npm launcher scans too (the addon runs the same command)', async () => {
  const r = await new Promise((resolve) => {
    execFile(process.execPath, [LAUNCHER, 'scan', '-q', '--format', 'json', '--', process.execPath, ...SERVERS.memory], (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr })
    })
  })
  assert.equal(r.code, 0, r.stderr)
  assert.equal(JSON.parse(r.stdout).tools.length, 9)
})

test('classifies server-memory and server-filesystem tools', async () => {
  const memory = byName(await scanJson(['--', process.execPath, ...SERVERS.memory]))
  assert.equal(memory.read_graph.category, 'Read')
  assert.equal(memory.create_entities.category, 'Write')
  assert.equal(memory.delete_entities.category, 'Destructive')
  assert.ok(memory.delete_entities.risk >= 4)
  const dir = tempDir()
  const fsDoc = await scanJson(['--', process.execPath, ...SERVERS.filesystem, dir])
  assert.ok(fsDoc.tools.length >= 10, fsDoc.tools.map((t) => t.name).join(','))
  const fs = byName(fsDoc)
  assert.equal(fs.read_text_file.category, 'Read')
  assert.equal(fs.list_directory.category, 'Read')
  // destructiveHint on a writing verb: still Write, one risk level up.
  assert.equal(fs.write_file.category, 'Write')
  assert.equal(fs.write_file.risk, 3)
  assert.match(fs.write_file.reasons, /destructiveHint/)
  assert.equal(fs.edit_file.category, 'Write')
  assert.deepEqual(fs.write_file.parameters.find((p) => p.name === 'path'), { name: 'path', type: 'string', required: true })
})


for (const [transport, path, label] of [
  ['streamableHttp', '/mcp', 'Streamable HTTP'],
  ['sse', '/sse', 'legacy HTTP+SSE'],
]) {
  test(`scans server-everything over ${label}`, async () => {
    const server = await startEverything(transport)
    try {
      const stdio = await scanJson(['--', process.execPath, ...SERVERS.everything])
      const doc = await scanJson(['--upstream', `http://127.0.0.1:${server.port}${path}`, '--header', 'X-Test: 1'])
      assert.equal(doc.server.transport, label)
      assert.equal(doc.server.name, 'mcp-servers/everything')
      assert.deepEqual(
        doc.tools.map((t) => [t.name, t.category]).sort(),
        stdio.tools.map((t) => [t.name, t.category]).sort(),
      )
    } finally {
      server.stop()
    }
  })
}

test('follows tools/list pagination, answers server pings and skips non-JSON lines', async () => {
  const doc = await scanJson(['--', process.execPath, FIXTURE, 'paged'])
  assert.deepEqual(doc.server, { name: 'paged-demo', version: '1.2.3', protocolVersion: '2025-06-18', transport: 'stdio' })
  assert.deepEqual(
    doc.tools.map((t) => [t.name, t.category]),
    [['list_widgets', 'Read'], ['delete_widget', 'Destructive'], ['create_refund', 'Financial']],
  )
})

test('falls back to the stateless revision when initialize is unknown', async () => {
  const doc = await scanJson(['--', process.execPath, FIXTURE, 'stateless'])
  assert.equal(doc.server.protocolVersion, '2026-07-28')
  assert.equal(doc.server.name, 'stateless-demo')
  assert.deepEqual(doc.tools.map((t) => [t.name, t.category]), [['run_query', 'Execute']])
})

test('clear errors: start failure with stderr tail, credentials, timeout, missing command', async () => {
  let r = await intercept(['scan', '--', process.execPath, FIXTURE, 'crash'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /Error: the server exited \(exit status: 3\) while waiting for the answer to initialize/)
  assert.match(r.stderr, /last lines of the server's stderr ---\nbooting\nTypeError: cannot read properties/)
  r = await intercept(['scan', '--', process.execPath, FIXTURE, 'creds'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /Error: the server needs credentials: Error: DEMO_API_KEY environment variable is required/)
  r = await intercept(['scan', '--timeout', '1s', '--', process.execPath, FIXTURE, 'silent'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /Error: timed out after 1s while waiting for the answer to initialize/)
  r = await intercept(['scan', '--', 'no-such-mcp-server-command'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /cannot find the server command "no-such-mcp-server-command" on PATH/)
  r = await intercept(['scan'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /nothing to scan/)
  r = await intercept(['scan', '--upstream', `http://127.0.0.1:${await freePort()}/mcp`])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /Cannot reach the MCP server/)
})

/** Calls `tool` n times through the proxy; returns the results in order. */
async function callThrough(policy, server, serverArgs, tool, n) {
  const p = rawProcess(BINARY, ['-c', policy, '--state', 'memory', '--log-level', 'warn', '--', process.execPath, ...SERVERS[server], ...serverArgs])
  try {
    p.send(INIT)
    await p.next((m) => m.id === 'init')
    p.send({ jsonrpc: '2.0', method: 'notifications/initialized' })
    for (let i = 1; i <= n; i++) p.send({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: tool, arguments: {} } })
    const results = []
    for (let i = 1; i <= n; i++) results.push((await p.next((m) => m.id === i)).result)
    return results
  } finally {
    p.close()
    await p.exited
  }
}

test('the scaffold is enforced: a Write tool\'s 31st call in a minute is denied', async () => {
  const dir = tempDir()
  const policy = join(dir, 'everything.yaml')
  const r = await intercept(['scan', '-q', '-o', policy, '--', process.execPath, ...SERVERS.everything])
  assert.equal(r.code, 0, r.stderr)
  const yaml = readFileSync(policy, 'utf8')
  assert.match(yaml, / {2}toggle-simulated-logging:\n {4}# Write · risk 2\/5[^\n]*\n(?: {4}#[^\n]*\n)* {4}rules:\n {6}- name: write limit\n {8}action: allow\n {8}rate_limit: \{max: 30, window: 60\}\n/)
  const results = await callThrough(policy, 'everything', [], 'toggle-simulated-logging', 31)
  for (const [i, res] of results.slice(0, 30).entries()) {
    assert.ok(!res.isError, `call ${i + 1}: ${JSON.stringify(res)}`)
  }
  assert.equal(results[30].isError, true)
  assert.match(results[30].content[0].text, /^\[INTERCEPT POLICY DENIED\] .*[Rr]ate limit/)
})

test('--strict writes an allowlist that denies destructive tools', async () => {
  const dir = tempDir()
  const policy = join(dir, 'memory.yaml')
  const r = await intercept(['scan', '-q', '--strict', '-o', policy, '--', process.execPath, ...SERVERS.memory])
  assert.equal(r.code, 0, r.stderr)
  const yaml = readFileSync(policy, 'utf8')
  assert.match(yaml, /^default: deny$/m)
  await validates(policy)
  const env = { ...process.env, MEMORY_FILE_PATH: join(dir, 'memory.jsonl') }
  const [deleted] = await callThroughEnv(policy, env, 'delete_entities', { entityNames: ['x'] })
  assert.equal(deleted.isError, true)
  assert.match(deleted.content[0].text, /delete_entities is destructive and denied by policy/)
  const [read] = await callThroughEnv(policy, env, 'read_graph', {})
  assert.ok(!read.isError, JSON.stringify(read))
})

async function callThroughEnv(policy, env, tool, args) {
  const p = rawProcess(BINARY, ['-c', policy, '--state', 'memory', '--log-level', 'warn', '--', process.execPath, ...SERVERS.memory], { env })
  try {
    p.send(INIT)
    await p.next((m) => m.id === 'init')
    p.send({ jsonrpc: '2.0', method: 'notifications/initialized' })
    p.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: args } })
    return [(await p.next((m) => m.id === 1)).result]
  } finally {
    p.close()
    await p.exited
  }
}

/** An in-process HTTP MCP server: `mode` is 'session' (JSON replies, session id required,
 * paginated), 'stateless' (2026-07-28 only) or 'auth' (401). Records what it saw. */
async function fakeHttpServer(mode) {
  const seen = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (d) => {
      body += d
    })
    req.on('end', () => {
      seen.push({ method: req.method, headers: req.headers, body })
      const json = (status, obj, headers = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers })
        res.end(JSON.stringify(obj))
      }
      if (mode === 'auth') {
        res.writeHead(401, { 'www-authenticate': 'Bearer resource_metadata="http://x/.well-known/oauth-protected-resource"' })
        return res.end()
      }
      if (req.method === 'DELETE') {
        res.writeHead(200)
        return res.end()
      }
      const msg = JSON.parse(body)
      if (msg.id === undefined) {
        res.writeHead(202)
        return res.end()
      }
      const reply = (result) => json(200, { jsonrpc: '2.0', id: msg.id, result })
      if (mode === 'stateless') {
        if (msg.method === 'initialize') {
          return json(400, { jsonrpc: '2.0', id: msg.id, error: { code: -32022, message: 'Unsupported protocol version', data: { supported: ['2026-07-28'] } } })
        }
        if (msg.method === 'server/discover') return reply({ supportedVersions: ['2026-07-28'], capabilities: { tools: {} }, serverInfo: { name: 'http-stateless', version: '3.0.0' } })
        if (msg.method === 'tools/list' && req.headers['mcp-method'] === 'tools/list' && msg.params._meta['io.modelcontextprotocol/protocolVersion'] === '2026-07-28') {
          return reply({ tools: [{ name: 'get_weather', inputSchema: { type: 'object' } }] })
        }
        return json(400, { jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'no' } })
      }
      if (msg.method === 'initialize') {
        return json(200, { jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'http-session', version: '2.0.0' } } }, { 'mcp-session-id': 'sess-1' })
      }
      if (req.headers['mcp-session-id'] !== 'sess-1' || req.headers['mcp-protocol-version'] !== '2025-06-18') {
        return json(400, { jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: no valid session' } })
      }
      if (msg.method === 'tools/list') {
        const cursor = msg.params && msg.params.cursor
        if (!cursor) return reply({ tools: [{ name: 'list_things', inputSchema: { type: 'object' } }], nextCursor: 'c2' })
        return reply({ tools: [{ name: 'drop_things', inputSchema: { type: 'object' } }] })
      }
      return json(200, { jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } })
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${server.address().port}/mcp`, seen, close: () => server.close() }
}

test('Streamable HTTP: JSON replies, session id and protocol version on every request, pagination, DELETE at the end', async () => {
  const srv = await fakeHttpServer('session')
  try {
    const doc = await scanJson(['--upstream', srv.url])
    assert.deepEqual(doc.server, { name: 'http-session', version: '2.0.0', protocolVersion: '2025-06-18', transport: 'Streamable HTTP' })
    assert.deepEqual(doc.tools.map((t) => [t.name, t.category]), [['list_things', 'Read'], ['drop_things', 'Destructive']])
    const posts = srv.seen.filter((s) => s.method === 'POST')
    assert.equal(posts.length, 4) // initialize, initialized, two pages
    for (const p of posts) assert.match(p.headers.accept, /application\/json.*text\/event-stream/)
    assert.equal(posts[0].headers['mcp-session-id'], undefined)
    assert.ok(posts.slice(1).every((p) => p.headers['mcp-session-id'] === 'sess-1'))
    assert.equal(JSON.parse(posts[0].body).params.protocolVersion, '2025-11-25')
    assert.equal(srv.seen.at(-1).method, 'DELETE')
    assert.equal(srv.seen.at(-1).headers['mcp-session-id'], 'sess-1')
  } finally {
    srv.close()
  }
})

test('--header-env: scan reads headers from the environment as the proxy does, and a --header-env header replaces a --header of the same name', async () => {
  const srv = await fakeHttpServer('session')
  try {
    const env = { ...process.env, API_AUTH: 'Authorization: Bearer s3cret-env', TENANT: 'X-Tenant: from-env' }
    for (const args of [
      ['--header-env', 'API_AUTH', '--header', 'X-Tenant: argv', '--header-env', 'TENANT'],
      ['--header-env', 'TENANT', '--header', 'X-Tenant: argv', '--header-env', 'API_AUTH'],
    ]) {
      srv.seen.length = 0
      const r = await intercept(['scan', '--format', 'json', '--upstream', srv.url, ...args], { env })
      assert.equal(r.code, 0, r.stderr)
      const posts = srv.seen.filter((s) => s.method === 'POST')
      assert.ok(posts.length > 0)
      for (const p of posts) {
        assert.equal(p.headers.authorization, 'Bearer s3cret-env')
        assert.equal(p.headers['x-tenant'], 'from-env', args.join(' '))
      }
      assert.ok(!r.stderr.includes('s3cret'), r.stderr)
    }
    // The proxy's errors: the variable named, its value never shown; nothing is contacted.
    srv.seen.length = 0
    let r = await intercept(['scan', '--upstream', srv.url, '--header-env', 'NOT_SET_ANYWHERE'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--header-env NOT_SET_ANYWHERE: the environment variable NOT_SET_ANYWHERE is not set/)
    r = await intercept(['scan', '--upstream', srv.url, '--header-env', 'API_AUTH'], { env: { ...process.env, API_AUTH: 'Bearer hunter2' } })
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--header-env API_AUTH: the value of API_AUTH is not a header line "Name: value": there is no colon/)
    assert.ok(!r.stderr.includes('hunter2'), r.stderr)
    assert.equal(srv.seen.length, 0)
    // A malformed --header is refused without quoting its value either.
    r = await intercept(['scan', '--upstream', srv.url, '--header', 'Authorization: Bearer hunter2\r\nX: 1'])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /Error: the header "authorization" is not valid: the value has a line break or another character not allowed in a header; give one "Name: value" line \(the value is not shown\)/)
    assert.ok(!r.stderr.includes('hunter2'), r.stderr)
    r = await intercept(['scan', '--header-env', 'API_AUTH', '--', 'node', 'x.js'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--upstream/)
  } finally {
    srv.close()
  }
})

test('Streamable HTTP: a stateless-only server is scanned with the 2026-07-28 revision', async () => {
  const srv = await fakeHttpServer('stateless')
  try {
    const doc = await scanJson(['--upstream', srv.url])
    assert.equal(doc.server.protocolVersion, '2026-07-28')
    assert.equal(doc.server.name, 'http-stateless')
    assert.deepEqual(doc.tools.map((t) => t.name), ['get_weather'])
  } finally {
    srv.close()
  }
})

test('Streamable HTTP: 401 means credentials, with the challenge', async () => {
  const srv = await fakeHttpServer('auth')
  try {
    const r = await intercept(['scan', '--upstream', srv.url])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /Error: the server needs credentials: .* answered HTTP 401 Unauthorized \(WWW-Authenticate: Bearer resource_metadata=.*\); pass them with --header-env NAME, where the variable NAME holds "Authorization: Bearer <token>"/)
  } finally {
    srv.close()
  }
})
