'use strict'
// Counters in Redis, shared by in-process engines (sync and async API) and proxies.
const test = require('node:test')
const assert = require('node:assert/strict')
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
