#!/usr/bin/env node
'use strict'
// A minimal MCP server for benchmarks: echoes every tools/call, and answers initialize,
// tools/list and ping (clients such as the Python SDK list the tools before their first call).
const ECHO = { name: 'echo', description: 'Echoes its arguments', inputSchema: { type: 'object' } }
function other(method) {
  if (method === 'initialize') return { result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'echo', version: '1' } } }
  if (method === 'tools/list') return { result: { tools: [ECHO] } }
  if (method === 'ping') return { result: {} }
  return { error: { code: -32601, message: `method not found: ${method}` } }
}
let buffer = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => {
  buffer += chunk
  let out = ''
  let i
  while ((i = buffer.indexOf('\n')) >= 0) {
    const line = buffer.slice(0, i)
    buffer = buffer.slice(i + 1)
    const msg = JSON.parse(line)
    if (msg.id === undefined) continue
    if (msg.method === 'tools/call') {
      const result = { content: [{ type: 'text', text: JSON.stringify(msg.params.arguments) }] }
      out += JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }) + '\n'
    } else {
      out += JSON.stringify({ jsonrpc: '2.0', id: msg.id, ...other(msg.method) }) + '\n'
    }
  }
  if (out) process.stdout.write(out)
})
process.stdin.on('end', () => process.exit(0))
