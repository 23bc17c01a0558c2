'use strict'
// `intercept init` on sample configurations of every client kind, under a temporary HOME:
// dry-run diff, rewrite with backup, idempotence, a rewritten entry that works, undo.
const test = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const http = require('node:http')
const { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } = require('node:fs')
const { join } = require('node:path')
const { Client } = require('@modelcontextprotocol/sdk/client/index.js')
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js')
const { root, tempDir } = require('./helpers.js')
const { BINARY, LAUNCHER, SERVERS, startEverything } = require('./mcp.js')

const FIXTURE = join(__dirname, 'fixtures', 'scan-server.js')

function intercept(args, env, options = {}) {
  return new Promise((resolve) => {
    execFile(BINARY, args, { env, maxBuffer: 16 * 1024 * 1024, ...options }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr })
    })
  })
}


function write(path, text) {
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, text)
  return path
}


/** A client started as the entry says lists server-memory's tools through intercept. */
async function assertEntryStartsMemory(entry, env) {
  const client = new Client({ name: 'init-test', version: '1' }, { capabilities: {} })
  await client.connect(new StdioClientTransport({ command: entry.command, args: entry.args, env: { ...env, ...entry.env }, stderr: 'pipe' }))
  try {
    const { tools } = await client.listTools()
    assert.ok(tools.some((t) => t.name === 'read_graph'))
  } finally {
    await client.close()
  }
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
    const args = ['init', '--project', project, '--trust-project', '--launcher', BINARY, '--timeout', '60s']

    // Dry run: the table and the diff, no change anywhere.
    let r = await intercept([...args, '--dry-run'], env)
    assert.equal(r.code, 0, r.stderr)
    for (const client of ['Claude Code', 'Claude Desktop', 'Cursor', 'VS Code', 'Windsurf']) assert.match(r.stdout, new RegExp(client))
    assert.match(r.stdout, /guarded +intercept +already runs through intercept/)
    assert.match(r.stdout, /projects › \/work\/app › remote +url/)
    assert.match(r.stdout, /^\+{3} .*\.mcp\.json$/m)
    assert.match(r.stdout, /^\+ +"args": \[.*"--upstream"/m)
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
    await assertEntryStartsMemory(entry, env)

    // Twice: nothing changes, nothing is wrapped twice.
    const after = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, readFileSync(f, 'utf8')]))
    r = await intercept(args, env)
    assert.match(r.stdout, /memory +intercept +already runs through intercept/)
    for (const [k, f] of Object.entries(files)) assert.equal(readFileSync(f, 'utf8'), after[k], k)

    // Undo: byte for byte what was there before.
    r = await intercept(['init', '--undo', '--dry-run'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^- +"args": \[.*"--upstream"/m)
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

test('init: JSONC is edited in place, comments and layout kept; an entry edited after init is restored entry by entry', async () => {
  const home = tempDir()
  const project = tempDir()
  const path = write(
    join(project, '.mcp.json'),
    JSON.stringify({ mcpServers: { memory: { command: process.execPath, args: SERVERS.memory, env: { MEMORY_FILE_PATH: join(home, 'm.jsonl') } } } }, null, 2) + '\n',
  )
  const original = JSON.parse(readFileSync(path, 'utf8'))
  // VS Code's mcp.json allows comments and trailing commas.
  const vscodeText = [
    '{',
    '    // Project servers.',
    '    "inputs": [],',
    '    "servers": {',
    '        "notes": {',
    '            "type": "stdio", // local',
    `            "command": ${JSON.stringify(process.execPath)},`,
    `            "args": ${JSON.stringify(SERVERS.memory)},`,
    `            "env": {"MEMORY_FILE_PATH": ${JSON.stringify(join(home, 'n.jsonl'))}},`,
    '        },',
    '    },',
    '    "zz": true,',
    '}',
    '',
  ].join('\n')
  const vscode = write(join(project, '.vscode', 'mcp.json'), vscodeText)
  const env = { ...process.env, HOME: home }
  let r = await intercept(['init', '--project', project, '--trust-project', '--launcher', BINARY], env)
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
  const policy = join(home, '.intercept', 'policies', 'notes.yaml')
  const expected = vscodeText
    .replace(`"command": ${JSON.stringify(process.execPath)}`, `"command": ${JSON.stringify(BINARY)}`)
    .replace(`"args": ${JSON.stringify(SERVERS.memory)}`, `"args": ${JSON.stringify(['-c', policy, '--', process.execPath, ...SERVERS.memory]).replaceAll('","', '", "')}`)
  assert.equal(readFileSync(vscode, 'utf8'), expected, 'only the command and the arguments changed')

  // Edits made after init are kept by undo; the entries go back.
  const doc = JSON.parse(readFileSync(path, 'utf8'))
  doc.mcpServers.other = { command: 'other-server' }
  writeFileSync(path, JSON.stringify(doc, null, 2) + '\n')
  writeFileSync(vscode, readFileSync(vscode, 'utf8').replace('"zz": true', '"zz": false'))
  r = await intercept(['init', '--undo'], env)
  assert.equal(r.code, 0, r.stderr)
  const back = JSON.parse(readFileSync(path, 'utf8'))
  assert.deepEqual(back.mcpServers.memory, original.mcpServers.memory)
  assert.deepEqual(back.mcpServers.other, { command: 'other-server' })
  assert.equal(readFileSync(vscode, 'utf8'), vscodeText.replace('"zz": true', '"zz": false'))
})

/** Runs `intercept init` the way `how` says: the native binary, or a launcher script under Node. */
function initVia(how, args, env) {
  if (how === 'binary') return intercept(args, env)
  return new Promise((resolve) => {
    execFile(process.execPath, [how, ...args], { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr })
    })
  })
}

/**
 * An installed copy of the npm packages under `dir`: the main package's JavaScript and the
 * platform package with the addon and, when `native`, an `intercept` executable (a script
 * that runs the binary under test). Returns the launcher script.
 */
function installPackages(dir, native) {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const main = join(dir, 'node_modules', '@policylayer', 'intercept')
  mkdirSync(main, { recursive: true })
  // The package's JavaScript, whatever its files are called.
  for (const entry of [...pkg.files, 'package.json']) {
    const from = join(root, entry)
    if (existsSync(from) && !/^(src|scripts)\/|^Cargo|^build\.rs/.test(entry)) cpSync(from, join(main, entry), { recursive: true })
  }
  const triple = require('../platform.js').platformTriple()
  const platform = join(dir, 'node_modules', '@policylayer', `intercept-${triple}`)
  mkdirSync(platform, { recursive: true })
  writeFileSync(join(platform, 'package.json'), JSON.stringify({ name: `@policylayer/intercept-${triple}`, version: pkg.version, main: `intercept.${triple}.node` }))
  copyFileSync(join(root, `intercept.${triple}.node`), join(platform, `intercept.${triple}.node`))
  if (native) {
    writeFileSync(join(platform, 'intercept'), `#!/bin/sh\nexec ${JSON.stringify(BINARY)} "$@"\n`)
    chmodSync(join(platform, 'intercept'), 0o755)
  }
  return { launcher: join(main, 'bin', 'intercept.js'), executable: join(platform, 'intercept'), version: pkg.version }
}

test('init: entries start the native executable of the installation, or the exact version through npx', { skip: process.platform === 'win32' }, async () => {
  const pkgVersion = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version
  const cases = []
  // The native binary names itself.
  cases.push({ how: 'binary', expect: [realpathSync(BINARY)] })
  // The npm launcher of a git checkout (no executable next to the addon): node and the script.
  cases.push({ how: LAUNCHER, expect: [process.execPath, realpathSync(LAUNCHER)] })
  // An installed package: the platform package's executable.
  const installed = installPackages(tempDir(), true)
  cases.push({ how: installed.launcher, expect: [realpathSync(installed.executable)], works: true })
  // An installed package without it: the installed launcher.
  const bare = installPackages(tempDir(), false)
  cases.push({ how: bare.launcher, expect: [process.execPath, realpathSync(bare.launcher)] })
  // Run from npx's cache, which npm may clear: the exact version through npx.
  const npx = installPackages(join(tempDir(), '_npx', '4f2a1b'), true)
  cases.push({ how: npx.launcher, expect: ['npx', '-y', `@policylayer/intercept@${pkgVersion}`] })
  // pnpm dlx's cache, likewise: the exact version through pnpm dlx.
  const dlx = installPackages(join(tempDir(), 'pnpm', 'dlx', '5c1e', '195d-7f3a'), true)
  cases.push({ how: dlx.launcher, expect: ['pnpm', 'dlx', `@policylayer/intercept@${pkgVersion}`] })
  // An addon loaded from elsewhere (INTERCEPT_NATIVE_PATH) next to an `intercept` that is
  // not the platform package's: never written; the launcher is.
  const elsewhere = tempDir()
  copyFileSync(installed.executable, join(elsewhere, 'intercept'))
  chmodSync(join(elsewhere, 'intercept'), 0o755)
  copyFileSync(join(root, `intercept.${require('../platform.js').platformTriple()}.node`), join(elsewhere, 'x.node'))
  cases.push({ how: LAUNCHER, env: { INTERCEPT_NATIVE_PATH: join(elsewhere, 'x.node') }, expect: [process.execPath, realpathSync(LAUNCHER)] })
  // The platform package's executable, but writable by its group: not written either.
  const open = installPackages(tempDir(), true)
  chmodSync(open.executable, 0o775)
  cases.push({ how: open.launcher, expect: [process.execPath, realpathSync(open.launcher)] })

  for (const { how, expect, works, env: extra } of cases) {
    const home = tempDir()
    const project = tempDir()
    const path = write(
      join(project, '.mcp.json'),
      JSON.stringify({ mcpServers: { memory: { command: process.execPath, args: SERVERS.memory, env: { MEMORY_FILE_PATH: join(home, 'm.jsonl') } } } }, null, 2) + '\n',
    )
    const env = { ...process.env, HOME: home, ...extra }
    const r = await initVia(how, ['init', '--project', project, '--trust-project'], env)
    assert.equal(r.code, 0, `${how}: ${r.stdout}\n${r.stderr}`)
    const entry = JSON.parse(readFileSync(path, 'utf8')).mcpServers.memory
    const policy = join(home, '.intercept', 'policies', 'memory.yaml')
    assert.deepEqual([entry.command, ...entry.args], [...expect, '-c', policy, '--', process.execPath, ...SERVERS.memory], how)
    assert.match(r.stdout, /Rewritten entries start intercept with: /)
    if (works) {
      // The written entry starts: the client runs the executable, which runs the server.
      await assertEntryStartsMemory(entry, env)
    }
  }
})

/** An MCP server behind a bearer token: a gate in front of a real server-everything. */
async function gatedEverything(token) {
  const upstream = await startEverything('streamableHttp')
  const seen = []
  const gate = http.createServer((req, res) => {
    seen.push(req.headers.authorization)
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'www-authenticate': 'Bearer' })
      res.end('unauthorized')
      return
    }
    const forward = http.request({ host: '127.0.0.1', port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers)
      answer.pipe(res)
    })
    forward.on('error', () => res.destroy())
    req.pipe(forward)
  })
  await new Promise((r) => gate.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${gate.address().port}/mcp`,
    seen,
    stop: () => {
      gate.close()
      gate.closeAllConnections()
      upstream.stop()
    },
  }
}

test('init: a URL server\'s headers go into env, reach the server through --header-env, never argv; undo restores them', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  const token = 's3cret-token-for-the-test'
  const server = await gatedEverything(token)
  try {
    const home = tempDir()
    const project = tempDir()
    const oldPolicy = join(home, 'older.yaml')
    writeFileSync(oldPolicy, 'tools: {}\n')
    // `older` was wrapped by an earlier init: version-less npx, the token in the arguments.
    const older = { command: 'npx', args: ['-y', '@policylayer/intercept', '-c', oldPolicy, '--upstream', server.url, '--header', `Authorization: Bearer ${token}`] }
    const text = JSON.stringify({ mcpServers: { remote: { type: 'http', url: server.url, headers: { Authorization: `Bearer ${token}` } }, older } }, null, 2) + '\n'
    const path = write(join(project, '.mcp.json'), text)
    chmodSync(path, 0o600)
    const env = { ...process.env, HOME: home }
    // The dry run's diff shows where the headers go, never their values.
    let r = await intercept(['init', '--project', project, '--trust-project', '--dry-run'], env)
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
    assert.ok(!r.stdout.includes(token), r.stdout)
    assert.match(r.stdout, /^- +"Authorization": "\[REDACTED\]"$/m)
    assert.match(r.stdout, /^\+ +"INTERCEPT_HEADER_AUTHORIZATION": "(Authorization: )?\[REDACTED\]"$/m)
    r = await intercept(['init', '--project', project, '--trust-project'], env)
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
    assert.match(r.stdout, /older +intercept +already runs through intercept; updated/)
    // The copy and the index hold the token: only their owner may read them, as the file.
    const mode = (p) => statSync(p).mode & 0o777
    const state = join(home, '.intercept', 'init')
    const [backup] = readdirSync(join(state, 'backups'))
    assert.ok(readFileSync(join(state, 'backups', backup), 'utf8').includes(token))
    assert.ok(readFileSync(join(state, 'index.json'), 'utf8').includes(token))
    assert.deepEqual(
      [join(home, '.intercept'), state, join(state, 'backups'), join(state, 'backups', backup), join(state, 'index.json'), path].map(mode),
      [0o700, 0o700, 0o700, 0o600, 0o600, 0o600],
    )
    const updated = JSON.parse(readFileSync(path, 'utf8')).mcpServers.older
    assert.deepEqual(updated, {
      command: realpathSync(BINARY),
      args: ['-c', oldPolicy, '--upstream', server.url, '--header-env', 'INTERCEPT_HEADER_AUTHORIZATION'],
      env: { INTERCEPT_HEADER_AUTHORIZATION: `Authorization: Bearer ${token}` },
    })
    const entry = JSON.parse(readFileSync(path, 'utf8')).mcpServers.remote
    assert.deepEqual(entry.env, { INTERCEPT_HEADER_AUTHORIZATION: `Authorization: Bearer ${token}` })
    assert.deepEqual(entry.args.slice(-4), ['--upstream', server.url, '--header-env', 'INTERCEPT_HEADER_AUTHORIZATION'])
    assert.ok(!JSON.stringify(entry.args).includes(token), 'no secret in the arguments')
    assert.equal(entry.type, 'stdio')

    // Started as the client would: the token reaches the server, and no process shows it.
    const client = new Client({ name: 'init-test', version: '1' }, { capabilities: {} })
    const transport = new StdioClientTransport({ command: entry.command, args: entry.args, env: { ...env, ...entry.env }, stderr: 'pipe' })
    await client.connect(transport)
    try {
      const { tools } = await client.listTools()
      assert.ok(tools.some((t) => t.name === 'echo'))
      const cmdline = readFileSync(`/proc/${transport.pid}/cmdline`, 'utf8')
      assert.match(cmdline, /--header-env/)
      assert.ok(!cmdline.includes(token), 'the token is not in the command line')
    } finally {
      await client.close()
    }
    assert.ok(server.seen.length > 0 && server.seen.every((h) => h === `Bearer ${token}`), server.seen.join(', '))

    // Undo: the headers are back, the variable gone (the file as it was, byte for byte).
    r = await intercept(['init', '--undo'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(readFileSync(path, 'utf8'), text)

    // Undo entry by entry (the file was edited since): the headers come back too.
    r = await intercept(['init', '--project', project, '--trust-project'], env)
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
    writeFileSync(path, readFileSync(path, 'utf8').replace('"mcpServers": {', '"other": 1,\n  "mcpServers": {'))
    r = await intercept(['init', '--undo'], env)
    assert.equal(r.code, 0, r.stderr)
    const back = JSON.parse(readFileSync(path, 'utf8'))
    assert.deepEqual(back.mcpServers.remote, { type: 'http', url: server.url, headers: { Authorization: `Bearer ${token}` } })
    assert.equal(back.other, 1)
  } finally {
    server.stop()
  }
})

test('--header-env: an unset or malformed variable stops intercept with an error that never shows the value', async () => {
  const dir = tempDir()
  const policy = join(dir, 'p.yaml')
  writeFileSync(policy, 'tools: {}\n')
  const base = ['-c', policy, '--state', 'memory', '--no-audit', '--upstream', 'http://127.0.0.1:9/mcp']
  let r = await intercept([...base, '--header-env', 'NOT_SET_ANYWHERE'], process.env)
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /--header-env NOT_SET_ANYWHERE: the environment variable NOT_SET_ANYWHERE is not set/)
  r = await intercept([...base, '--header-env', 'API_AUTH'], { ...process.env, API_AUTH: 'Bearer hunter2' })
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /--header-env API_AUTH: the value of API_AUTH is not a header line "Name: value": there is no colon/)
  assert.ok(!r.stderr.includes('hunter2'), r.stderr)
  r = await intercept(['-c', policy, '--header-env', 'API_AUTH', '--', 'node', 'x.js'], { ...process.env, API_AUTH: 'A: b' })
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /--header-env requires --upstream/)
})

test('init: an empty HOME is an error, not the current directory', async () => {
  const cwd = tempDir()
  const project = tempDir()
  write(join(project, '.mcp.json'), JSON.stringify({ mcpServers: { a: { command: 'a-server' } } }) + '\n')
  const r = await intercept(['init', '--dry-run', '--project', project], { ...process.env, HOME: '', USERPROFILE: '' }, { cwd })
  assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`)
  assert.match(r.stderr, /cannot tell the home directory: HOME is not set \(or empty\)/)
  assert.deepEqual(readdirSync(cwd), [])
})

/** A server entry that leaves `marker` behind when it is started (and then exits). */
function marking(marker) {
  return { command: process.execPath, args: ['-e', 'require("fs").writeFileSync(process.argv[1], "")', marker] }
}

test('init: the servers of a project\'s own files start only once the user says so', async () => {
  const home = tempDir()
  const project = tempDir()
  const marker = join(tempDir(), 'started')
  const projectText = JSON.stringify({ mcpServers: { cloned: marking(marker) } }, null, 2) + '\n'
  const projectFile = write(join(project, '.mcp.json'), projectText)
  // The user's own config needs no confirmation.
  const userFile = write(
    join(home, '.cursor', 'mcp.json'),
    JSON.stringify({ mcpServers: { memory: { command: process.execPath, args: SERVERS.memory, env: { MEMORY_FILE_PATH: join(home, 'm.jsonl') } } } }, null, 2) + '\n',
  )
  const env = { ...process.env, HOME: home }

  // Not a terminal, no --trust-project: listed, neither started nor changed.
  let r = await intercept(['init', '--project', project, '--launcher', BINARY], env)
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
  assert.match(r.stdout, /cloned +command +skipped: the project's file, not confirmed \(--trust-project\)/)
  assert.match(r.stdout, /The 1 server\(s\) of the project's own files were neither started nor changed: they came with the project\. Run init in a terminal to confirm, or with --trust-project\./)
  assert.ok(!existsSync(marker), 'the project\'s server was started')
  assert.equal(readFileSync(projectFile, 'utf8'), projectText)
  assert.equal(JSON.parse(readFileSync(userFile, 'utf8')).mcpServers.memory.command, BINARY)

  // The dry run says what a run would do.
  r = await intercept(['init', '--project', project, '--launcher', BINARY, '--dry-run'], env)
  assert.match(r.stdout, /A run without --dry-run asks before it starts the 1 server\(s\) of the project's own files/)

  // In a terminal: asked, with what would run; "n" starts nothing, "y" starts it.
  if (process.platform === 'linux' && existsSync('/usr/bin/script')) {
    const inTerminal = (answer) =>
      new Promise((resolve) => {
        const command = [BINARY, 'init', '--project', project, '--launcher', BINARY].map((w) => `'${w}'`).join(' ')
        const child = execFile('/usr/bin/script', ['-qec', command, '/dev/null'], { env }, (error, stdout) => resolve({ code: error ? error.code : 0, stdout }))
        child.stdin.end(answer)
      })
    r = await inTerminal('n\n')
    assert.match(r.stdout, /The project's own config files list 1 server that init would start to scan:/)
    assert.match(r.stdout, /\.mcp\.json › cloned: .*node -e/)
    assert.match(r.stdout, /Start them\? \[y\/N\]/)
    assert.ok(!existsSync(marker), r.stdout)
    r = await inTerminal('y\n')
    assert.ok(existsSync(marker), r.stdout)
  }

  // --trust-project: no question asked.
  rmSync(marker, { force: true })
  r = await intercept(['init', '--project', project, '--launcher', BINARY, '--trust-project'], env)
  assert.ok(existsSync(marker), r.stdout)
  assert.doesNotMatch(r.stderr, /Start them/)
})
