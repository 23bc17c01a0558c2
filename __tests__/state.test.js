'use strict'
// Counters in Redis, shared by in-process engines (sync and async API) and proxies.
const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { join } = require('node:path')
const { Engine } = require('..')
const { root, tempDir, writeIn } = require('./helpers.js')
const { BINARY, INIT, rawProcess } = require('./mcp.js')
const { startRedis } = require('./redis.js')

const POLICY = `tools:
  t:
    rules:
      - name: five an hour
        rate_limit: 5/hour
  free:
    rules:
      - action: allow
`
const TOOL_SERVER = join(root, 'tests', 'fixtures', 'tool-server.js')

/** One tools/call through a proxy process; resolves with the response. */
async function callThrough(proxy, id, tool) {
  proxy.send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: {} } })
  return proxy.next((m) => m.id === id)
}

test('engines in this process and a proxy share one set of limits in Redis', async () => {
  const redis = await startRedis()
  try {
    const prefix = `node-${process.pid}`
    const one = new Engine({ policy: POLICY, state: redis.url, statePrefix: prefix })
    const two = new Engine({ policy: POLICY, state: redis.url, statePrefix: prefix })
    assert.equal(one.evaluate({ tool: 't' }).decision, 'allow')
    assert.equal((await two.evaluateAsync({ tool: 't' })).decision, 'allow')
    const third = await one.evaluateAsync({ tool: 't' })
    assert.equal(third.decision, 'allow')
    // Given back: it does not count.
    assert.equal(await one.rollbackAsync(third), true)
    assert.equal(await one.rollbackAsync(third), false)
    const fourth = two.evaluate({ tool: 't' })
    assert.equal(await two.commitAsync(fourth), true)

    const dir = tempDir()
    const policy = writeIn(dir, 'policy.yaml', POLICY)
    const proxy = rawProcess(BINARY, ['-c', policy, '--state-dsn', redis.url, '--state-prefix', prefix, '--', process.execPath, TOOL_SERVER])
    proxy.send(INIT)
    await proxy.next((m) => m.id === 'init')
    // Three counted in this process so far: the proxy gets the last two of five.
    for (const id of [1, 2]) {
      const through = await callThrough(proxy, id, 't')
      assert.equal(through.result.isError, undefined, JSON.stringify(through))
    }
    const denied = await callThrough(proxy, 3, 't')
    assert.match(denied.result.content[0].text, /Rate limit/)
    proxy.close()
    await proxy.exited

    const last = await one.evaluateAsync({ tool: 't' })
    assert.equal(last.decision, 'deny')
    assert.equal(last.reason, 'rate_limit')
    assert.ok(last.retryAfterSeconds >= 1 && last.retryAfterSeconds <= 3600, String(last.retryAfterSeconds))
  } finally {
    await redis.stop()
  }
})

test('with Redis down, closed denies as unavailable, open allows as unenforced, and neither shows the password', async () => {
  const password = 'n0de-secret-pw'
  const redis = await startRedis({ password })
  try {
    const closed = new Engine({ policy: POLICY, state: redis.url })
    const open = new Engine({ policy: POLICY, state: redis.url, stateFailMode: 'open' })
    assert.equal((await closed.evaluateAsync({ tool: 't' })).decision, 'allow')
    await redis.stop()

    const d = await closed.evaluateAsync({ tool: 't' })
    assert.equal(d.decision, 'deny')
    assert.equal(d.reason, 'state_unavailable')
    assert.match(d.message, /state store is unavailable/)
    assert.doesNotMatch(d.message, /rate limit/i)
    assert.ok(!d.message.includes(password), d.message)
    assert.equal(closed.evaluate({ tool: 'free' }).decision, 'allow')

    const o = open.evaluate({ tool: 't' })
    assert.equal(o.decision, 'allow')
    assert.equal(o.reservation, undefined)
    assert.match(o.unenforced, /unavailable|did not answer/)
    assert.ok(!o.unenforced.includes(password))

    await redis.start()
    let recovered
    for (let i = 0; i < 50; i++) {
      recovered = await closed.evaluateAsync({ tool: 't' })
      if (recovered.decision === 'allow') break
      await new Promise((r) => setTimeout(r, 50))
    }
    assert.equal(recovered.decision, 'allow')
  } finally {
    await redis.stop()
  }
})

test('state options are checked', () => {
  assert.throws(() => new Engine({ policy: POLICY, stateFailMode: 'sometimes' }), /stateFailMode must be "closed" or "open"/)
  assert.throws(() => new Engine({ policy: POLICY, state: 'redis://127.0.0.1:1/0', statePrefix: 'a{b}' }), /invalid state prefix/)
  assert.throws(
    () => new Engine({ policy: POLICY, state: 'redis://:pw-in-dsn@127.0.0.1:1/notadb' }),
    (e) => /invalid Redis DSN/.test(e.message) && !e.message.includes('pw-in-dsn'),
  )
})

test("a remote server's JSON-RPC errors give Redis quota back (rollback on the HTTP transport)", async () => {
  const redis = await startRedis()
  // A minimal Streamable HTTP server: JSON answers; `fail: true` makes a tool fail.
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(req.method === 'DELETE' ? 200 : 405).end()
      return
    }
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const msg = JSON.parse(body)
      if (msg.id === undefined) return res.writeHead(202).end()
      const reply =
        msg.method === 'initialize'
          ? { result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'h', version: '1' } } }
          : msg.params.arguments.fail
            ? { error: { code: -32000, message: 'the tool failed' } }
            : { result: { content: [{ type: 'text', text: 'ok' }] } }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, ...reply }))
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    const dir = tempDir()
    const policy = writeIn(dir, 'policy.yaml', 'tools:\n  t:\n    rules:\n      - rate_limit: 2/hour\n')
    const url = `http://127.0.0.1:${server.address().port}/mcp`
    const proxy = rawProcess(BINARY, ['-c', policy, '--state-dsn', redis.url, '--state-prefix', `remote-${process.pid}`, '--upstream', url])
    proxy.send(INIT)
    await proxy.next((m) => m.id === 'init')
    const call = async (id, args) => {
      proxy.send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 't', arguments: args } })
      return proxy.next((m) => m.id === id)
    }
    for (const id of [1, 2, 3]) {
      const failed = await call(id, { fail: true })
      assert.equal(failed.error.code, -32000, JSON.stringify(failed))
    }
    assert.equal((await call(4, {})).result.content[0].text, 'ok')
    assert.equal((await call(5, {})).result.content[0].text, 'ok')
    assert.match((await call(6, {})).result.content[0].text, /Rate limit/)
    proxy.close()
    await proxy.exited
  } finally {
    server.close()
    await redis.stop()
  }
})
