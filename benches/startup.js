#!/usr/bin/env node
'use strict'
// What a proxied server costs at start: a server started the way `intercept init` writes its
// entry (the native executable: `intercept -c policy.yaml -- <server>`), against the server
// started directly and against the npm launcher (`node bin/intercept.js -c policy.yaml --
// <server>`), in interleaved rounds. Per form: the time from spawn to the answer to
// `initialize`, and the peak RSS (VmHWM) of the process the client starts (intercept itself
// for the two proxied forms, the server for the direct one).
//
// Run: cargo build --release --bin intercept && node scripts/build.js && node benches/startup.js
//   RUNS=30               rounds (default 20)
//   INTERCEPT_BIN=PATH    the native executable (default target/release/intercept)
//   INTERCEPT_NATIVE_PATH the addon the launcher loads (index.js; default the local build)
//   SERVERS=echo,sh       only some servers (echo, sh, everything)
//   LEAN=1                also `--state memory --no-audit --no-watch`
// Linux only (reads /proc).
const { spawn } = require('node:child_process')
const { existsSync, mkdtempSync, readFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')

const root = join(__dirname, '..')
const binary = process.env.INTERCEPT_BIN || join(root, 'target', 'release', 'intercept')
const launcher = join(root, 'bin', 'intercept.js')
const policy = join(__dirname, 'policy.yaml')
const RUNS = Number(process.env.RUNS || 20)
const SERVERS = {
  echo: [process.execPath, join(__dirname, 'echo-server.js')],
  // Answers `initialize` from a shell: the start of intercept itself, with no Node server
  // competing for the CPU.
  sh: ['/bin/sh', '-c', `read line; echo '${JSON.stringify({ jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'sh', version: '1' } } })}'; cat >/dev/null`],
  everything: [process.execPath, join(root, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js'), 'stdio'],
}
const chosen = (process.env.SERVERS || 'echo,sh,everything').split(',')
// As init writes the entry: the defaults (SQLite counters, audit log) under a scratch HOME,
// so the run leaves nothing in the real one.
const home = mkdtempSync(join(tmpdir(), 'intercept-startup-'))

const FORMS = {
  direct: (server) => server,
  native: (server) => [binary, '-c', policy, '--', ...server],
  launcher: (server) => [process.execPath, launcher, '-c', policy, '--', ...server],
}
// LEAN=1: also the native executable without what the defaults open at start (the SQLite
// counter file, the audit log, the policy file watch): what those cost.
if (process.env.LEAN) FORMS.lean = (server) => [binary, '-c', policy, '--state', 'memory', '--no-audit', '--no-watch', '--', ...server]

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'startup-bench', version: '1' } },
}

/** Peak resident memory of `pid`, in MB (VmHWM). */
function peakMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)[1])
  return kb / 1024
}

/** One start: spawn, `initialize`, its answer; then the peak RSS, and a clean exit. */
function once(argv) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, HOME: home } })
    let buffer = ''
    let done = false
    const timer = setTimeout(() => fail(new Error(`no answer to initialize within 30 s: ${argv.join(' ')}`)), 30000)
    const fail = (err) => {
      if (done) return
      done = true
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(err)
    }
    child.on('error', fail)
    child.on('exit', (code) => fail(new Error(`exited (${code}) before answering: ${argv.join(' ')}`)))
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk) => {
      buffer += chunk
      if (done || !buffer.includes('\n')) return
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      const answer = JSON.parse(buffer.slice(0, buffer.indexOf('\n')))
      if (answer.id !== 1 || !answer.result) return fail(new Error(`unexpected answer: ${buffer}`))
      done = true
      clearTimeout(timer)
      const rss = peakMb(child.pid)
      child.removeAllListeners('exit')
      child.on('exit', () => resolve({ ms, rss }))
      child.stdin.end()
    })
    child.stdin.write(JSON.stringify(INITIALIZE) + '\n')
  })
}

const sorted = (xs) => [...xs].sort((a, b) => a - b)
const median = (xs) => {
  const s = sorted(xs)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const spread = (xs, digits) => {
  const s = sorted(xs)
  return `${s[0].toFixed(digits)} / ${median(s).toFixed(digits)} / ${s[s.length - 1].toFixed(digits)}`
}

async function main() {
  if (process.platform !== 'linux') throw new Error('benches/startup.js reads /proc: Linux only')
  if (!existsSync(binary)) throw new Error(`${binary} is missing: cargo build --release --bin intercept (or INTERCEPT_BIN=...)`)
  const forms = Object.keys(FORMS)
  for (const name of chosen) {
    const server = SERVERS[name]
    if (!server) throw new Error(`unknown server ${name} (echo, sh, everything)`)
    // One unmeasured start of each: the files in the page cache, the scratch state created.
    for (const form of forms) await once(FORMS[form](server))
    const results = Object.fromEntries(forms.map((f) => [f, []]))
    for (let round = 0; round < RUNS; round++) {
      // Each round in another order, so no form always runs on a machine warmed by another.
      const order = forms.map((_, i) => forms[(i + round) % forms.length])
      for (const form of order) results[form].push(await once(FORMS[form](server)))
    }
    // The added start, round by round: each proxied start less the direct one of its round.
    const over = (form) => results[form].map((r, i) => r.ms - results.direct[i].ms)
    console.log(`\n${name}: ${RUNS} interleaved rounds (min / median / max)`)
    console.log('| form | start until initialize is answered (ms) | added over direct, paired (ms) | peak RSS of the process started (MB) |')
    console.log('|---|---|---|---|')
    for (const form of forms) {
      const added = form === 'direct' ? '—' : spread(over(form), 1)
      console.log(`| ${form} | ${spread(results[form].map((r) => r.ms), 1)} | ${added} | ${spread(results[form].map((r) => r.rss), 1)} |`)
    }
  }
}

main().catch((err) => {
  console.error(err.message)
  process.exitCode = 1
})
