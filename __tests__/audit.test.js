'use strict'
// The audit log through the real binary and a real MCP client, and its tamper evidence.
const test = require('node:test')
const assert = require('node:assert/strict')
const { readFileSync, writeFileSync, statSync, readdirSync, utimesSync, existsSync, mkdirSync } = require('node:fs')
const { join } = require('node:path')
const { spawnSync } = require('node:child_process')
const { CallToolResultSchema } = require('@modelcontextprotocol/sdk/types.js')
const { tempDir, writeIn } = require('./helpers.js')
const { BINARY, SERVERS, INIT, connect, rawProcess, connectMemory, auditEvents: events } = require('./mcp.js')

const POLICY = `
tools:
  read_graph:
    rules:
      - name: graph reads
        rate_limit: 2/hour
  delete_entities:
    rules:
      - name: never delete
        action: deny
`


async function session(dir, flags) {
  const log = join(dir, 'events.jsonl')
  const client = await connectMemory({ dir, policy: POLICY, flags: ['--audit-log', log, ...flags] })
  await client.callTool({ name: 'read_graph', arguments: {} })
  await assert.rejects(
    client.request({ method: 'tools/call', params: { name: 'read_graph', arguments: {}, task: { ttl: 1000 } } }, CallToolResultSchema),
  )
  await client.callTool({ name: 'read_graph', arguments: {} })
  await client.callTool({ name: 'read_graph', arguments: {} })
  await client.callTool({ name: 'delete_entities', arguments: { entityNames: ['x'], api_key: 'sk-live-123' } })
  await client.close()
  return log
}

test('every decision and outcome of a session is in the audit log, without raw arguments', async () => {
  const dir = tempDir()
  const log = await session(dir, [])
  const all = events(log)
  assert.deepEqual(all.map((e) => e.type), [
    'startup',
    'tool_call', 'tool_result', // read_graph: allowed, ok
    'tool_call', 'tool_result', // task call: allowed, JSON-RPC error (quota given back)
    'tool_call', 'tool_result', // read_graph again: allowed
    'tool_call', // third read: rate limited
    'tool_call', // delete: denied
    'counters', // every counter's value, at shutdown (and every minute)
    'shutdown',
  ])
  const [startup] = all
  assert.equal(startup.state, 'memory')
  assert.match(startup.policy_sha256, /^[0-9a-f]{64}$/)
  assert.equal(startup.server.includes('server-memory'), true)
  const calls = all.filter((e) => e.type === 'tool_call')
  assert.deepEqual(calls.map((e) => e.decision), ['allow', 'allow', 'allow', 'deny', 'deny'])
  assert.equal(calls[3].reason, 'rate_limit')
  assert.equal(calls[3].rule, 'graph reads')
  assert.equal(calls[3].message, 'Rate limit of 2 per hour reached. Try again later.')
  assert.ok(calls[3].retry_after_seconds > 0)
  assert.equal(calls[4].rule, 'never delete')
  assert.equal(calls[4].client, 'intercept-tests')
  for (const c of calls) {
    assert.match(c.args_hash, /^sha256:[0-9a-f]{64}$/)
    assert.equal(typeof c.latency_us, 'number')
    assert.equal(c.args, undefined, 'no raw arguments without --log-args')
    assert.equal(c.instance, startup.instance)
  }
  const results = all.filter((e) => e.type === 'tool_result')
  assert.deepEqual(results.map((e) => e.outcome), ['ok', 'error', 'ok'])
  assert.deepEqual(results.map((e) => e.reservation), ['committed', 'rolled_back', 'committed'])
  assert.ok(results.every((r) => typeof r.duration_ms === 'number' && r.session === startup.session))
  const [counters] = all.filter((e) => e.type === 'counters')
  assert.deepEqual(counters.counters, [
    { tool: 'read_graph', counter: '_rate_hour', scope: 'global', window: 'hour', limit: 2, value: 2 },
  ])
  assert.doesNotMatch(readFileSync(log, 'utf8'), /sk-live-123/)
  assert.equal(all.at(-1).exit_code, 0)
  if (process.platform !== 'win32') assert.equal(statSync(log).mode & 0o777, 0o600)
})

test('--log-args records arguments with secrets redacted', async () => {
  const dir = tempDir()
  const log = await session(dir, ['--log-args'])
  const del = events(log).find((e) => e.tool === 'delete_entities')
  assert.deepEqual(del.args, { entityNames: ['x'], api_key: '[REDACTED]' })
  assert.doesNotMatch(readFileSync(log, 'utf8'), /sk-live-123/)
})

test('intercept audit verify finds the first changed, removed or inserted line', async () => {
  const dir = tempDir()
  const log = await session(dir, [])
  const verify = (file) => spawnSync(BINARY, ['audit', 'verify', file], { encoding: 'utf8' })
  let r = verify(log)
  assert.equal(r.status, 0, r.stdout)
  assert.match(r.stdout, /11 events, chain intact/)

  const lines = readFileSync(log, 'utf8').trim().split('\n')
  const edited = join(dir, 'edited.jsonl')
  writeFileSync(edited, [...lines.slice(0, 7), lines[7].replace('"deny"', '"allow"'), ...lines.slice(8)].join('\n') + '\n')
  r = verify(edited)
  assert.equal(r.status, 1)
  assert.match(r.stdout, /edited\.jsonl:9: its prev hash does not match the line before it/)

  const removed = join(dir, 'removed.jsonl')
  writeFileSync(removed, [...lines.slice(0, 3), ...lines.slice(4)].join('\n') + '\n')
  r = verify(removed)
  assert.match(r.stdout, /removed\.jsonl:4: seq 5 follows seq 3: a line before it was removed/)

  const inserted = join(dir, 'inserted.jsonl')
  const fake = JSON.stringify({ ...JSON.parse(lines[2]), tool: 'forged' })
  writeFileSync(inserted, [...lines.slice(0, 3), fake, ...lines.slice(3)].join('\n') + '\n')
  r = verify(inserted)
  assert.equal(r.status, 1)
  assert.match(r.stdout, /inserted\.jsonl:4: /)
})

const DENY_POLICY = `
tools:
  echo:
    rules:
      - name: no shell expansions
        conditions:
          - {path: args.message, op: regex, value: '^[^$]*$'}
        on_deny: Messages must not contain shell expansions
`

const status = (dir, ...flags) => spawnSync(BINARY, ['status', '--audit-dir', dir, ...flags], { encoding: 'utf8' })
const statusJson = (dir) => JSON.parse(status(dir, '--json').stdout)

/** Polls `status --json` until `ready(summary)`: events reach the file within 50 ms. */
async function statusWhen(dir, ready) {
  for (let i = 0; ; i++) {
    const s = statusJson(dir)
    if (ready(s)) return s
    if (i > 200) assert.fail(`status never became ready: ${JSON.stringify(s, null, 1)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('intercept status summarises two instances running at once, then one stopped and one killed', async () => {
  const dir = tempDir()
  const events = join(dir, 'events')
  const open = () => connect({ via: 'binary', dir, policy: DENY_POLICY, flags: ['--audit-dir', events] })
  const [a, b] = await Promise.all([open(), open()])
  await a.callTool({ name: 'echo', arguments: { message: 'hi' } })
  await a.callTool({ name: 'echo', arguments: { message: '$(id)' } })
  for (let i = 0; i < 3; i++) await b.callTool({ name: 'echo', arguments: { message: `b${i}` } })
  await b.callTool({ name: 'echo', arguments: { message: '${HOME}' } })

  const s = await statusWhen(events, (s) => s.totals?.calls === 6)
  assert.equal(s.files, 2, 'one file per instance')
  assert.equal(s.instances.length, 2)
  assert.deepEqual(s.instances.map((i) => i.status), ['alive', 'alive'])
  assert.deepEqual(s.instances.map((i) => i.calls).sort(), [2, 4])
  for (const i of s.instances) {
    assert.match(i.id, /^[0-9a-f]{8}$/)
    assert.equal(i.state, 'memory')
    assert.equal(i.fail_mode, 'closed', 'from the startup event')
    assert.ok(i.server.includes('server-everything'))
    assert.equal(typeof i.pid, 'number')
  }
  assert.equal(s.totals.denied, 2)
  assert.equal(s.totals.allowed, 4)
  assert.equal(s.totals.denied_share, 2 / 6)
  assert.equal(s.totals.calls_per_minute, 6 / 5)
  assert.deepEqual(s.top_deny_rules, [{ rule: 'no shell expansions', count: 2 }])
  assert.equal(s.recent_denials.length, 2)
  assert.deepEqual(new Set(s.recent_denials.map((d) => d.instance)), new Set(s.instances.map((i) => i.id)))
  assert.ok(s.recent_denials.every((d) => d.tool === 'echo' && d.message === 'Messages must not contain shell expansions'))
  assert.ok(s.recent_denials[0].ts >= s.recent_denials[1].ts, 'newest first')

  const text = status(events)
  assert.equal(text.status, 0, text.stderr)
  assert.match(text.stdout, /^Instances\n  ID +STATUS +SERVER +PID +STATE +FAIL MODE +CALLS +DENIED +LAST SEEN\n/)
  for (const i of s.instances) assert.match(text.stdout, new RegExp(`\\n  ${i.id}  alive  .* ${i.pid} +memory +closed +${i.calls} +${i.denied} +\\d+s ago\\n`))
  assert.match(text.stdout, /\n  Total: +6\n/)
  assert.match(text.stdout, /\n  Denied: +2 \(33\.3%\)\n/)
  assert.match(text.stdout, /\n  Calls\/min \(last 5 min\): +1\.2\n/)
  assert.match(text.stdout, /\nTop deny rules\n  RULE +COUNT\n  no shell expansions  2\n/)
  assert.match(text.stdout, /\nRecent denied calls\n  TIME \(UTC\) +INSTANCE +TOOL +RULE +MESSAGE\n(  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  [0-9a-f]{8}  echo  no shell expansions  Messages must not contain shell expansions\n){2}/)

  // One instance ends normally, another is killed outright.
  await a.close()
  const killed = rawProcess(BINARY, ['-c', writeIn(dir, 'p.yaml', DENY_POLICY), '--state', 'memory', '--audit-dir', events, '--', process.execPath, ...SERVERS.everything])
  killed.send(INIT)
  await killed.next((m) => m.id === 'init')
  await statusWhen(events, (s) => s.instances.length === 3)
  killed.child.kill('SIGKILL')
  await killed.exited
  const after = statusJson(events)
  const by = (pid) => after.instances.find((i) => i.pid === pid)
  assert.equal(by(killed.child.pid).status, 'gone')
  assert.equal(after.instances.filter((i) => i.status === 'stopped').length, 1)
  assert.equal(after.instances.filter((i) => i.status === 'alive').length, 1)
  await b.close()
})

test('intercept status with no event files says so', () => {
  const dir = tempDir()
  const r = status(dir)
  assert.equal(r.status, 0)
  assert.equal(r.stdout, `No event data found in ${dir}\n`)
  assert.deepEqual(statusJson(dir).instances, [])
})

test('with --audit-required, an audit log that cannot be written denies every call', { skip: process.platform !== 'linux' }, async () => {
  const dir = tempDir()
  // Writes to /dev/full always fail (ENOSPC).
  const required = await connect({ via: 'binary', dir, policy: DENY_POLICY, flags: ['--audit-log', '/dev/full', '--audit-required'] })
  const r = await required.callTool({ name: 'echo', arguments: { message: 'hi' } })
  assert.equal(r.isError, true)
  assert.match(r.content[0].text, /^\[INTERCEPT POLICY DENIED\] The audit log \(\/dev\/full\) cannot be written and --audit-required is set/)
  assert.equal(r._meta['dev.policylayer/intercept'].reason, 'audit_unavailable')
  assert.match(required.stderrText(), /writing the audit log \/dev\/full failed/)
  await required.close()

  // Without it, the call goes through and stderr says what is wrong.
  const lenient = await connect({ via: 'binary', dir, policy: DENY_POLICY, flags: ['--audit-log', '/dev/full'] })
  const ok = await lenient.callTool({ name: 'echo', arguments: { message: 'hi' } })
  assert.deepEqual(ok.content, [{ type: 'text', text: 'Echo: hi' }])
  await lenient.close()
  assert.match(lenient.stderrText(), /writing the audit log \/dev\/full failed/)
})

test('event files older than the retention period are pruned at start-up', async () => {
  const dir = tempDir()
  const events = join(dir, 'events')
  mkdirSync(events)
  const day = 24 * 3600
  const now = Date.now() / 1000
  const old = writeIn(dir, 'events/0badc0de.jsonl', '{}\n')
  const recent = writeIn(dir, 'events/5ca1ab1e.jsonl', '{}\n')
  const other = writeIn(dir, 'events/notes.txt', 'kept\n')
  utimesSync(old, now - 8 * day, now - 8 * day)
  utimesSync(recent, now - 6 * day, now - 6 * day)
  utimesSync(other, now - 30 * day, now - 30 * day)
  const client = await connect({ via: 'binary', dir, policy: DENY_POLICY, flags: ['--audit-dir', events] })
  await client.close()
  const left = readdirSync(events).sort()
  assert.equal(existsSync(old), false, 'an 8-day-old file is pruned')
  assert.ok(left.includes('5ca1ab1e.jsonl') && left.includes('notes.txt'))
  assert.equal(left.length, 3, 'and this instance has its own file')

  // A shorter retention prunes more.
  const again = await connect({ via: 'binary', dir, policy: DENY_POLICY, flags: ['--audit-dir', events, '--audit-retention', '5d'] })
  await again.close()
  assert.equal(existsSync(recent), false)
})

test('by default the audit log is in ~/.intercept/events, private to its owner', { skip: process.platform === 'win32' }, async () => {
  const home = tempDir()
  const client = await connect({ via: 'binary', dir: home, policy: DENY_POLICY, env: { HOME: home, INTERCEPT_AUDIT_DIR: undefined } })
  await client.callTool({ name: 'echo', arguments: { message: 'hi' } })
  await client.close()
  const dir = join(home, '.intercept', 'events')
  const files = readdirSync(dir)
  assert.equal(files.length, 1)
  assert.match(files[0], /^[0-9a-f]{8}\.jsonl$/)
  assert.equal(statSync(dir).mode & 0o777, 0o700)
  assert.equal(statSync(join(dir, files[0])).mode & 0o777, 0o600)
  const types = events(join(dir, files[0])).map((e) => e.type)
  assert.deepEqual(types, ['startup', 'tool_call', 'tool_result', 'shutdown'])

  // --no-audit keeps none.
  const home2 = tempDir()
  const off = await connect({ via: 'binary', dir: home2, policy: DENY_POLICY, flags: ['--no-audit'], env: { HOME: home2, INTERCEPT_AUDIT_DIR: undefined } })
  await off.callTool({ name: 'echo', arguments: { message: 'hi' } })
  await off.close()
  assert.equal(existsSync(join(home2, '.intercept', 'events')), false)
})
