'use strict'
// The MCP conformance suite's server scenarios (@modelcontextprotocol/conformance 0.1.13, the
// last release that loads on Node 20), run against server-everything directly and through
// the listener (to the server by URL, and to it started as a stdio child per session):
// every check that passes directly passes through intercept, and the DNS
// rebinding check that server-everything fails passes. The list of checks is read from the
// direct run, never written here.
const test = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const { readdirSync, readFileSync, existsSync } = require('node:fs')
const { join } = require('node:path')
const { root, tempDir } = require('./helpers.js')
const { startEverything, SERVERS } = require('./mcp.js')
const { startGateway } = require('./gateway.js')

const CONFORMANCE = join(root, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js')

/** Runs every server scenario against `url`; resolves with each check's status by id. */
async function conformance(url) {
  const out = tempDir()
  await new Promise((resolve) => {
    // Exits non-zero when any check fails: the statuses are what count.
    execFile(process.execPath, [CONFORMANCE, 'server', '--url', url, '-o', out], { timeout: 120000 }, () => resolve())
  })
  const statuses = new Map()
  for (const scenario of readdirSync(out)) {
    const file = join(out, scenario, 'checks.json')
    if (!existsSync(file)) continue
    for (const check of JSON.parse(readFileSync(file, 'utf8'))) statuses.set(check.id, check.status)
  }
  return statuses
}

test('every conformance check that passes against server-everything passes through the listener', async () => {
  const server = await startEverything('streamableHttp')
  const upstream = `http://127.0.0.1:${server.port}/mcp`
  try {
    const direct = await conformance(upstream)
    const passing = [...direct].filter(([, status]) => status === 'SUCCESS').map(([id]) => id)
    assert.ok(passing.length >= 5, `the suite ran against server-everything: ${[...direct.keys()].join(', ')}`)
    assert.notEqual(direct.get('localhost-host-rebinding-rejected'), 'SUCCESS', 'server-everything has no Host check')

    // In front of the same server reached by URL, and started as a stdio child per session.
    for (const via of [upstream, [process.execPath, ...SERVERS.everything, 'stdio']]) {
      const gateway = await startGateway('tools: {}\n', via)
      const through = await conformance(gateway.base + '/mcp')
      await gateway.stop()
      const what = Array.isArray(via) ? 'a stdio child' : 'a URL'
      // INFO is the suite's word for an allowed alternative, not a failure: a stdio child's
      // answers come back as JSON when nothing precedes them, where server-everything streams.
      for (const id of passing) assert.ok(['SUCCESS', 'INFO'].includes(through.get(id)), `${id} through the listener to ${what}: ${through.get(id)}`)
      assert.equal(through.get('localhost-host-rebinding-rejected'), 'SUCCESS')
    }
  } finally {
    server.stop()
  }
})
