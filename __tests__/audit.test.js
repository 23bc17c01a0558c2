'use strict'
// The audit log through the real binary and a real MCP client, and its tamper evidence.
const test = require('node:test')
const assert = require('node:assert/strict')
const { readFileSync, writeFileSync, statSync } = require('node:fs')
const { join } = require('node:path')
const { spawnSync } = require('node:child_process')
const { CallToolResultSchema } = require('@modelcontextprotocol/sdk/types.js')
const { tempDir } = require('./helpers.js')
const { BINARY, connect } = require('./mcp.js')

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

const events = (file) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))

async function session(dir, flags) {
  const log = join(dir, 'events.jsonl')
  const client = await connect({
    via: 'binary',
    dir,
    policy: POLICY,
    server: 'memory',
    flags: ['--audit-log', log, ...flags],
    env: { MEMORY_FILE_PATH: join(dir, 'memory.json') },
  })
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
  assert.ok(results.every((r) => typeof r.duration_ms === 'number'))
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
  assert.match(r.stdout, /10 events, chain intact/)

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
