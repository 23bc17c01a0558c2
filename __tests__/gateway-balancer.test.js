'use strict'
// Two gateway instances behind a round-robin load balancer with no sticky routing, sharing
// one Redis: a session opened through one instance goes on through the other (it is taken
// up from the session directory in Redis), the policy's limits hold exactly across both, and
// a session ended through one is gone for both. The server is server-everything over
// Streamable HTTP.
const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { startEverything } = require('./mcp.js')
const { startGateway, connectHttp } = require('./gateway.js')
const { startRedis } = require('./redis.js')

const POLICY = `
hide: [get-env]
tools:
  get-sum:
    rules:
      - rate_limit: 3/minute
`

/** A balancer that sends each request to the next backend in turn, streaming both ways. */
async function roundRobin(backends) {
  const served = backends.map(() => 0)
  let next = 0
  const server = http.createServer((req, res) => {
    const i = next++ % backends.length
    served[i]++
    const target = new URL(backends[i])
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.on('error', (e) => {
      res.writeHead(502)
      res.end(String(e))
    })
    req.pipe(upstream)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${server.address().port}`, served, close: () => server.close() }
}

test('behind a round-robin balancer, sessions move between instances and limits hold exactly', async () => {
  const redis = await startRedis()
  const server = await startEverything('streamableHttp')
  const upstream = `http://127.0.0.1:${server.port}/mcp`
  const flags = ['--state-dsn', redis.url]
  const a = await startGateway(POLICY, upstream, flags)
  const b = await startGateway(POLICY, upstream, flags)
  const balancer = await roundRobin([a.base, b.base])
  try {
    const client = await connectHttp('streamable', balancer.url + '/mcp')
    const tools = (await client.listTools()).tools.map((t) => t.name)
    assert.ok(tools.includes('echo') && !tools.includes('get-env'), 'filtered on whichever instance answers')
    const echoes = []
    for (let i = 0; i < 6; i++) echoes.push((await client.callTool({ name: 'echo', arguments: { message: `m${i}` } })).content[0].text)
    assert.deepEqual(echoes, [0, 1, 2, 3, 4, 5].map((i) => `Echo: m${i}`))

    // Six calls against a limit of three, through both instances and two sessions: exactly three pass.
    const other = await connectHttp('streamable', balancer.url + '/mcp')
    const results = []
    for (let i = 0; i < 6; i++) {
      const c = i % 2 ? other : client
      results.push(await c.callTool({ name: 'get-sum', arguments: { a: 1, b: i } }))
    }
    const passed = results.filter((r) => !/Rate limit/.test(r.content[0].text))
    assert.equal(passed.length, 3, results.map((r) => r.content[0].text).join(' | '))
    assert.ok(balancer.served[0] > 3 && balancer.served[1] > 3, `both instances served: ${balancer.served}`)

    // Ended through one instance, the session is gone through the other too: at once where
    // it was ended, and within a second (when it renews the session) where it was not.
    const transport = client.transport
    const sessionId = transport.sessionId
    await transport.terminateSession()
    const ping = () =>
      fetch(balancer.url + '/mcp', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'ping' }),
      }).then((r) => r.status)
    const deadline = Date.now() + 5000
    let statuses = []
    while (Date.now() < deadline) {
      statuses = [await ping(), await ping()]
      if (statuses.every((s) => s === 404)) break
      await new Promise((r) => setTimeout(r, 200))
    }
    assert.deepEqual(statuses, [404, 404], 'the session is gone through both instances')
    await other.close()
  } finally {
    balancer.close()
    await a.stop()
    await b.stop()
    server.stop()
    await redis.stop()
  }
})
