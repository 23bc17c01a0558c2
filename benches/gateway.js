#!/usr/bin/env node
'use strict'
// Gateway benchmark: MCP over Streamable HTTP, directly and through gateways that put an HTTP
// listener in front of a server, measured by the same client in interleaved rounds.
//
// Rows (each started on loopback, in its own process group, and stopped after its turn):
//   direct          benches/echo-http-server.js (TS SDK McpServer, Streamable HTTP, stateful)
//   intercept-http  intercept --transport http --upstream <direct server>
//   intercept-stdio intercept --transport http -- node benches/echo-server.js
//   supergateway    supergateway 4.0.0 --stdio "node benches/echo-server.js"
//                   --outputTransport streamableHttp --stateful
//   mcp-proxy-npm   mcp-proxy (npm) 6.7.19 --server stream -- node benches/echo-server.js
//   mcp-proxy-py    mcp-proxy (PyPI) 0.13.0 -- node benches/echo-server.js
//
// Workload per row and round: one session of the TS SDK Client over
// StreamableHTTPClientTransport; warm-up calls, then tools/call echo with 1 call in flight
// (p50/p99 of the client-side round trip) and with 16 in flight on the same session (calls/s).
// Every answer is checked against the echo of its own arguments; a row that answers anything
// else fails, and the script exits 1. Figures are medians of the per-round values.
// Memory: once per row, a fresh process with 100 sessions open (each initialized and one call
// made); peak RSS (VmHWM) of the gateway's own process, its children excluded.
// CPU per call: utime + stime of the gateway's process (/proc/PID/stat) over the 16-in-flight
// phase, divided by its calls.
//
// The peers are installed by this script with pinned versions under target/bench-peers/ (npm
// prefixes and a Python venv), never in the repository's node_modules; a peer that cannot be
// installed (registry unreachable, no python3) is skipped with a note.
//
// Run: cargo build --release --bin intercept && node benches/gateway.js [options]
//   --rounds N        interleaved rounds (default 10)
//   --warmup N        warm-up calls per round (default 200)
//   --sequential N    calls with 1 in flight per round (default 500)
//   --concurrent N    calls with 16 in flight per round (default 2000)
//   --in-flight N     calls in flight in the concurrent phase (default 16)
//   --sessions N      sessions open for the memory figure (default 100)
//   --quick           a smoke run: 1 round, 20 warm-up, 100 + 320 calls, 10 sessions
//   --rows a,b        only these rows (names above; direct is always run, ratios need it)
//   --intercept PATH  the intercept executable (default target/release/intercept); its rows
//                     are skipped with a note when it has no --transport option
//   --peers DIR       where the peers are installed (default target/bench-peers)
//   --no-install      skip peers that are not installed yet instead of installing them
//   --out FILE        also write the markdown table to FILE
//   --svg FILE        the chart (default docs/gateway-bench.svg; with --quick, none unless given)
// Linux only (reads /proc).
const { spawn, spawnSync } = require('node:child_process')
const { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const { dirname, join, resolve } = require('node:path')
const { Client } = require('@modelcontextprotocol/sdk/client/index.js')
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js')

const root = join(__dirname, '..')
const echoStdio = [process.execPath, join(__dirname, 'echo-server.js')]
const echoHttp = join(__dirname, 'echo-http-server.js')
const policy = join(__dirname, 'policy.yaml')
const ROW_NAMES = ['direct', 'intercept-http', 'intercept-stdio', 'supergateway', 'mcp-proxy-npm', 'mcp-proxy-py']
const CLK_TCK = 100 // USER_HZ: the unit of utime/stime in /proc/PID/stat on every Linux ABI

// ---------------------------------------------------------------------------------------------
// Options

function usageError(message) {
  process.stderr.write(`gateway.js: ${message}\nRun with --help for the options.\n`)
  process.exit(2)
}

function parseOptions(argv) {
  const o = {
    rounds: 10,
    warmup: 200,
    sequential: 500,
    concurrent: 2000,
    inFlight: 16,
    sessions: 100,
    quick: false,
    rows: ROW_NAMES,
    intercept: join(root, 'target', 'release', 'intercept'),
    install: true,
    peers: join(root, 'target', 'bench-peers'),
    out: null,
    svg: undefined,
  }
  const counts = { '--rounds': 'rounds', '--warmup': 'warmup', '--sequential': 'sequential', '--concurrent': 'concurrent', '--in-flight': 'inFlight', '--sessions': 'sessions' }
  const given = new Set()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]
    const value = () => {
      const v = inline ?? argv[++i]
      if (v === undefined || (inline === undefined && v.startsWith('--'))) usageError(`${flag} needs a value`)
      return v
    }
    if (flag === '--help' || flag === '-h') {
      const head = readFileSync(__filename, 'utf8').split('\n').slice(2)
      process.stdout.write(head.slice(0, head.findIndex((l) => !l.startsWith('//'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n')
      process.exit(0)
    } else if (counts[flag]) {
      const text = value()
      const n = Number(text)
      const min = flag === '--warmup' ? 0 : 1
      if (!/^\d+$/.test(text) || n < min) usageError(`${flag} takes a whole number of at least ${min}, got ${JSON.stringify(text)}`)
      o[counts[flag]] = n
      given.add(counts[flag])
    } else if (flag === '--quick') {
      o.quick = true
    } else if (flag === '--rows') {
      const rows = value().split(',').filter(Boolean)
      const bad = rows.filter((r) => !ROW_NAMES.includes(r))
      if (bad.length) usageError(`unknown row ${JSON.stringify(bad[0])} in --rows; the rows are ${ROW_NAMES.join(', ')}`)
      o.rows = ROW_NAMES.filter((r) => r === 'direct' || rows.includes(r))
    } else if (flag === '--intercept') {
      o.intercept = resolve(value())
    } else if (flag === '--peers') {
      o.peers = resolve(value())
    } else if (flag === '--no-install') {
      o.install = false
    } else if (flag === '--out') {
      o.out = resolve(value())
    } else if (flag === '--svg') {
      o.svg = resolve(value())
    } else {
      usageError(`unknown option ${JSON.stringify(arg)}`)
    }
  }
  if (o.quick) {
    const quick = { rounds: 1, warmup: 20, sequential: 100, concurrent: 320, sessions: 10 }
    for (const [k, v] of Object.entries(quick)) if (!given.has(k)) o[k] = v
  }
  if (o.svg === undefined) o.svg = o.quick ? null : join(root, 'docs', 'gateway-bench.svg')
  if (o.concurrent < o.inFlight) usageError(`--concurrent (${o.concurrent}) must be at least --in-flight (${o.inFlight})`)
  if (process.platform !== 'linux') usageError('this benchmark reads /proc and runs on Linux only')
  return o
}

// ---------------------------------------------------------------------------------------------
// Processes: every server and gateway in its own process group, stopped with all it started.

const live = new Set()

function freePort() {
  return new Promise((resolvePort, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolvePort(port))
    })
  })
}

function start(name, argv, env = {}) {
  const child = spawn(argv[0], argv.slice(1), {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
    cwd: root,
  })
  const proc = { name, argv, child, pid: child.pid, stderr: '', exited: null }
  child.stderr.setEncoding('utf8')
  // The tail of its stderr, for the message when it fails.
  child.stderr.on('data', (d) => (proc.stderr = (proc.stderr + d).slice(-4000)))
  child.on('error', (err) => (proc.exited = `could not start: ${err.message}`))
  child.on('exit', (code, signal) => (proc.exited = signal ? `killed by ${signal}` : `exit code ${code}`))
  live.add(proc)
  return proc
}

// Every process below `pid`, from the ppid field of /proc/*/stat.
function descendants(pid) {
  const parent = new Map()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const found = []
  const queue = [pid]
  while (queue.length) {
    const p = queue.shift()
    for (const [child, ppid] of parent) if (ppid === p) found.push(child), queue.push(child)
  }
  return found
}

const alive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

// SIGTERM to the group, SIGKILL to the group and to any descendant left (a gateway may start
// its servers in groups of their own) after two seconds.
async function stop(proc) {
  if (!live.has(proc)) return
  live.delete(proc)
  const kids = descendants(proc.pid)
  try {
    process.kill(-proc.pid, 'SIGTERM')
  } catch {}
  const deadline = Date.now() + 2000
  while (Date.now() < deadline && (alive(proc.pid) || kids.some(alive))) await sleep(20)
  killHard(proc.pid, kids)
}

function killHard(pid, kids) {
  for (const target of [-pid, pid, ...kids]) {
    try {
      process.kill(target, 'SIGKILL')
    } catch {}
  }
}

// The SDK's client transport passes one AbortSignal to every fetch of a session; undici's
// listeners on it are released only by garbage collection, so a long session crosses Node's
// listener warning threshold. Not a leak of this script's making, and not worth a line a call.
process.removeAllListeners('warning')
process.on('warning', (w) => w.name !== 'MaxListenersExceededWarning' && process.stderr.write(`${w.name}: ${w.message}\n`))

process.on('exit', () => {
  for (const proc of live) killHard(proc.pid, descendants(proc.pid))
})
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130))

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// One line: the process, how it ended, the end of its stderr (the table shows the first line
// of a failure; the command lines follow on the next ones, for the log).
function describe(proc) {
  const tail = proc.stderr.trim().split('\n').slice(-3).join(' / ')
  return `${proc.name}${proc.exited ? ` (${proc.exited})` : ''}${tail ? `: ${tail}` : ''}`
}

const commands = (procs) => procs.map((p) => `\n    ${p.name}: ${p.argv.join(' ')}`).join('')

// Ready when it answers initialize on its URL; the session that opened is then deleted so
// that it holds no child process.
async function waitReady(url, procs, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs
  let last = 'no answer'
  while (Date.now() < deadline) {
    const dead = procs.find((p) => p.exited)
    if (dead) throw new Error(`exited before answering initialize: ${describe(dead)}${commands(procs)}`)
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'gateway-bench-probe', version: '1' } } }),
        signal: AbortSignal.timeout(5000),
      })
      const body = await readUntil(res, '"result"')
      const session = res.headers.get('mcp-session-id')
      if (res.ok && body.includes('"result"')) {
        if (session) await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': session }, signal: AbortSignal.timeout(5000) }).catch(() => {})
        return
      }
      last = `HTTP ${res.status}: ${body.slice(0, 200)}`
    } catch (err) {
      last = err.cause?.code || err.message
    }
    await sleep(100)
  }
  throw new Error(`no answer to initialize at ${url} within ${timeoutMs / 1000} s (last: ${last}): ${procs.map(describe).join('; ')}${commands(procs)}`)
}

// The body until `marker` appears or it ends (an SSE answer may keep its stream open).
async function readUntil(res, marker) {
  if (!res.body) return ''
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  let text = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return text
    text += decoder.decode(value, { stream: true })
    if (text.includes(marker)) {
      reader.cancel().catch(() => {})
      return text
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The peers, installed with pinned versions under target/bench-peers/.

function withoutNpmScope(env) {
  const clean = { ...env }
  // Run from `npm run`, these would point the install at the repository.
  for (const k of Object.keys(clean)) if (/^npm_config_(prefix|global|location|local_prefix)$/i.test(k)) delete clean[k]
  return clean
}

function npmPeer(peersDir, pkg, version, bin, install) {
  const dir = join(peersDir, `${pkg}-${version}`)
  const pkgDir = join(dir, 'node_modules', pkg)
  const installed = () => {
    try {
      return JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version === version
    } catch {
      return false
    }
  }
  if (!installed()) {
    if (!install) return { skip: `${pkg}@${version} is not installed under ${dir} (run without --no-install)` }
    process.stderr.write(`installing ${pkg}@${version} into ${dir} ...\n`)
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `bench-peer-${pkg}`, private: true }) + '\n')
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
    const r = spawnSync(npm, ['install', '--no-audit', '--no-fund', '--save-exact', `${pkg}@${version}`], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 300000,
      env: withoutNpmScope(process.env),
    })
    if (r.status !== 0 || !installed()) {
      // npm's first error lines name the cause (code, failed request); the last ones point to its log.
      const lines = (r.stderr || '').split('\n').map((l) => l.replace(/^npm (error|ERR!) ?/, '').trim())
      const why = r.error ? r.error.message : lines.filter((l) => l && !/complete log|behind a proxy|^network/i.test(l)).slice(0, 2).join(' / ')
      return { skip: `could not install ${pkg}@${version} from the npm registry (${why || `exit ${r.status}`})` }
    }
  }
  const meta = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))
  const binPath = typeof meta.bin === 'string' ? meta.bin : meta.bin[bin]
  return { argv: [process.execPath, join(pkgDir, binPath)] }
}

function pythonPeer(peersDir, pkg, version, install) {
  const venv = join(peersDir, `${pkg}-py-${version}`)
  const python = join(venv, 'bin', 'python')
  const installed = () => {
    const r = spawnSync(python, ['-c', `import importlib.metadata as m; print(m.version(${JSON.stringify(pkg)}))`], { encoding: 'utf8' })
    return r.status === 0 && r.stdout.trim() === version && existsSync(join(venv, 'bin', pkg))
  }
  if (!existsSync(python) || !installed()) {
    if (!install) return { skip: `${pkg}==${version} (PyPI) is not installed in ${venv} (run without --no-install)` }
    process.stderr.write(`installing ${pkg}==${version} (PyPI) into the venv ${venv} ...\n`)
    mkdirSync(peersDir, { recursive: true })
    const mk = spawnSync('python3', ['-m', 'venv', venv], { encoding: 'utf8', timeout: 120000 })
    if (mk.status !== 0) return { skip: `could not create a Python venv for ${pkg} (python3 -m venv: ${mk.error ? mk.error.message : mk.stderr.trim().split('\n').pop()})` }
    const r = spawnSync(join(venv, 'bin', 'pip'), ['install', '--quiet', `${pkg}==${version}`], { encoding: 'utf8', timeout: 300000 })
    if (r.status !== 0 || !installed()) {
      const why = r.error ? r.error.message : (r.stderr || '').trim().split('\n').slice(-3).join(' / ')
      return { skip: `could not install ${pkg}==${version} from PyPI (${why || `exit ${r.status}`})` }
    }
  }
  return { argv: [join(venv, 'bin', pkg)] }
}

// intercept's rows need the HTTP listener; an older build has no --transport.
function interceptBinary(path) {
  if (!existsSync(path)) return { skip: `no intercept executable at ${path} (build it with \`cargo build --release --bin intercept\` or pass --intercept PATH)` }
  const r = spawnSync(path, ['--help'], { encoding: 'utf8', timeout: 10000 })
  if (r.status !== 0) return { skip: `${path} --help failed (${r.error ? r.error.message : `exit ${r.status}`})` }
  if (!/--transport\b/.test(r.stdout)) return { skip: `${path} has no --transport option (a build without the HTTP listener)` }
  return { path }
}

function defineRows(o) {
  const rows = []
  const add = (row) => o.rows.includes(row.key) && rows.push(row)
  const direct = (port) => start('echo-http-server', [process.execPath, echoHttp, String(port)])
  const intercept = o.rows.some((r) => r.startsWith('intercept-')) ? interceptBinary(o.intercept) : { skip: 'not selected' }
  const interceptArgs = (port) => [intercept.path, '-c', policy, '--state', 'memory', '--log-level', 'error', '--no-audit', '--transport', 'http', '--port', String(port)]

  add({
    key: 'direct',
    label: 'direct HTTP (TS SDK server)',
    async launch() {
      const port = await freePort()
      const server = direct(port)
      return { url: `http://127.0.0.1:${port}/mcp`, procs: [server], gateway: server }
    },
  })
  add({
    key: 'intercept-http',
    label: 'intercept, HTTP upstream',
    skip: intercept.skip,
    async launch() {
      const [up, port] = [await freePort(), await freePort()]
      const server = direct(up)
      await waitReady(`http://127.0.0.1:${up}/mcp`, [server])
      const gateway = start('intercept', [...interceptArgs(port), '--upstream', `http://127.0.0.1:${up}/mcp`])
      return { url: `http://127.0.0.1:${port}/mcp`, procs: [gateway, server], gateway }
    },
  })
  add({
    key: 'intercept-stdio',
    label: 'intercept, stdio child per session',
    skip: intercept.skip,
    async launch() {
      const port = await freePort()
      const gateway = start('intercept', [...interceptArgs(port), '--', ...echoStdio])
      return { url: `http://127.0.0.1:${port}/mcp`, procs: [gateway], gateway }
    },
  })
  const sg = o.rows.includes('supergateway') ? npmPeer(o.peers, 'supergateway', '4.0.0', 'supergateway', o.install) : {}
  add({
    key: 'supergateway',
    label: 'supergateway 4.0.0 (stateful)',
    skip: sg.skip,
    async launch() {
      const port = await freePort()
      const stdio = echoStdio.map((a) => JSON.stringify(a)).join(' ')
      const gateway = start('supergateway', [...sg.argv, '--stdio', stdio, '--outputTransport', 'streamableHttp', '--stateful', '--port', String(port), '--logLevel', 'none'])
      return { url: `http://127.0.0.1:${port}/mcp`, procs: [gateway], gateway }
    },
  })
  const mpn = o.rows.includes('mcp-proxy-npm') ? npmPeer(o.peers, 'mcp-proxy', '6.7.19', 'mcp-proxy', o.install) : {}
  add({
    key: 'mcp-proxy-npm',
    label: 'mcp-proxy (npm) 6.7.19',
    note: 'one upstream server shared by every session',
    skip: mpn.skip,
    async launch() {
      const port = await freePort()
      const gateway = start('mcp-proxy (npm)', [...mpn.argv, '--host', '127.0.0.1', '--port', String(port), '--server', 'stream', '--', ...echoStdio])
      return { url: `http://127.0.0.1:${port}/mcp`, procs: [gateway], gateway }
    },
  })
  const mpp = o.rows.includes('mcp-proxy-py') ? pythonPeer(o.peers, 'mcp-proxy', '0.13.0', o.install) : {}
  add({
    key: 'mcp-proxy-py',
    label: 'mcp-proxy (PyPI) 0.13.0',
    note: 'one upstream server shared by every session',
    skip: mpp.skip,
    async launch() {
      const port = await freePort()
      const gateway = start('mcp-proxy (PyPI)', [...mpp.argv, '--host', '127.0.0.1', '--port', String(port), '--log-level', 'WARNING', '--', ...echoStdio])
      return { url: `http://127.0.0.1:${port}/mcp`, procs: [gateway], gateway }
    },
  })
  return rows
}

async function launch(row) {
  const run = await row.launch()
  try {
    await waitReady(run.url, run.procs)
  } catch (err) {
    for (const p of run.procs) await stop(p)
    throw err
  }
  return run
}

async function shutdown(run) {
  for (const p of run.procs) await stop(p)
}

// ---------------------------------------------------------------------------------------------
// The workload

let seq = 0
// The arguments of benches/proxy.js (280 bytes as JSON), with the body carrying the call's
// number, so that every answer can be matched to its own call.
function nextArgs() {
  return { repo: 'web', title: 'Fix the build', body: String(++seq).padStart(200, 'x') }
}

async function checkedCall(client, rowKey) {
  const args = nextArgs()
  const result = await client.callTool({ name: 'echo', arguments: args })
  const expected = JSON.stringify(args)
  const text = result?.content?.[0]?.text
  if (result.isError || text !== expected) {
    throw new Error(`${rowKey}: tools/call echo answered ${JSON.stringify(result).slice(0, 300)} instead of the echo of ${expected.slice(0, 80)}…`)
  }
}

async function openSession(url) {
  const transport = new StreamableHTTPClientTransport(new URL(url))
  const client = new Client({ name: 'gateway-bench', version: '1' })
  await client.connect(transport)
  return { client, transport }
}

async function closeSession({ client, transport }) {
  await transport.terminateSession().catch(() => {})
  await client.close().catch(() => {})
}

// /proc/PID/stat: utime + stime, in seconds (the exited threads included).
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

function memoryKb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)[1])
  return { hwm: field('VmHWM'), rss: field('VmRSS') }
}

const sessionCount = (o) => `${o.sessions} session${o.sessions === 1 ? '' : 's'}`
const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]

async function measure(row, o) {
  const run = await launch(row)
  let session
  try {
    session = await openSession(run.url)
    for (let i = 0; i < o.warmup; i++) await checkedCall(session.client, row.key)
    const latencies = new Float64Array(o.sequential)
    for (let i = 0; i < o.sequential; i++) {
      const t = process.hrtime.bigint()
      await checkedCall(session.client, row.key)
      latencies[i] = Number(process.hrtime.bigint() - t) / 1000
    }
    latencies.sort()
    let sent = 0
    const cpu0 = cpuSeconds(run.gateway.pid)
    const t0 = process.hrtime.bigint()
    const worker = async () => {
      while (sent < o.concurrent) {
        sent++
        await checkedCall(session.client, row.key)
      }
    }
    await Promise.all(Array.from({ length: o.inFlight }, worker))
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    const cpu = cpuSeconds(run.gateway.pid) - cpu0
    return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), throughput: o.concurrent / seconds, cpuPerCall: (cpu / o.concurrent) * 1e6 }
  } finally {
    if (session) await closeSession(session)
    await shutdown(run)
  }
}

// A fresh process, `n` sessions opened one after another, each initialized and one call made,
// all kept open; then the peak RSS of the gateway's own process.
async function memory(row, o) {
  const run = await launch(row)
  const sessions = []
  try {
    const before = memoryKb(run.gateway.pid)
    for (let i = 0; i < o.sessions; i++) {
      const s = await openSession(run.url)
      sessions.push(s)
      await checkedCall(s.client, row.key)
    }
    const after = memoryKb(run.gateway.pid)
    return { idleKb: before.hwm, peakKb: after.hwm, rssKb: after.rss, children: descendants(run.gateway.pid).length }
  } finally {
    for (const s of sessions) await closeSession(s)
    await shutdown(run)
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const median = (xs) => {
  const v = xs.filter((x) => x != null && Number.isFinite(x)).sort((a, b) => a - b)
  if (!v.length) return null
  const mid = Math.floor(v.length / 2)
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

const fmt = (x, digits = 0) => (x == null ? '—' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }))

// Against direct, each round's figure is set against the direct row's of the same round (a
// busy machine moves both together), and the median of those pairs is reported.
function summarize(rows, results) {
  const direct = results.get('direct')
  const paired = (r, f) => median(r.rounds.map((x) => direct.rounds.find((d) => d.round === x.round)).map((d, i) => (d ? f(r.rounds[i], d) : null)))
  return rows.map((row) => {
    const r = results.get(row.key)
    if (row.skip || r.error) return { row, skipped: row.skip, error: r?.error }
    return {
      p50Ratio: paired(r, (x, d) => x.p50 / d.p50),
      p50Added: paired(r, (x, d) => x.p50 - d.p50),
      throughputShare: paired(r, (x, d) => x.throughput / d.throughput),
      row,
      p50: median(r.rounds.map((x) => x.p50)),
      p99: median(r.rounds.map((x) => x.p99)),
      throughput: median(r.rounds.map((x) => x.throughput)),
      cpuPerCall: median(r.rounds.map((x) => x.cpuPerCall)),
      memory: r.memory,
      rounds: r.rounds.length,
    }
  })
}

function table(summary, o, meta) {
  const lines = [
    `Gateway benchmark: ${meta.date}, ${meta.cpus}; load average before the run ${meta.load}.`,
    `${o.rounds} interleaved round(s); per round and row: ${o.warmup} warm-up, ${o.sequential} calls with 1 in flight, ` +
      `${o.concurrent} with ${o.inFlight} in flight on one session; memory with ${sessionCount(o)} open. Medians of the per-round figures; ` +
      'against direct, the median of each round set against the direct row of the same round.',
    '',
    `| row | p50 (1 in flight) | p99 | calls/s (${o.inFlight} in flight) | peak RSS, ${sessionCount(o)} | CPU per call | p50 vs direct | calls/s vs direct |`,
    '|---|---|---|---|---|---|---|---|',
  ]
  for (const s of summary) {
    const label = s.row.note ? `${s.row.label} (${s.row.note})` : s.row.label
    if (s.skipped || s.error) {
      const why = s.skipped ? `skipped: ${s.skipped}` : `**failed**: ${s.error.split('\n')[0].slice(0, 400)}`
      lines.push(`| ${label} | ${why.replace(/\|/g, '\\|')} | | | | | | |`)
      continue
    }
    const kids = (n) => (n === 1 ? '1 child process' : `${n} child processes`)
    const mem = s.memory ? `${fmt(s.memory.peakKb / 1024, 1)} MB (${kids(s.memory.children)})` : '—'
    const vs =
      s.row.key !== 'direct' && s.p50Ratio != null
        ? [`${fmt(s.p50Ratio, 2)}× (${s.p50Added >= 0 ? '+' : '−'}${fmt(Math.abs(s.p50Added))} µs)`, `${fmt(100 * s.throughputShare, 1)}%`]
        : ['—', '—']
    lines.push(`| ${label} | ${fmt(s.p50)} µs | ${fmt(s.p99)} µs | ${fmt(s.throughput)} | ${mem} | ${fmt(s.cpuPerCall, 1)} µs | ${vs[0]} | ${vs[1]} |`)
  }
  lines.push(
    '',
    'Peak RSS is VmHWM of the gateway process alone (the server process for the direct row), its children (counted in brackets) excluded, ' +
      'in a fresh process after opening the sessions (each initialized, one call made). CPU per call is that process\'s ' +
      `utime + stime over the ${o.inFlight}-in-flight phase (/proc/PID/stat, 10 ms ticks), divided by its calls.`,
  )
  return lines.join('\n') + '\n'
}

const escapeXml = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

// Three panels of horizontal bars (p50, calls/s, peak RSS), one bar per measured row.
function svg(summary, o, meta) {
  const rows = summary.filter((s) => s.p50 != null)
  const panels = [
    { title: 'p50 latency, 1 call in flight (µs, lower is better)', value: (s) => s.p50, text: (v) => `${fmt(v)} µs` },
    { title: `throughput, ${o.inFlight} calls in flight (calls/s, higher is better)`, value: (s) => s.throughput, text: (v) => `${fmt(v)}/s` },
    { title: `peak RSS with ${sessionCount(o)} open (MB, lower is better)`, value: (s) => (s.memory ? s.memory.peakKb / 1024 : null), text: (v) => `${fmt(v, 1)} MB` },
  ]
  const width = 760
  const labelW = 250
  const barMax = width - labelW - 110
  const barH = 18
  const gap = 6
  const panelH = 34 + rows.length * (barH + gap)
  const height = 72 + panels.length * (panelH + 14)
  const colors = { direct: '#8c8c8c', 'intercept-http': '#1f6feb', 'intercept-stdio': '#1f6feb' }
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="bold">MCP over Streamable HTTP: tools/call echo through gateways</text>`,
    `<text x="12" y="40" fill="#555">${escapeXml(`${meta.date}, ${meta.cpus}`)}</text>`,
    `<text x="12" y="56" fill="#555">${escapeXml(`load average before the run ${meta.load}; medians of ${o.rounds} interleaved round(s)`)}</text>`,
  ]
  let y = 72
  for (const panel of panels) {
    const values = rows.map(panel.value)
    const max = Math.max(...values.filter((v) => v != null), 1e-9)
    out.push(`<text x="12" y="${y + 16}" font-weight="bold">${escapeXml(panel.title)}</text>`)
    let by = y + 28
    rows.forEach((s, i) => {
      const v = values[i]
      out.push(`<text x="${labelW - 8}" y="${by + 13}" text-anchor="end">${escapeXml(s.row.label)}</text>`)
      if (v == null) {
        out.push(`<text x="${labelW + 4}" y="${by + 13}" fill="#888">not measured</text>`)
      } else {
        const w = Math.max(1, Math.round((v / max) * barMax))
        out.push(`<rect x="${labelW}" y="${by}" width="${w}" height="${barH}" fill="${colors[s.row.key] || '#e08a1e'}"/>`)
        out.push(`<text x="${labelW + w + 6}" y="${by + 13}">${escapeXml(panel.text(v))}</text>`)
      }
      by += barH + gap
    })
    y += panelH + 14
  }
  out.push('</svg>')
  return out.join('\n') + '\n'
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const o = parseOptions(process.argv.slice(2))
  const meta = {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    cpus: `${os.cpus().length} × ${(os.cpus()[0]?.model || 'unknown CPU').trim()}, Node ${process.versions.node}`,
    load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
  }
  const rows = defineRows(o)
  for (const row of rows) if (row.skip) process.stderr.write(`skipping ${row.key}: ${row.skip}\n`)
  const active = rows.filter((r) => !r.skip)
  const results = new Map(rows.map((r) => [r.key, { rounds: [], memory: null, error: null }]))
  for (let round = 0; round < o.rounds; round++) {
    // The order rotates from round to round, so no row always runs first or after the same one.
    const order = active.map((_, i) => active[(i + round) % active.length])
    for (const row of order) {
      const r = results.get(row.key)
      if (r.error) continue
      try {
        const m = await measure(row, o)
        r.rounds.push({ ...m, round })
        process.stderr.write(`round ${round + 1}/${o.rounds} ${row.key}: p50 ${fmt(m.p50)} µs, p99 ${fmt(m.p99)} µs, ${fmt(m.throughput)} calls/s, CPU ${fmt(m.cpuPerCall, 1)} µs/call\n`)
      } catch (err) {
        r.error = err.message
        process.stderr.write(`round ${round + 1}/${o.rounds} ${row.key} FAILED: ${err.message}\n`)
      }
    }
  }
  for (const row of active) {
    const r = results.get(row.key)
    if (r.error) continue
    try {
      r.memory = await memory(row, o)
      process.stderr.write(`memory ${row.key}: peak RSS ${fmt(r.memory.peakKb / 1024, 1)} MB with ${sessionCount(o)} (${fmt(r.memory.idleKb / 1024, 1)} MB when ready), ${r.memory.children} child process(es)\n`)
    } catch (err) {
      r.error = `memory phase: ${err.message}`
      process.stderr.write(`memory ${row.key} FAILED: ${err.message}\n`)
    }
  }
  const summary = summarize(rows, results)
  const text = table(summary, o, meta)
  process.stdout.write('\n' + text)
  if (o.out) {
    mkdirSync(dirname(o.out), { recursive: true })
    writeFileSync(o.out, text)
  }
  if (o.svg) {
    mkdirSync(dirname(o.svg), { recursive: true })
    writeFileSync(o.svg, svg(summary, o, meta))
    process.stderr.write(`chart written to ${o.svg}\n`)
  }
  const failed = summary.filter((s) => s.error)
  if (failed.length) {
    process.stderr.write(`${failed.length} row(s) failed: ${failed.map((s) => s.row.key).join(', ')}\n`)
    process.exitCode = 1
  }
}

main()
  .catch((err) => {
    process.stderr.write(`gateway.js: ${err.stack || err.message}\n`)
    process.exitCode = 1
  })
  // Closed sessions may leave idle keep-alive sockets behind; do not wait for them.
  .finally(() => process.exit())
