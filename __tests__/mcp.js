'use strict'
// Helpers for driving the proxy: the official MCP SDK client, and a raw JSON-RPC driver.
const { spawn } = require('node:child_process')
const net = require('node:net')
const { after } = require('node:test')
const { existsSync, readFileSync } = require('node:fs')
const { join } = require('node:path')
const { Client } = require('@modelcontextprotocol/sdk/client/index.js')
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js')
const { root, writeIn } = require('./helpers.js')

// Whatever a test leaves running, because an assertion failed before its close(), is
// stopped when the file's tests end: a failing test reports instead of hanging the run.
const leftovers = new Set()
after(async () => {
  for (const stop of leftovers) await stop()
})

/** The cargo-built binary (`npm test` runs `cargo test` first, which builds it). */
const BINARY = join(root, 'target', 'debug', process.platform === 'win32' ? 'intercept.exe' : 'intercept')
/** The npm launcher. */
const LAUNCHER = join(root, 'bin', 'intercept.js')

const SERVERS = {
  everything: [join(root, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js')],
  filesystem: [join(root, 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js')],
  memory: [join(root, 'node_modules', '@modelcontextprotocol', 'server-memory', 'dist', 'index.js')],
}

/** The command line that runs `server` through intercept `via` ('binary' | 'launcher'), or directly. */
function commandFor(via, policyPath, server, serverArgs = [], flags = []) {
  const serverCmd = [process.execPath, ...SERVERS[server], ...serverArgs]
  if (via === 'direct') return { command: serverCmd[0], args: serverCmd.slice(1) }
  const proxy = ['-c', policyPath, '--state', 'memory', '--log-level', 'warn', ...flags, '--', ...serverCmd]
  if (via === 'binary') {
    if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run cargo build (npm test does)`)
    return { command: BINARY, args: proxy }
  }
  return { command: process.execPath, args: [LAUNCHER, ...proxy] }
}

/** Connects an SDK client to `server`, through intercept or directly. */
async function connect({ via, policy, dir, server = 'everything', serverArgs, flags, capabilities = {}, env }) {
  const policyPath = policy === undefined ? undefined : writeIn(dir, `policy-${Math.random().toString(36).slice(2)}.yaml`, policy)
  const { command, args } = commandFor(via, policyPath, server, serverArgs, flags)
  const transport = new StdioClientTransport({ command, args, stderr: 'pipe', env: { ...process.env, ...env } })
  let stderr = ''
  transport.stderr?.on('data', (d) => {
    stderr += d
  })
  const client = new Client({ name: 'intercept-tests', version: '1.0.0' }, { capabilities })
  leftovers.add(() => client.close().catch(() => {}))
  await client.connect(transport)
  client.stderrText = () => stderr
  client.policyPath = policyPath
  return client
}

/** Connects the SDK client through the cargo binary to server-memory, its graph kept in `dir`. */
function connectMemory({ dir, policy, flags = [], graph = 'memory.json' }) {
  return connect({ via: 'binary', dir, policy, server: 'memory', flags, env: { MEMORY_FILE_PATH: join(dir, graph) } })
}

/** The events of an audit log file, parsed. */
function auditEvents(file) {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
}

/**
 * Spawns `command args` and speaks raw JSON-RPC lines to it: `send(obj|string)`,
 * `next(predicate)` waits for a line that matches, `close()` ends stdin.
 */
function rawProcess(command, args, options = {}) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options })
  const lines = []
  const waiters = []
  let buffer = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => {
    buffer += chunk
    let i
    while ((i = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, i)
      buffer = buffer.slice(i + 1)
      lines.push(line)
      for (const w of [...waiters]) w()
    }
  })
  child.stderr.on('data', (d) => {
    stderr += d
  })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  leftovers.add(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return {
    child,
    lines,
    exited,
    stderr: () => stderr,
    send(msg) {
      child.stdin.write((typeof msg === 'string' ? msg : JSON.stringify(msg)) + '\n')
    },
    close() {
      child.stdin.end()
    },
    /** Resolves with the first parsed line (not yet taken) matching `predicate`. */
    next(predicate, timeoutMs = 15000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = 0; i < lines.length; i++) {
            let msg
            try {
              msg = JSON.parse(lines[i])
            } catch {
              continue
            }
            if (predicate(msg)) {
              lines.splice(i, 1)
              waiters.splice(waiters.indexOf(check), 1)
              clearTimeout(timer)
              resolve(msg)
              return
            }
          }
        }
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1)
          reject(new Error(`timed out waiting for a line; got:\n${lines.join('\n')}\nstderr:\n${stderr}`))
        }, timeoutMs)
        waiters.push(check)
        check()
      })
    },
  }
}

/** A TCP port on loopback that was free a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}

/** Starts server-everything with an HTTP transport (`streamableHttp` or `sse`); resolves once it listens. */
async function startEverything(transport) {
  const port = await freePort()
  const child = spawn(process.execPath, [...SERVERS.everything, transport], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const stop = () => child.kill()
  leftovers.add(stop)
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server-everything did not start')), 15000)
    child.on('exit', () => reject(new Error('server-everything exited')))
    child.stderr.on('data', (d) => {
      if (/listening|running/i.test(String(d))) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  return { port, stop }
}

const INIT = {
  jsonrpc: '2.0',
  id: 'init',
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw-driver', version: '1' } },
}

/** Whether a process with this pid is still running. */
function alive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

module.exports = { BINARY, LAUNCHER, SERVERS, INIT, connect, rawProcess, alive, freePort, startEverything, connectMemory, auditEvents }
