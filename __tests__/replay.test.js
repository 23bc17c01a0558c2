'use strict'
// intercept replay: a session recorded through the real binary, replayed against a
// stricter candidate policy.
const test = require('node:test')
const assert = require('node:assert/strict')
const { join } = require('node:path')
const { spawnSync } = require('node:child_process')
const { CallToolResultSchema } = require('@modelcontextprotocol/sdk/types.js')
const { tempDir, writeIn } = require('./helpers.js')
const { BINARY, connectMemory } = require('./mcp.js')

const RECORDED = `
tools:
  read_graph:
    rules:
      - name: graph reads
        rate_limit: 3/hour
  delete_entities:
    rules:
      - name: never delete
        action: deny
`

const CANDIDATE = `
tools:
  read_graph:
    rules:
      - name: fewer graph reads
        rate_limit: 2/hour
  search_nodes:
    rules:
      - name: short queries
        conditions:
          - path: args.query
            op: regex
            value: "^[a-z]{1,3}$"
  create_entities:
    rules:
      - name: no creating
        action: deny
`

async function record(dir, log, flags, body) {
  const client = await connectMemory({ dir, policy: RECORDED, flags: ['--audit-log', log, ...flags] })
  try {
    await body(client)
  } finally {
    await client.close()
  }
}

test('replay shows which recorded calls a stricter policy would decide differently', async () => {
  const dir = tempDir()
  const withArgs = join(dir, 'with-args.jsonl')
  await record(dir, withArgs, ['--log-args'], async (client) => {
    await client.callTool({ name: 'create_entities', arguments: { entities: [{ name: 'ada', entityType: 'person', observations: [] }] } })
    // Answered with a JSON-RPC error: its count is given back, in the replay too.
    await assert.rejects(
      client.request({ method: 'tools/call', params: { name: 'read_graph', arguments: {}, task: { ttl: 1000 } } }, CallToolResultSchema),
    )
    await client.callTool({ name: 'read_graph', arguments: {} })
    await client.callTool({ name: 'read_graph', arguments: {} })
    await client.callTool({ name: 'search_nodes', arguments: { query: 'ada' } })
    await client.callTool({ name: 'search_nodes', arguments: { query: 'toolong', api_key: 'sk-live-123' } })
    await client.callTool({ name: 'delete_entities', arguments: { entityNames: ['ada'] } })
  })
  const withoutArgs = join(dir, 'without-args.jsonl')
  await record(dir, withoutArgs, [], async (client) => {
    await client.callTool({ name: 'read_graph', arguments: {} })
  })
  const candidate = writeIn(dir, 'candidate.yaml', CANDIDATE)

  const r = spawnSync(BINARY, ['replay', '-c', candidate, withArgs, withoutArgs, '--json'], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  const report = JSON.parse(r.stdout)
  assert.deepEqual(
    {
      replayed: report.replayed,
      skipped: report.skipped,
      unchanged: report.unchanged,
      allow_to_deny: report.allow_to_deny,
      deny_to_allow: report.deny_to_allow,
      other_changes: report.other_changes,
      args_redacted: report.args_redacted,
    },
    { replayed: 7, skipped: 1, unchanged: 4, allow_to_deny: 2, deny_to_allow: 1, other_changes: 0, args_redacted: 1 },
  )
  assert.deepEqual(
    report.changes.map((c) => [c.tool, c.before.decision, c.after.decision, c.after.rule ?? c.before.rule, c.args_redacted]),
    [
      ['create_entities', 'allow', 'deny', 'no creating', false],
      ['search_nodes', 'allow', 'deny', 'short queries', true],
      ['delete_entities', 'deny', 'allow', 'never delete', false],
    ],
  )
  assert.equal(report.changes[2].before.rule, 'never delete')
  for (const c of report.changes) {
    assert.match(c.ts, /^\d{4}-\d\d-\d\dT/)
    assert.equal(c.file, withArgs)
  }

  const text = spawnSync(BINARY, ['replay', '-c', candidate, withArgs, withoutArgs], { encoding: 'utf8' })
  assert.equal(text.status, 0, text.stderr)
  assert.match(text.stdout, /Replayed 7 call\(s\)/)
  assert.match(text.stdout, /Skipped 1 call\(s\) recorded without arguments/)
  assert.match(text.stdout, /allow → deny +2\n/)
  assert.match(text.stdout, /deny → allow +1\n/)
  assert.match(text.stdout, /create_entities +allow → deny +no creating +Denied by rule "no creating"/)
})

test('replay refuses an invalid candidate with every error', () => {
  const dir = tempDir()
  const candidate = writeIn(dir, 'bad.yaml', 'tools:\n  t:\n    rules:\n      - action: deny\n        mode: shadwo\n')
  const events = writeIn(dir, 'e.jsonl', '')
  const r = spawnSync(BINARY, ['replay', '-c', candidate, events], { encoding: 'utf8' })
  assert.equal(r.status, 2)
  assert.match(r.stderr, /bad\.yaml:5:15: .*did you mean "shadow"/)
})
