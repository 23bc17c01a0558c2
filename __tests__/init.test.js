'use strict'
// `intercept init` on sample configurations of every client kind, under a temporary HOME:
// dry-run diff, rewrite with backup, idempotence, a rewritten entry that works, undo.
const test = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } = require('node:fs')
const { join } = require('node:path')
const { Client } = require('@modelcontextprotocol/sdk/client/index.js')
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js')
const { tempDir } = require('./helpers.js')
const { BINARY, SERVERS, startEverything } = require('./mcp.js')

const FIXTURE = join(__dirname, 'fixtures', 'scan-server.js')

function intercept(args, env) {
  return new Promise((resolve) => {
    execFile(BINARY, args, { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr })
    })
  })
}


function write(path, text) {
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, text)
  return path
}

test('init: dry-run diff, backup and rewrite, idempotence, undo', async () => {
  const http = await startEverything('streamableHttp')
  const sse = await startEverything('sse')
  try {
    const home = tempDir()
    const project = tempDir()
    const node = process.execPath
    const memoryFile = join(home, 'memory.jsonl')
    const files = {
      claudeProject: write(
        join(project, '.mcp.json'),
        JSON.stringify({ mcpServers: { memory: { command: node, args: SERVERS.memory, env: { MEMORY_FILE_PATH: memoryFile } } } }, null, 2) + '\n',
      ),
      claudeUser: write(
        join(home, '.claude.json'),
        JSON.stringify(
          {
            numStartups: 7,
            mcpServers: { everything: { type: 'stdio', command: node, args: SERVERS.everything, env: {} } },
            projects: { '/work/app': { allowedTools: [], mcpServers: { remote: { type: 'http', url: `http://127.0.0.1:${http.port}/mcp` } } } },
          },
          null,
          2,
        ),
      ),
      desktop: write(
        join(home, '.config', 'Claude', 'claude_desktop_config.json'),
        JSON.stringify({ globalShortcut: 'Ctrl+Space', mcpServers: { files: { command: node, args: [...SERVERS.filesystem, home] } } }, null, 4) + '\n',
      ),
      cursor: write(
        join(home, '.cursor', 'mcp.json'),
        JSON.stringify(
          {
            mcpServers: {
              broken: { command: node, args: [FIXTURE, 'crash'] },
              guarded: { command: 'intercept', args: ['-c', '/p/x.yaml', '--', 'node', 'x.js'] },
            },
          },
          null,
          2,
        ) + '\n',
      ),
      vscode: write(
        join(project, '.vscode', 'mcp.json'),
        JSON.stringify({ inputs: [{ id: 'token', type: 'promptString' }], servers: { notes: { type: 'stdio', command: node, args: SERVERS.memory } } }, null, '\t') + '\n',
      ),
      windsurf: write(
        join(home, '.codeium', 'windsurf', 'mcp_config.json'),
        JSON.stringify({ mcpServers: { legacy: { serverUrl: `http://127.0.0.1:${sse.port}/sse` } } }, null, 2) + '\n',
      ),
    }
    const original = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, readFileSync(f, 'utf8')]))
    const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: '', APPDATA: '' }
    const args = ['init', '--project', project, '--launcher', BINARY, '--timeout', '60s']

    // Dry run: the table and the diff, no change anywhere.
    let r = await intercept([...args, '--dry-run'], env)
    assert.equal(r.code, 0, r.stderr)
    for (const client of ['Claude Code', 'Claude Desktop', 'Cursor', 'VS Code', 'Windsurf']) assert.match(r.stdout, new RegExp(client))
    assert.match(r.stdout, /guarded +intercept +already runs through intercept/)
    assert.match(r.stdout, /projects › \/work\/app › remote +url/)
    assert.match(r.stdout, /^\+{3} .*\.mcp\.json$/m)
    assert.match(r.stdout, /^\+ +"--upstream",$/m)
    assert.match(r.stdout, /Dry run: nothing was written/)
    for (const [k, f] of Object.entries(files)) assert.equal(readFileSync(f, 'utf8'), original[k], k)
    assert.ok(!existsSync(join(home, '.intercept')), 'a dry run writes nothing')

    // The real thing: every server but the broken one is scanned, given a policy, wrapped.
    r = await intercept(args, env)
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`)
    assert.match(r.stdout, /broken +command +not wrapped: the server exited/)
    const policies = join(home, '.intercept', 'policies')
    const written = readdirSync(policies).sort()
    assert.deepEqual(written, ['everything.yaml', 'files.yaml', 'legacy.yaml', 'memory.yaml', 'notes.yaml', 'remote.yaml'])
    for (const f of written) {
      const v = await intercept(['validate', '-c', join(policies, f)], env)
      assert.equal(v.code, 0, `${f}: ${v.stdout}`)
    }
    assert.match(readFileSync(join(policies, 'remote.yaml'), 'utf8'), /^# Server: mcp-servers\/everything .*Streamable HTTP\)$/m)
    assert.match(readFileSync(join(policies, 'legacy.yaml'), 'utf8'), /legacy HTTP\+SSE\)$/m)

    const user = JSON.parse(readFileSync(files.claudeUser, 'utf8'))
    assert.equal(user.numStartups, 7)
    assert.deepEqual(user.mcpServers.everything, {
      type: 'stdio',
      command: BINARY,
      args: ['-c', join(policies, 'everything.yaml'), '--', node, ...SERVERS.everything],
      env: {},
    })
    assert.deepEqual(user.projects['/work/app'].mcpServers.remote, {
      type: 'stdio',
      command: BINARY,
      args: ['-c', join(policies, 'remote.yaml'), '--upstream', `http://127.0.0.1:${http.port}/mcp`],
    })
    const desktop = readFileSync(files.desktop, 'utf8')
    assert.match(desktop, /^ {4}"globalShortcut": "Ctrl\+Space",$/m, 'four-space indentation kept')
    const vscode = readFileSync(files.vscode, 'utf8')
    assert.match(vscode, /^\t"inputs": \[$/m, 'tab indentation and unrelated keys kept')
    const windsurf = JSON.parse(readFileSync(files.windsurf, 'utf8'))
    assert.equal(windsurf.mcpServers.legacy.serverUrl, undefined)
    assert.equal(readFileSync(files.cursor, 'utf8').includes('"broken"'), true)
    const backups = readdirSync(join(home, '.intercept', 'init', 'backups'))
    // One copy per file that changed (Cursor's did not: one broken server, one wrapped).
    assert.equal(backups.length, 5, backups.join(', '))
    assert.equal(backups.filter((b) => b.endsWith('mcp.json')).length, 2)

    // A rewritten entry works: the client starts intercept, which starts the server.
    const entry = JSON.parse(readFileSync(files.claudeProject, 'utf8')).mcpServers.memory
    const client = new Client({ name: 'init-test', version: '1' }, { capabilities: {} })
    await client.connect(new StdioClientTransport({ command: entry.command, args: entry.args, env: { ...env, ...entry.env }, stderr: 'pipe' }))
    try {
      const { tools } = await client.listTools()
      assert.ok(tools.some((t) => t.name === 'read_graph'))
    } finally {
      await client.close()
    }

    // Twice: nothing changes, nothing is wrapped twice.
    const after = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, readFileSync(f, 'utf8')]))
    r = await intercept(args, env)
    assert.match(r.stdout, /memory +intercept +already runs through intercept/)
    for (const [k, f] of Object.entries(files)) assert.equal(readFileSync(f, 'utf8'), after[k], k)

    // Undo: byte for byte what was there before.
    r = await intercept(['init', '--undo', '--dry-run'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^- +"--upstream",$/m)
    r = await intercept(['init', '--undo'], env)
    assert.equal(r.code, 0, r.stderr)
    for (const [k, f] of Object.entries(files)) assert.equal(readFileSync(f, 'utf8'), original[k], k)
    r = await intercept(['init', '--undo'], env)
    assert.match(r.stdout, /Nothing to undo/)
  } finally {
    http.stop()
    sse.stop()
  }
})

test('init: an entry edited after init is restored entry by entry, other edits kept; JSONC is left alone', async () => {
  const home = tempDir()
  const project = tempDir()
  const path = write(
    join(project, '.mcp.json'),
    JSON.stringify({ mcpServers: { memory: { command: process.execPath, args: SERVERS.memory, env: { MEMORY_FILE_PATH: join(home, 'm.jsonl') } } } }, null, 2) + '\n',
  )
  const original = JSON.parse(readFileSync(path, 'utf8'))
  // A file with comments (JSONC) is reported and left alone.
  const jsonc = write(join(project, '.vscode', 'mcp.json'), '{\n  // mine\n  "servers": {}\n}\n')
  const env = { ...process.env, HOME: home }
  let r = await intercept(['init', '--project', project, '--launcher', BINARY], env)
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
  assert.match(r.stdout, /VS Code +- +- +skipped: not plain JSON/)
  assert.equal(readFileSync(jsonc, 'utf8'), '{\n  // mine\n  "servers": {}\n}\n')
  const doc = JSON.parse(readFileSync(path, 'utf8'))
  doc.mcpServers.other = { command: 'other-server' }
  writeFileSync(path, JSON.stringify(doc, null, 2) + '\n')
  r = await intercept(['init', '--undo'], env)
  assert.equal(r.code, 0, r.stderr)
  const back = JSON.parse(readFileSync(path, 'utf8'))
  assert.deepEqual(back.mcpServers.memory, original.mcpServers.memory)
  assert.deepEqual(back.mcpServers.other, { command: 'other-server' })
})
