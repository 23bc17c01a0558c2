'use strict'
// Hot reload through the real binary while an MCP SDK client stays connected.
const test = require('node:test')
const assert = require('node:assert/strict')
const { writeFileSync, renameSync } = require('node:fs')
const { join, dirname } = require('node:path')
const { tempDir } = require('./helpers.js')
const { connectMemory, auditEvents: events } = require('./mcp.js')

const DEADLINE_MS = 20000

const BASE = `
tools:
  read_graph:
    rules:
      - name: graph reads
        rate_limit: 2/hour
`
const STRICTER = `${BASE}  search_nodes:
    rules:
      - name: no searching
        action: deny
`
// Line 10 (the text starts with a newline), column 17: the misspelt action.
const INVALID = `${BASE}  search_nodes:
    rules:
      - name: no searching
        action: deni
`

const denied = (r) => r.isError === true && /\[INTERCEPT POLICY DENIED\]/.test(r.content?.[0]?.text ?? '')

/** Polls `check` (async) until it returns a truthy value, failing after a bounded deadline. */
async function until(what, check) {
  const start = Date.now()
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() - start > DEADLINE_MS) assert.fail(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}


test('a policy edit takes effect on the next call while the client stays connected', async () => {
  const dir = tempDir()
  const log = join(dir, 'events.jsonl')
  const client = await connectMemory({ dir, policy: BASE, flags: ['--audit-log', log] })
  try {
    const policy = client.policyPath
    const search = () => client.callTool({ name: 'search_nodes', arguments: { query: 'x' } })
    assert.ok(!denied(await client.callTool({ name: 'read_graph', arguments: {} })), 'first read')
    assert.ok(!denied(await search()), 'search is allowed at first')

    // Edit in place: the next search is denied by the new rule.
    writeFileSync(policy, STRICTER)
    const r = await until('the new rule', async () => {
      const r = await search()
      return denied(r) && r
    })
    assert.match(r.content[0].text, /Denied by rule "no searching"/)

    // The rate-limit counter kept its first call across the reload: one more read, then denied.
    assert.ok(!denied(await client.callTool({ name: 'read_graph', arguments: {} })), 'second read')
    const third = await client.callTool({ name: 'read_graph', arguments: {} })
    assert.ok(denied(third), 'third read is over 2/hour')
    assert.match(third.content[0].text, /Rate limit of 2 per hour/)

    // An invalid edit: the error is logged with line and column, the old policy stays.
    writeFileSync(policy, INVALID)
    await until('the rejection on stderr', () =>
      client.stderrText().includes(`policy reload rejected: ${policy}:10:17: tools.search_nodes.rules[0]: action must be`),
    )
    assert.ok(denied(await search()), 'the previous policy is still in force')

    // Save by rename (how many editors save): the file is replaced, not written.
    const tmp = join(dirname(policy), '.policy.tmp')
    writeFileSync(tmp, BASE)
    renameSync(tmp, policy)
    await until('the renamed policy', async () => !denied(await search()))
  } finally {
    await client.close()
  }

  const reloads = events(log).filter((e) => e.type === 'config_reload')
  assert.deepEqual(
    reloads.map((e) => e.status),
    ['success', 'failure', 'success'],
  )
  assert.match(reloads[0].policy_sha256, /^[0-9a-f]{64}$/)
  assert.equal(reloads[1].policy_sha256, reloads[0].policy_sha256, 'the policy in force stays')
  assert.equal(reloads[1].errors.length, 1)
  assert.match(reloads[1].errors[0], /:10:17: tools\.search_nodes\.rules\[0\]: action must be/)
  assert.equal(reloads[2].policy_sha256, events(log)[0].policy_sha256, 'back to the first policy')
})

test('--no-watch keeps the policy it started with', async () => {
  const dir = tempDir()
  const client = await connectMemory({ dir, policy: STRICTER, flags: ['--no-watch'] })
  try {
    writeFileSync(client.policyPath, BASE)
    // Nothing to poll for in the unwatched proxy: a watched one, edited after it, shows
    // that an edit has been noticed by the time the unwatched one is checked.
    const watched = await connectMemory({ dir, policy: BASE, graph: 'memory2.json' })
    try {
      writeFileSync(watched.policyPath, STRICTER)
      await until('the watched proxy to reload', async () =>
        denied(await watched.callTool({ name: 'search_nodes', arguments: { query: 'x' } })),
      )
    } finally {
      await watched.close()
    }
    assert.ok(denied(await client.callTool({ name: 'search_nodes', arguments: { query: 'x' } })))
  } finally {
    await client.close()
  }
})
