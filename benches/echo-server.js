#!/usr/bin/env node
'use strict'
// A minimal MCP server for benchmarks: answers initialize and echoes every tools/call.
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
    const result =
      msg.method === 'initialize'
        ? { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'echo', version: '1' } }
        : { content: [{ type: 'text', text: JSON.stringify(msg.params.arguments) }] }
    out += JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }) + '\n'
  }
  if (out) process.stdout.write(out)
})
process.stdin.on('end', () => process.exit(0))
