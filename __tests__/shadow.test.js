'use strict'
// Shadow mode through the real binary and the MCP SDK client: the call goes through and
// the audit log says what the policy would have done.
const test = require('node:test')
const assert = require('node:assert/strict')
const { join } = require('node:path')
const { tempDir } = require('./helpers.js')
const { connectMemory, auditEvents: events } = require('./mcp.js')


const denied = (r) => r.isError === true && /\[INTERCEPT POLICY DENIED\]/.test(r.content?.[0]?.text ?? '')

async function session(dir, policy, flags, body) {
  const log = join(dir, 'events.jsonl')
  const client = await connectMemory({ dir, policy, flags: ['--audit-log', log, ...flags] })
  try {
    await body(client)
  } finally {
    await client.close()
  }
  return events(log).filter((e) => e.type === 'tool_call')
}

const entity = { name: 'ada', entityType: 'person', observations: ['wrote the first program'] }

test('mode: shadow rules let calls through and log shadow_deny', async () => {
  const policy = `
tools:
  delete_entities:
    rules:
      - name: never delete
        action: deny
        mode: shadow
  read_graph:
    rules:
      - name: one read an hour
        mode: shadow
        rate_limit: 1/hour
`
  const calls = await session(tempDir(), policy, [], async (client) => {
    assert.ok(!denied(await client.callTool({ name: 'create_entities', arguments: { entities: [entity] } })))
    const del = await client.callTool({ name: 'delete_entities', arguments: { entityNames: ['ada'] } })
    assert.ok(!denied(del), 'a shadow deny goes through')
    const first = await client.callTool({ name: 'read_graph', arguments: {} })
    assert.deepEqual(JSON.parse(first.content[0].text).entities, [], 'the delete really ran')
    assert.ok(!denied(await client.callTool({ name: 'read_graph', arguments: {} })), 'over the shadow limit, still through')
  })
  assert.deepEqual(
    calls.map((c) => [c.tool, c.decision, c.rule ?? null, c.reason]),
    [
      ['create_entities', 'allow', null, 'default_allow'],
      ['delete_entities', 'shadow_deny', 'never delete', 'rule'],
      ['read_graph', 'allow', 'one read an hour', 'rule'],
      ['read_graph', 'shadow_deny', 'one read an hour', 'rate_limit'],
    ],
  )
  assert.ok(calls[3].retry_after_seconds > 0)
})

test('--shadow puts the whole policy in shadow mode, tools/list included', async () => {
  const policy = `
hide: [delete_entities]
tools:
  read_graph:
    rules:
      - name: no reads
        action: deny
`
  const calls = await session(tempDir(), policy, ['--shadow'], async (client) => {
    const { tools } = await client.listTools()
    assert.ok(tools.some((t) => t.name === 'delete_entities'), 'nothing is hidden in shadow mode')
    assert.ok(!denied(await client.callTool({ name: 'read_graph', arguments: {} })))
    assert.ok(!denied(await client.callTool({ name: 'delete_entities', arguments: { entityNames: ['x'] } })))
  })
  assert.deepEqual(
    calls.map((c) => [c.tool, c.decision, c.rule, c.reason]),
    [
      ['read_graph', 'shadow_deny', 'no reads', 'rule'],
      ['delete_entities', 'shadow_deny', '(hidden)', 'hidden'],
    ],
  )
})

test('without shadow mode the same policy denies', async () => {
  const policy = `
tools:
  read_graph:
    rules:
      - name: no reads
        action: deny
`
  const calls = await session(tempDir(), policy, [], async (client) => {
    assert.ok(denied(await client.callTool({ name: 'read_graph', arguments: {} })))
  })
  assert.deepEqual(calls.map((c) => c.decision), ['deny'])
})
