'use strict'
// The proxy end to end: the official MCP SDK client, intercept (the cargo binary and the
// npm launcher), and real MCP servers from npm.
const test = require('node:test')
const assert = require('node:assert/strict')
const { CreateMessageRequestSchema } = require('@modelcontextprotocol/sdk/types.js')
const { tempDir } = require('./helpers.js')
const { connect, connectMemory } = require('./mcp.js')

const PASS_THROUGH = 'tools: {}\n'
const SAMPLING = { sampling: {} }

/** Everything a client can observe of server-everything, for comparing connections. */
async function observe(client) {
  const progress = []
  const seen = {}
  seen.tools = await client.listTools()
  seen.echo = await client.callTool({ name: 'echo', arguments: { message: 'hello' } })
  seen.sum = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } })
  seen.image = await client.callTool({ name: 'get-tiny-image', arguments: {} })
  seen.structured = await client.callTool({ name: 'get-structured-content', arguments: { location: 'New York' } })
  seen.long = await client.callTool(
    { name: 'trigger-long-running-operation', arguments: { duration: 0.5, steps: 5 } },
    undefined,
    { onprogress: (p) => progress.push(p) },
  )
  seen.progress = progress
  const resources = await client.listResources()
  seen.resources = resources
  seen.read = await client.readResource({ uri: resources.resources[0].uri })
  seen.prompts = await client.listPrompts()
  seen.prompt = await client.getPrompt({ name: seen.prompts.prompts[0].name, arguments: {} })
  seen.sampling = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'Hi', maxTokens: 5 } })
  return seen
}

function withSampling(client) {
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => ({
    model: 'test-model',
    role: 'assistant',
    content: { type: 'text', text: `sampled: ${req.params.messages[0].content.text}` },
  }))
  return client
}

test('with a pass-through policy the proxy is indistinguishable from a direct connection', async () => {
  const dir = tempDir()
  const direct = withSampling(await connect({ via: 'direct', dir, capabilities: SAMPLING }))
  const expected = await observe(direct)
  await direct.close()
  assert.ok(expected.tools.tools.some((t) => t.name === 'trigger-sampling-request'), 'sampling tool offered')
  assert.ok(expected.progress.length >= 3)

  for (const via of ['binary', 'launcher']) {
    const client = withSampling(await connect({ via, dir, policy: PASS_THROUGH, capabilities: SAMPLING }))
    const got = await observe(client)
    await client.close()
    // The SDK client dispatches notifications a tick after responses, so a progress
    // notification that arrives in the same read as the result can be dropped by the
    // client itself; what arrives must match the direct run.
    assert.ok(got.progress.length >= 3, `progress relayed through the ${via}`)
    const steps = [1, 2, 3, 4, 5].map((progress) => ({ progress, total: 5 }))
    assert.deepEqual(got.progress, steps.slice(0, got.progress.length))
    const { progress: _a, ...rest } = got
    const { progress: _b, ...expectedRest } = expected
    assert.deepEqual(rest, expectedRest, `through the ${via}`)
  }
})

const POLICY = `
default: allow
hide: [get-env]
tools:
  echo:
    rules:
      - name: no secrets
        conditions:
          - path: args.message
            op: regex
            value: "^[^!]"
        on_deny: "Messages may not start with !"
  get-sum:
    rules:
      - name: small sums
        conditions: [{path: args.a, op: lte, value: 100}]
      - name: three a minute
        rate_limit: 3/minute
  get-tiny-image:
    rules:
      - {name: no images, action: deny}
`

test('hide, deny, argument conditions and rate limits are enforced on a real server', async () => {
  const dir = tempDir()
  const client = await connect({ via: 'binary', dir, policy: POLICY })
  const { tools } = await client.listTools()
  const names = tools.map((t) => t.name)
  assert.ok(!names.includes('get-env'), 'hidden tool is not listed')
  assert.ok(names.includes('echo') && names.includes('get-sum'))

  const hidden = await client.callTool({ name: 'get-env', arguments: {} })
  assert.equal(hidden.isError, true)
  assert.equal(hidden.content[0].text, '[INTERCEPT POLICY DENIED] Tool "get-env" is hidden by policy')
  assert.equal(hidden._meta['dev.policylayer/intercept'].rule, '(hidden)')

  const ok = await client.callTool({ name: 'echo', arguments: { message: 'hi' } })
  assert.deepEqual(ok.content, [{ type: 'text', text: 'Echo: hi' }])
  const bad = await client.callTool({ name: 'echo', arguments: { message: '!rm' } })
  assert.equal(bad.isError, true)
  assert.equal(bad.content[0].text, '[INTERCEPT POLICY DENIED] Messages may not start with !')
  assert.deepEqual(bad._meta['dev.policylayer/intercept'], { decision: 'deny', reason: 'rule', rule: 'no secrets' })

  const denied = await client.callTool({ name: 'get-tiny-image', arguments: {} })
  assert.equal(denied.content[0].text, '[INTERCEPT POLICY DENIED] Denied by rule "no images"')

  assert.equal((await client.callTool({ name: 'get-sum', arguments: { a: 500, b: 1 } })).isError, true)
  for (let i = 0; i < 3; i++) {
    const r = await client.callTool({ name: 'get-sum', arguments: { a: i, b: 1 } })
    assert.notEqual(r.isError, true, JSON.stringify(r))
  }
  const limited = await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 1 } })
  assert.equal(limited.isError, true)
  assert.equal(limited.content[0].text, '[INTERCEPT POLICY DENIED] Rate limit of 3 per minute reached. Try again later.')
  const meta = limited._meta['dev.policylayer/intercept']
  assert.equal(meta.reason, 'rate_limit')
  assert.equal(meta.rule, 'three a minute')
  assert.ok(meta.retryAfterSeconds >= 1 && meta.retryAfterSeconds <= 60)
  await client.close()
})

test('default deny removes unlisted tools from tools/list and denies them', async () => {
  const dir = tempDir()
  const client = await connect({ via: 'launcher', dir, policy: 'default: deny\ntools:\n  echo: {}\n  get-sum: {}\n' })
  const { tools } = await client.listTools()
  assert.deepEqual(tools.map((t) => t.name).sort(), ['echo', 'get-sum'])
  const r = await client.callTool({ name: 'get-tiny-image', arguments: {} })
  assert.equal(r.content[0].text, '[INTERCEPT POLICY DENIED] Tool "get-tiny-image" is not permitted by policy')
  assert.deepEqual((await client.callTool({ name: 'echo', arguments: { message: 'x' } })).content[0].text, 'Echo: x')
  await client.close()
})

test('an upstream JSON-RPC error gives the quota back; a tool error result does not', async () => {
  const dir = tempDir()
  // A task-augmented call to a server without task support is answered with a JSON-RPC error.
  const policy = 'tools:\n  read_graph:\n    rules:\n      - rate_limit: 1/hour\n  search_nodes:\n    rules:\n      - rate_limit: 1/hour\n'
  const client = await connectMemory({ dir, policy })
  for (let i = 0; i < 3; i++) {
    await assert.rejects(
      client.request({ method: 'tools/call', params: { name: 'read_graph', arguments: {}, task: { ttl: 1000 } } }, require('@modelcontextprotocol/sdk/types.js').CallToolResultSchema),
      /does not support task creation/,
      `attempt ${i + 1} reached the server: the failed ones gave their quota back`,
    )
  }
  const graph = await client.callTool({ name: 'read_graph', arguments: {} })
  assert.notEqual(graph.isError, true, JSON.stringify(graph))
  const again = await client.callTool({ name: 'read_graph', arguments: {} })
  assert.equal(again.content[0].text, '[INTERCEPT POLICY DENIED] Rate limit of 1 per hour reached. Try again later.')

  // isError results are the tool's answer: the call counted.
  const bad = await client.callTool({ name: 'search_nodes', arguments: { query: 5 } })
  assert.equal(bad.isError, true)
  assert.doesNotMatch(bad.content[0].text, /INTERCEPT/)
  const after = await client.callTool({ name: 'search_nodes', arguments: { query: 'x' } })
  assert.match(after.content[0].text, /INTERCEPT POLICY DENIED/)
  await client.close()
})

test('server-filesystem: argument conditions guard paths', async () => {
  const dir = tempDir()
  const root = `${dir}/root`
  require('node:fs').mkdirSync(root)
  const policy = `
tools:
  write_file:
    rules:
      - name: only notes
        conditions: [{path: args.path, op: regex, value: '\\.md$'}]
        on_deny: "Only markdown notes may be written"
`
  const client = await connect({ via: 'binary', dir, policy, server: 'filesystem', serverArgs: [root] })
  const ok = await client.callTool({ name: 'write_file', arguments: { path: `${root}/a.md`, content: '# hi' } })
  assert.notEqual(ok.isError, true, JSON.stringify(ok))
  const no = await client.callTool({ name: 'write_file', arguments: { path: `${root}/run.sh`, content: 'rm -rf /' } })
  assert.equal(no.content[0].text, '[INTERCEPT POLICY DENIED] Only markdown notes may be written')
  assert.equal(require('node:fs').existsSync(`${root}/run.sh`), false, 'the denied call never reached the server')
  assert.equal(require('node:fs').readFileSync(`${root}/a.md`, 'utf8'), '# hi')
  await client.close()
})
