'use strict'
// Clients of the stateless revision (2026-07-28) through the listener: no initialize, no
// session id, every request with its protocol revision in _meta and the Mcp-Method/Mcp-Name
// headers mirroring the body. Here they reach server-everything, started as stdio children
// that the gateway shares between them and initializes itself.
const test = require('node:test')
const assert = require('node:assert/strict')
const { SERVERS } = require('./mcp.js')
const { startGateway } = require('./gateway.js')

const POLICY = `
tools:
  echo:
    rules:
      - name: no bangs
        conditions: [{path: args.message, op: regex, value: "^[^!]"}]
  get-sum:
    rules:
      - rate_limit: 2/minute
`

const REVISION = '2026-07-28'
const META = {
  'io.modelcontextprotocol/protocolVersion': REVISION,
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'stateless-test', version: '1' },
}

/** One stateless request: the body's own headers unless `headers` says otherwise. */
async function call(base, id, name, args, headers = {}) {
  const body = { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: META } }
  const res = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': REVISION,
      'mcp-method': 'tools/call',
      'mcp-name': name,
      ...headers,
    },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  const type = res.headers.get('content-type') || ''
  const messages = type.includes('text/event-stream')
    ? text
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => JSON.parse(l.slice(6)))
    : [JSON.parse(text)]
  return { status: res.status, session: res.headers.get('mcp-session-id'), answer: messages.find((m) => m.id === id), messages }
}

test('stateless clients share the gateway children: answers by id, headers checked against the body, the policy applied', async () => {
  const gateway = await startGateway(POLICY, [process.execPath, ...SERVERS.everything, 'stdio'])
  try {
    const first = await call(gateway.base, 1, 'echo', { message: 'hello' })
    assert.equal(first.status, 200)
    assert.equal(first.session, null, 'no session for a stateless client')
    assert.equal(first.answer.result.content[0].text, 'Echo: hello')

    // Two clients using the same id at once each get their own answer.
    const [a, b] = await Promise.all([
      call(gateway.base, 7, 'echo', { message: 'from a' }),
      call(gateway.base, 7, 'echo', { message: 'from b' }),
    ])
    assert.equal(a.answer.result.content[0].text, 'Echo: from a')
    assert.equal(b.answer.result.content[0].text, 'Echo: from b')

    // A header that disagrees with the body is refused before anything runs.
    const mismatch = await call(gateway.base, 2, 'echo', { message: 'hi' }, { 'mcp-name': 'get-sum' })
    assert.equal(mismatch.status, 400)
    assert.equal(mismatch.answer.error.code, -32020)
    assert.match(mismatch.answer.error.message, /Mcp-Name header says "get-sum" but the body names "echo"/)
    const missing = await call(gateway.base, 3, 'echo', { message: 'hi' }, { 'mcp-name': '' })
    assert.equal(missing.status, 400)
    assert.equal(missing.answer.error.code, -32020)

    // The policy: a denial, and a rate limit counted across stateless requests.
    const denied = await call(gateway.base, 4, 'echo', { message: '!x' })
    assert.equal(denied.answer.result.content[0].text, '[INTERCEPT POLICY DENIED] Denied by rule "no bangs"')
    const sums = []
    for (let i = 0; i < 3; i++) sums.push(await call(gateway.base, 10 + i, 'get-sum', { a: 1, b: 2 }))
    assert.match(sums[0].answer.result.content[0].text, /3/)
    assert.match(sums[1].answer.result.content[0].text, /3/)
    assert.match(sums[2].answer.result.content[0].text, /Rate limit of 2 per minute reached/)

    // The revision has no batches.
    const batch = await fetch(`${gateway.base}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': REVISION },
      body: JSON.stringify([{ jsonrpc: '2.0', id: 30, method: 'tools/list', params: { _meta: META } }]),
    })
    assert.equal(batch.status, 400)
    assert.match((await batch.json()).error.message, /no batches/)

    // An unknown revision is refused.
    const unknown = await call(gateway.base, 5, 'echo', { message: 'hi' }, { 'mcp-protocol-version': '1999-01-01' })
    assert.equal(unknown.status, 400)
    assert.match(unknown.answer.error.message, /unsupported MCP-Protocol-Version "1999-01-01"/)
  } finally {
    await gateway.stop()
  }
})
