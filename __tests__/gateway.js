'use strict'
// Helpers for the HTTP listener tests: start intercept as a gateway and connect the SDK's
// HTTP clients to it.
const { spawn } = require('node:child_process')
const { after } = require('node:test')
const { Client } = require('@modelcontextprotocol/sdk/client/index.js')
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js')
const { SSEClientTransport } = require('@modelcontextprotocol/sdk/client/sse.js')
const { writeIn, tempDir } = require('./helpers.js')
const { BINARY } = require('./mcp.js')

const running = new Set()
after(async () => {
  for (const stop of running) await stop()
})

/**
 * Starts `intercept --transport http` (or `extra` may say otherwise) in front of `upstream`
 * (a URL, or a server command as an array: a child per session) with `policy`; resolves once
 * it listens, with its base URL, its stderr so far, and stop().
 */
async function startGateway(policy, upstream, extra = []) {
  const dir = tempDir()
  const file = writeIn(dir, 'policy.yaml', policy)
  const server = Array.isArray(upstream) ? ['--', ...upstream] : ['--upstream', upstream]
  const args = ['-c', file, '--state', 'memory', '--log-level', 'info', '--transport', 'http', '--port', '0', ...extra, ...server]
  const child = spawn(BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'], env: process.env })
  let stderr = ''
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    return exited
  }
  running.add(stop)
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`intercept did not start listening:\n${stderr}`)), 15000)
    child.stderr.on('data', (d) => {
      stderr += d
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(stderr)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
    child.on('exit', () => reject(new Error(`intercept exited:\n${stderr}`)))
  })
  return { base, child, exited, stop, stderr: () => stderr, dir }
}

/** An SDK client with sampling and elicitation handlers, over `kind` ('streamable' | 'sse'). */
async function connectHttp(kind, url, { sampling, elicitation } = {}) {
  const client = new Client(
    { name: 'gateway-tests', version: '1' },
    { capabilities: { sampling: {}, elicitation: {} } },
  )
  const { CreateMessageRequestSchema, ElicitRequestSchema } = require('@modelcontextprotocol/sdk/types.js')
  client.setRequestHandler(CreateMessageRequestSchema, async (req) =>
    sampling ? sampling(req) : { model: 'test-model', role: 'assistant', content: { type: 'text', text: 'sampled' } },
  )
  client.setRequestHandler(ElicitRequestSchema, async (req) => (elicitation ? elicitation(req) : { action: 'decline' }))
  const transport = kind === 'sse' ? new SSEClientTransport(new URL(url)) : new StreamableHTTPClientTransport(new URL(url))
  await client.connect(transport)
  running.add(() => client.close().catch(() => {}))
  return client
}

module.exports = { startGateway, connectHttp }
