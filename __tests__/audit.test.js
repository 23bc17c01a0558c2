'use strict'
// The audit log through the real binary and a real MCP client, and its tamper evidence.
const test = require('node:test')
const assert = require('node:assert/strict')
const { readFileSync, writeFileSync, statSync, readdirSync, utimesSync, existsSync, mkdirSync, copyFileSync, chmodSync } = require('node:fs')
const { createHash } = require('node:crypto')
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
    'seal', // the log was closed: written last
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
  assert.equal(all.at(-2).exit_code, 0)
  assert.equal(all.at(-1).lines, all.length)
  if (process.platform !== 'win32') assert.equal(statSync(log).mode & 0o777, 0o600)
})

test('--log-args records arguments with secrets redacted', async () => {
  const dir = tempDir()
  const log = await session(dir, ['--log-args'])
  const del = events(log).find((e) => e.tool === 'delete_entities')
  assert.deepEqual(del.args, { entityNames: ['x'], api_key: '[REDACTED]' })
  assert.doesNotMatch(readFileSync(log, 'utf8'), /sk-live-123/)
})

const verify = (args, env = {}) =>
  spawnSync(BINARY, ['audit', 'verify', ...args], { encoding: 'utf8', env: { ...process.env, INTERCEPT_AUDIT_KEY: undefined, ...env } })

/** Writes `lines` as the event file `name` in `dir`, with a copy of `from`'s seal file unless told not to. */
function copyLog(dir, name, lines, from, { seal = true } = {}) {
  const file = join(dir, name)
  writeFileSync(file, lines.join('\n') + '\n')
  if (seal) copyFileSync(`${from}.seal`, `${file}.seal`)
  return file
}

/**
 * What someone who can edit the file but holds no key can do: recompute every line's
 * SHA-256 from line `from` (0-based) on, as the writer does: over the line without its last
 * member, `prev` set to the line before's new hash. `member` is the name given to the hash.
 */
function rechain(lines, from, member) {
  const out = [...lines]
  for (let i = from; i < out.length; i++) {
    const prev = i === 0 ? '' : out[i - 1].slice(-66, -2)
    const body = out[i].slice(0, -75).replace(/"prev":"[0-9a-f]*"/, `"prev":"${prev}"`)
    out[i] = `${body},"${member ?? out[i].slice(-73, -69)}":"${createHash('sha256').update(body + '}').digest('hex')}"}`
  }
  return out
}

/** The seal file a keyless editor writes for `lines`. */
function plainSeal(file, lines) {
  writeFileSync(`${file}.seal`, JSON.stringify({ lines: lines.length, head: lines.at(-1).slice(-66, -2) }) + '\n')
}

test('intercept audit verify names a changed line itself, and finds removed, inserted and re-hashed lines', async () => {
  const dir = tempDir()
  const log = await session(dir, [])
  let r = verify([log])
  assert.equal(r.status, 0, r.stdout)
  assert.equal(r.stdout, `${log}: 12 events, chain intact (not keyed: SHA-256)\n${log}: seal file matches (12 lines sealed)\n`)
  if (process.platform !== 'win32') assert.equal(statSync(`${log}.seal`).mode & 0o777, 0o600)

  const lines = readFileSync(log, 'utf8').trim().split('\n')
  assert.match(lines[7], /"decision":"deny"/)
  const edited = copyLog(dir, 'edited.jsonl', lines.with(7, lines[7].replace('"deny"', '"allow"')), log)
  r = verify([edited])
  assert.equal(r.status, 1)
  assert.equal(r.stdout, `${edited}:8: its hash does not match its content: this line was changed\n`)

  // The same change with line 8's hash recomputed: line 9 no longer links to it.
  const rehashed = copyLog(dir, 'rehashed.jsonl', rechain(lines.with(7, lines[7].replace('"deny"', '"allow"')), 7).slice(0, 8).concat(lines.slice(8)), log)
  r = verify([rehashed])
  assert.equal(r.status, 1)
  assert.match(r.stdout, /rehashed\.jsonl:8: its hash was recomputed: line 9's prev does not match it/)

  const removed = copyLog(dir, 'removed.jsonl', lines.toSpliced(3, 1), log)
  r = verify([removed])
  assert.equal(r.status, 1)
  assert.match(r.stdout, /removed\.jsonl:4: seq 5 follows seq 3: a line before it was removed/)

  const fake = JSON.stringify({ ...JSON.parse(lines[2]), tool: 'forged' })
  const inserted = copyLog(dir, 'inserted.jsonl', lines.toSpliced(3, 0, fake), log)
  r = verify([inserted])
  assert.equal(r.status, 1)
  assert.match(r.stdout, /inserted\.jsonl:4: its hash does not match its content/)
})

test('lines cut from the end of an audit log are found by its seal file', async () => {
  const dir = tempDir()
  const log = await session(dir, [])
  const lines = readFileSync(log, 'utf8').trim().split('\n')
  const cut = copyLog(dir, 'cut.jsonl', lines.slice(0, -2), log)
  let r = verify([cut])
  assert.equal(r.status, 1)
  assert.equal(r.stdout, `${cut}: truncated: 12 lines expected, 10 found (the seal file counts 12): lines were cut from the end\n`)

  // Without its seal file the cut cannot be proved: said, with a non-zero exit.
  const bare = copyLog(dir, 'bare.jsonl', lines.slice(0, -2), log, { seal: false })
  r = verify([bare])
  assert.equal(r.status, 3)
  assert.match(r.stdout, /bare\.jsonl: warning: no seal file \(.*bare\.jsonl\.seal\): lines cut from the end cannot be detected\n/)
  assert.match(r.stdout, /bare\.jsonl: warning: the log ends without a seal: it may have been cut, or the proxy was killed\n/)

  // Rewriting the whole chain to hide the edit does not match the seal file either.
  const rewritten = copyLog(dir, 'rewritten.jsonl', rechain(lines.with(7, lines[7].replace('"deny"', '"allow"')), 7), log)
  r = verify([rewritten])
  assert.equal(r.status, 1)
  assert.match(r.stdout, /rewritten\.jsonl: the seal file does not match the log: line 12 is not the line it sealed/)
  // Without a key, nothing stops the seal file being rewritten too: see the keyed log below.
  plainSeal(rewritten, rechain(lines.with(7, lines[7].replace('"deny"', '"allow"')), 7))
  assert.equal(verify([rewritten]).status, 0)
})

test('a keyed audit log verifies only with its key, and an edit with a recomputed chain is caught', async () => {
  const dir = tempDir()
  const keyFile = join(dir, 'audit.key')
  const key = 'k3y-0f-the-audit-log-' + Math.random().toString(36).slice(2)
  writeFileSync(keyFile, key + '\n', { mode: 0o600 })
  const log = await session(dir, ['--audit-key-file', keyFile])
  const text = readFileSync(log, 'utf8')
  assert.doesNotMatch(text + readFileSync(`${log}.seal`, 'utf8'), new RegExp(key))
  assert.match(text, /"hmac":"[0-9a-f]{64}"\}\n$/)
  const keyId = JSON.parse(readFileSync(`${log}.seal`, 'utf8')).key_id
  assert.match(keyId, /^[0-9a-f]{16}$/)

  let r = verify(['--key-file', keyFile, log])
  assert.equal(r.status, 0, r.stdout)
  assert.equal(r.stdout, `${log}: 12 events, chain intact (keyed: HMAC-SHA256, key id ${keyId})\n${log}: seal file matches (12 lines sealed)\n`)
  assert.equal(verify([log], { INTERCEPT_AUDIT_KEY: key }).status, 0, 'the key from the environment')

  r = verify([log])
  assert.equal(r.status, 3)
  assert.match(r.stdout, /12 events, keyed: HMAC-SHA256, key id [0-9a-f]{16}: cannot check the keyed chain without its key \(INTERCEPT_AUDIT_KEY or --key-file\)/)

  r = verify([log], { INTERCEPT_AUDIT_KEY: 'not-the-key-of-this-log' })
  assert.equal(r.status, 1)
  assert.match(r.stdout, new RegExp(`wrong key: the log was written with key id ${keyId}, and the key given has id [0-9a-f]{16}\n`))

  // An editor without the key recomputes the chain as SHA-256, keeping the "hmac" names...
  const lines = text.trim().split('\n')
  const forged = copyLog(dir, 'forged.jsonl', rechain(lines.with(7, lines[7].replace('"deny"', '"allow"')), 7), log)
  r = verify(['--key-file', keyFile, forged])
  assert.equal(r.status, 1)
  assert.equal(r.stdout, `${forged}:8: its HMAC does not match its content: this line was changed\n`)
  // ...or as a plain log, with a plain seal file: only a key-less check would pass it.
  const plain = rechain(lines.with(7, lines[7].replace('"deny"', '"allow"')), 0, 'hash')
  const downgraded = copyLog(dir, 'downgraded.jsonl', plain, log, { seal: false })
  plainSeal(downgraded, plain)
  assert.equal(verify([downgraded]).status, 0)
  r = verify(['--key-file', keyFile, downgraded])
  assert.equal(r.status, 1)
  assert.match(r.stdout, /downgraded\.jsonl:1: it is not keyed \(a plain SHA-256 "hash"\) but a key was given/)

  // Cutting lines and rewriting the seal file needs the key for its MAC.
  const cut = copyLog(dir, 'cut.jsonl', lines.slice(0, -3), log)
  writeFileSync(`${cut}.seal`, JSON.stringify({ ...JSON.parse(readFileSync(`${log}.seal`, 'utf8')), lines: 9, head: lines[8].slice(-66, -2) }))
  r = verify(['--key-file', keyFile, cut])
  assert.equal(r.status, 1)
  assert.match(r.stdout, /cut\.jsonl: the seal file does not match the log: its MAC does not match its contents: it was rewritten/)
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
  assert.equal(left.length, 4, 'and this instance has its own file, and its seal file')

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
  const files = readdirSync(dir).sort()
  assert.equal(files.length, 2)
  assert.match(files[0], /^[0-9a-f]{8}\.jsonl$/)
  assert.equal(files[1], `${files[0]}.seal`)
  assert.equal(statSync(dir).mode & 0o777, 0o700)
  assert.equal(statSync(join(dir, files[0])).mode & 0o777, 0o600)
  const types = events(join(dir, files[0])).map((e) => e.type)
  assert.deepEqual(types, ['startup', 'tool_call', 'tool_result', 'shutdown', 'seal'])

  // --no-audit keeps none.
  const home2 = tempDir()
  const off = await connect({ via: 'binary', dir: home2, policy: DENY_POLICY, flags: ['--no-audit'], env: { HOME: home2, INTERCEPT_AUDIT_DIR: undefined } })
  await off.callTool({ name: 'echo', arguments: { message: 'hi' } })
  await off.close()
  assert.equal(existsSync(join(home2, '.intercept', 'events')), false)
})

test('an audit key must be private and long enough, and goes nowhere: not in the log, on stderr or to the server', { skip: process.platform === 'win32' }, async () => {
  const dir = tempDir()
  const policy = writeIn(dir, 'p.yaml', DENY_POLICY)
  const keyFile = join(dir, 'shared.key')
  writeFileSync(keyFile, 'a-key-that-others-can-read\n', { mode: 0o644 })
  const start = (flags, env = {}) =>
    spawnSync(BINARY, ['-c', policy, '--state', 'memory', '--audit-log', join(dir, 'x.jsonl'), ...flags, '--', 'no-such-command-xyz'], {
      encoding: 'utf8',
      env: { ...process.env, INTERCEPT_AUDIT_KEY: undefined, ...env },
    })
  let r = start(['--audit-key-file', keyFile])
  assert.equal(r.status, 2)
  assert.match(r.stderr, new RegExp(`the audit key file ${keyFile} can be read by others \\(mode 0644\\); make it private: chmod 600 ${keyFile}`))
  r = start([], { INTERCEPT_AUDIT_KEY: 'short' })
  assert.equal(r.status, 2)
  assert.match(r.stderr, /the audit key from INTERCEPT_AUDIT_KEY is too short \(5 bytes\): use at least 16/)
  chmodSync(keyFile, 0o600)
  r = start(['--audit-key-file', keyFile], { INTERCEPT_AUDIT_KEY: 'another-key-0123456789' })
  assert.equal(r.status, 2)
  assert.match(r.stderr, /both INTERCEPT_AUDIT_KEY and --audit-key-file give an audit key: use one/)
  r = verify(['--key-file', join(dir, 'missing.key'), join(dir, 'x.jsonl')])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /cannot read the audit key file .*missing\.key/)

  const key = 'env-k3y-' + Math.random().toString(36).slice(2) + '-0123456789'
  const log = join(dir, 'events.jsonl')
  const client = await connect({ via: 'binary', dir, policy: DENY_POLICY, flags: ['--audit-log', log], env: { INTERCEPT_AUDIT_KEY: key } })
  const env = await client.callTool({ name: 'get-env', arguments: {} })
  assert.match(env.content[0].text, /"PATH"/, 'the server printed its environment')
  assert.doesNotMatch(env.content[0].text, /INTERCEPT_AUDIT_KEY/)
  assert.doesNotMatch(env.content[0].text, new RegExp(key))
  await client.close()
  assert.doesNotMatch(client.stderrText(), new RegExp(key))
  assert.doesNotMatch(readFileSync(log, 'utf8') + readFileSync(`${log}.seal`, 'utf8'), new RegExp(key))
  assert.equal(verify([log], { INTERCEPT_AUDIT_KEY: key }).status, 0)
})

test('intercept status skips a line whose time holds a multi-byte character', () => {
  const dir = tempDir()
  writeIn(dir, 'abcd1234.jsonl', [
    { seq: 1, prev: '', ts: '2026-11-25T06:40:12é0:00', type: 'startup', instance: 'abcd1234' },
    { seq: 2, prev: '', ts: '2026-11-25T06:40:13.000Z', type: 'tool_call', instance: 'abcd1234', tool: 't', decision: 'allow' },
  ].map((e) => JSON.stringify(e)).join('\n') + '\n')
  const r = status(dir)
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /\n  Total: +1\n/)
  assert.match(r.stdout, /\n1 unreadable line\(s\) skipped/)
  const s = statusJson(dir)
  assert.equal(s.skipped_lines, 1)
  assert.equal(s.totals.first_event, '2026-11-25T06:40:13.000Z')
})
