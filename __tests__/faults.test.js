'use strict'
// Faults and bypass attempts, with a misbehaving upstream and a raw JSON-RPC driver.
const test = require('node:test')
const assert = require('node:assert/strict')
const { readFileSync, existsSync } = require('node:fs')
const { join } = require('node:path')
const { setTimeout: sleep } = require('node:timers/promises')
const { tempDir, writeIn } = require('./helpers.js')
const { BINARY, LAUNCHER, INIT, rawProcess, alive } = require('./mcp.js')

const FAKE = join(__dirname, 'fixtures', 'fake-server.js')
const POLICY = `
hide: [secret]
tools:
  ask:
    rules:
      - rate_limit: 1/hour
`

/** Starts intercept (binary or launcher) in front of the fake server. */
function start({ via = 'binary', policy = POLICY, flags = [], env = {} } = {}) {
  const dir = tempDir()
  const policyPath = writeIn(dir, 'policy.yaml', policy)
  const log = join(dir, 'server.log')
  const pidFile = join(dir, 'server.pid')
  const args = ['-c', policyPath, '--state', 'memory', '--log-level', 'warn', '--shutdown-timeout', '0.5', ...flags, '--', process.execPath, FAKE]
  const [command, argv] = via === 'binary' ? [BINARY, args] : [process.execPath, [LAUNCHER, ...args]]
  const p = rawProcess(command, argv, { env: { ...process.env, FAKE_LOG: log, FAKE_PID: pidFile, ...env } })
  p.serverLog = () => (existsSync(log) ? readFileSync(log, 'utf8') : '')
  p.serverPid = async () => {
    for (let i = 0; i < 200 && !existsSync(pidFile); i++) await sleep(10)
    return Number(readFileSync(pidFile, 'utf8'))
  }
  return p
}

const call = (id, name, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } })
const byId = (id) => (m) => m.id === id

async function initialized(p) {
  p.send(INIT)
  await p.next(byId('init'))
  p.send({ jsonrpc: '2.0', method: 'notifications/initialized' })
}

test('an upstream crash mid-call answers the pending call and exits with the server code', async () => {
  for (const via of ['binary', 'launcher']) {
    const p = start({ via })
    await initialized(p)
    p.send(call(7, 'crash'))
    const err = await p.next(byId(7))
    assert.equal(err.error.code, -32603)
    assert.equal(err.error.message, 'The MCP server exited (code 3) before answering this request')
    assert.deepEqual(await p.exited, { code: 3, signal: null }, via)
  }
})

test('when the client goes away the server is stopped: stdin closed, then SIGTERM, then SIGKILL', async () => {
  // A well-behaved server exits on EOF and intercept exits with its code.
  let p = start()
  await initialized(p)
  let pid = await p.serverPid()
  p.close()
  assert.deepEqual(await p.exited, { code: 0, signal: null })
  assert.equal(alive(pid), false)

  // One that ignores EOF gets SIGTERM.
  p = start({ env: { FAKE_IGNORE_EOF: '1' } })
  await initialized(p)
  pid = await p.serverPid()
  p.close()
  assert.deepEqual(await p.exited, { code: 143, signal: null })
  assert.equal(alive(pid), false)
  assert.match(p.stderr(), /did not exit after its stdin closed; sending SIGTERM/)

  // One that also ignores SIGTERM is killed.
  p = start({ via: 'launcher', env: { FAKE_IGNORE_EOF: '1', FAKE_IGNORE_TERM: '1' } })
  await initialized(p)
  pid = await p.serverPid()
  p.close()
  assert.deepEqual(await p.exited, { code: 137, signal: null })
  assert.equal(alive(pid), false)
})

test('SIGTERM during a long call shuts down cleanly, binary and launcher alike', async () => {
  for (const via of ['binary', 'launcher']) {
    const p = start({ via })
    await initialized(p)
    const pid = await p.serverPid()
    p.send(call(1, 'slow'))
    await sleep(200)
    p.child.kill('SIGTERM')
    const err = await p.next(byId(1))
    assert.match(err.error.message, /before answering this request/)
    const { code } = await p.exited
    assert.equal(code, 0, `${via}: the server exited normally on EOF`)
    assert.equal(alive(pid), false, `${via}: no orphaned server`)
  }
})

test('if intercept is killed outright, the server does not outlive it', { skip: process.platform !== 'linux' }, async () => {
  const p = start({ env: { FAKE_IGNORE_EOF: '1', FAKE_IGNORE_TERM: '1' } })
  await initialized(p)
  const pid = await p.serverPid()
  p.child.kill('SIGKILL')
  await p.exited
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(20)
  assert.equal(alive(pid), false)
})

test('malformed, ambiguous and oversized messages get errors and are never forwarded', async () => {
  const p = start({ flags: ['--max-message-bytes', '2000'], env: { FAKE_BIG: '5000' } })
  await initialized(p)

  p.send('{"jsonrpc":"2.0","id":1,"method":')
  assert.equal((await p.next((m) => m.error?.code === -32700)).id, null)

  p.send('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","name":"secret","arguments":{}}}')
  let e = await p.next(byId(2))
  assert.equal(e.error.code, -32600)
  assert.match(e.error.message, /duplicate key "name"/)

  p.send('{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","NAME":"secret","arguments":{}}}')
  e = await p.next(byId(3))
  assert.match(e.error.message, /keys "name" and "NAME" differ only in case/)

  p.send('{"jsonrpc":"2.0","id":4,"method":"ping","METHOD":"tools/call","params":{"name":"secret"}}')
  e = await p.next(byId(4))
  assert.equal(e.error.code, -32600)

  p.send(call(5, 'echo', 'rm -rf /'))
  e = await p.next(byId(5))
  assert.equal(e.error.code, -32602)
  assert.equal(e.error.message, 'Invalid params: params.arguments must be an object')

  p.send({ jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 42 } })
  assert.equal((await p.next(byId(6))).error.message, 'Invalid params: params.name must be a string')

  p.send({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'echo', arguments: {} } })
  e = await p.next((m) => m.error && /must be a request with an id/.test(m.error.message))
  assert.equal(e.id, null)

  p.send(call(8, 'echo', { pad: 'y'.repeat(3000) }))
  e = await p.next(byId(8))
  assert.equal(e.error.code, -32600)
  assert.match(e.error.message, /exceeds the limit of 2000 bytes/)

  p.send(call(9, 'big'))
  e = await p.next(byId(9))
  assert.equal(e.error.code, -32603)
  assert.match(e.error.message, /response of \d+ bytes exceeds the proxy's limit of 2000 bytes/)

  // Still up, and none of the rejected messages reached the server.
  p.send(call(10, 'echo', { ok: true }))
  assert.equal((await p.next(byId(10))).result.content[0].text, 'echo {"ok":true}')
  const seen = p.serverLog()
  assert.doesNotMatch(seen, /secret|rm -rf|"id":[2345678],/)
  p.close()
  await p.exited
})

test('a batch is evaluated element by element: a denied call inside it never reaches the server', async () => {
  const p = start()
  await initialized(p)
  p.send([call(1, 'echo', { n: 1 }), call(2, 'secret'), { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } }])
  const answers = await p.next((m) => Array.isArray(m))
  assert.equal(answers.length, 1)
  assert.equal(answers[0].id, 2)
  assert.equal(answers[0].result.content[0].text, '[INTERCEPT POLICY DENIED] Tool "secret" is hidden by policy')
  assert.equal((await p.next(byId(1))).result.content[0].text, 'echo {"n":1}')
  const forwarded = p.serverLog().trim().split('\n').pop()
  assert.deepEqual(JSON.parse(forwarded).map((m) => m.id ?? m.method), [1, 'notifications/progress'])
  p.close()
  await p.exited
})

test('tools/list pages are filtered, keeping nextCursor and _meta', async () => {
  const p = start()
  await initialized(p)
  p.send({ jsonrpc: '2.0', id: 'l', method: 'tools/list' })
  const page = await p.next(byId('l'))
  assert.deepEqual(page.result.tools.map((t) => t.name), ['echo', 'crash', 'slow', 'big', 'ask'])
  assert.equal(page.result.nextCursor, 'page-2')
  assert.deepEqual(page.result._meta, { kept: true })
  p.close()
  await p.exited
})

test('a 2026-07-28 tools/call retried with inputResponses is not counted twice', async () => {
  const p = start()
  await initialized(p)
  p.send(call(1, 'ask', { amount: 5 }))
  assert.equal((await p.next(byId(1))).result.resultType, 'input_required')
  p.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'ask', arguments: { amount: 5 }, inputResponses: { confirm: { action: 'accept' } } } })
  assert.equal((await p.next(byId(2))).result.content[0].text, 'confirmed')
  // The limit of one call per hour was spent once, by that call and its retry together.
  p.send(call(3, 'ask', { amount: 5 }))
  assert.match((await p.next(byId(3))).result.content[0].text, /Rate limit of 1 per hour reached/)
  p.close()
  await p.exited
})

test('usage errors are reported on stderr with a non-zero exit, and stdout stays clean', async () => {
  const dir = tempDir()
  const bad = writeIn(dir, 'bad.yaml', 'tools:\n  t:\n    rules:\n      - action: nope\n')
  for (const [args, pattern] of [
    [['-c', bad, '--', 'true'], /bad\.yaml:4:17: tools\.t\.rules\[0\]: action must be/],
    [['-c', writeIn(dir, 'ok.yaml', 'tools: {}\n')], /specify the MCP server command after --/],
    [['-c', writeIn(dir, 'ok2.yaml', 'tools: {}\n'), '--', 'no-such-command-xyz'], /cannot find the upstream command "no-such-command-xyz" on PATH/],
  ]) {
    const p = rawProcess(BINARY, args)
    const { code } = await p.exited
    assert.equal(code, 2, args.join(' '))
    assert.match(p.stderr(), pattern)
    assert.deepEqual(p.lines, [])
  }
})

test('an 8 MB result reaches a slow reader intact through the npm launcher', async () => {
  const p = start({ via: 'launcher', env: { FAKE_BIG: String(8 * 1024 * 1024) } })
  await initialized(p)
  p.child.stdout.pause()
  p.send(call(1, 'big'))
  await sleep(1000) // the pipe fills; writes must block, not fail with EAGAIN
  p.child.stdout.resume()
  const r = await p.next(byId(1), 30000)
  assert.equal(r.result.content[0].text.length, 8 * 1024 * 1024)
  p.close()
  assert.equal((await p.exited).code, 0)
})
