'use strict'
// The proxy driven by the official Python MCP SDK client (pip: __tests__/requirements.txt).
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const { join } = require('node:path')
const { root, tempDir } = require('./helpers.js')
const { BINARY, SERVERS } = require('./mcp.js')

test('the Python MCP SDK client sees the same enforcement', () => {
  const python = process.env.PYTHON || 'python3'
  const r = spawnSync(
    python,
    [
      join(__dirname, 'fixtures', 'python_client.py'),
      BINARY,
      '-c', join(root, 'policies', 'examples', 'server-everything.yaml'),
      '--state', 'memory', '--log-level', 'warn',
      // The Python SDK passes only a few environment variables on to the server it starts.
      '--audit-dir', tempDir(),
      '--', process.execPath, ...SERVERS.everything,
    ],
    { encoding: 'utf8', timeout: 60000 },
  )
  assert.equal(r.status, 0, `python client failed (is the mcp package installed? pip install -r __tests__/requirements.txt)\n${r.stderr}`)
  const seen = JSON.parse(r.stdout)
  assert.equal(seen.server, 'mcp-servers/everything')
  assert.ok(seen.tools.includes('echo'))
  assert.ok(!seen.tools.includes('get-env'), 'hidden tool not listed')
  assert.deepEqual(seen.echo, ['Echo: from python'])
  assert.equal(seen.echo_error, false)
  assert.deepEqual(seen.denied, ['[INTERCEPT POLICY DENIED] Messages must not contain shell expansions'])
  assert.equal(seen.denied_error, true)
  assert.deepEqual(seen.hidden, ['[INTERCEPT POLICY DENIED] Tool "get-env" is hidden by policy'])
})
