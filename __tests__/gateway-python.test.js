'use strict'
// The listener driven by the official Python MCP SDK's Streamable HTTP client
// (pip: __tests__/requirements.txt), compared with the same client connected directly.
const test = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const { root } = require('./helpers.js')
const { startEverything } = require('./mcp.js')
const { startGateway } = require('./gateway.js')

function pythonClient(url) {
  const python = process.env.PYTHON || 'python3'
  return new Promise((resolve, reject) => {
    execFile(python, [join(__dirname, 'fixtures', 'python_http_client.py'), url], { timeout: 60000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`python client failed (is the mcp package installed? pip install -r __tests__/requirements.txt)\n${stderr}`))
      resolve(JSON.parse(stdout))
    })
  })
}

test('the Python SDK HTTP client through the listener: same server, policy enforced', async () => {
  const server = await startEverything('streamableHttp')
  const upstream = `http://127.0.0.1:${server.port}/mcp`
  try {
    const direct = await pythonClient(upstream)
    const policy = readFileSync(join(root, 'policies', 'examples', 'server-everything.yaml'), 'utf8')
    const gateway = await startGateway(policy, upstream)
    const seen = await pythonClient(gateway.base + '/mcp')
    await gateway.stop()
    assert.equal(seen.server, direct.server)
    assert.deepEqual(seen.tools, direct.tools.filter((t) => t !== 'get-env'))
    assert.ok(direct.tools.includes('get-env'))
    assert.deepEqual(seen.echo, direct.echo)
    assert.deepEqual(seen.echo, ['Echo: from python'])
    assert.equal(seen.echo_error, false)
    assert.deepEqual(seen.denied, ['[INTERCEPT POLICY DENIED] Messages must not contain shell expansions'])
    assert.equal(seen.denied_error, true)
    assert.deepEqual(seen.hidden, ['[INTERCEPT POLICY DENIED] Tool "get-env" is hidden by policy'])
  } finally {
    server.stop()
  }
})
