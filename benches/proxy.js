#!/usr/bin/env node
'use strict'
// Whole-process benchmark of the stdio proxy: a raw JSON-RPC driver sends tools/call to a
// minimal echo server, directly and through intercept, sequentially and with 64 in flight.
// Reports added latency (p50/p99), throughput as a ratio of direct, peak RSS and start-up.
// Run: cargo build --release --bin intercept && node benches/proxy.js
const { spawn } = require('node:child_process')
const { readFileSync, mkdtempSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')

const root = join(__dirname, '..')
const binary = process.env.INTERCEPT_BIN || join(root, 'target', 'release', 'intercept')
// FLOOR=1: also through a process that copies bytes and decides nothing (built by
// `cargo build --release --example passthrough`, or FLOOR_BIN): the cost of a separate
// process alone.
const passthrough = process.env.FLOOR_BIN || join(root, 'target', 'release', 'examples', 'passthrough')
const echo = join(__dirname, 'echo-server.js')
const policy = join(__dirname, 'policy.yaml')
// Where the audited runs write their log.
const scratch = mkdtempSync(join(tmpdir(), 'intercept-bench-'))
const SEQUENTIAL = Number(process.env.SEQUENTIAL || 3000)
const CONCURRENT_TOTAL = Number(process.env.CONCURRENT || 30000)
const IN_FLIGHT = 64

function startProcess(through, audited) {
  const cmd = through === 'floor' ? passthrough : through ? binary : process.execPath
  // The audited runs write their log to a temporary directory; the others keep none.
  const audit = audited ? ['--audit-dir', join(scratch, 'events')] : ['--no-audit']
  const args = through ? ['-c', policy, '--state', 'memory', '--log-level', 'error', ...audit, '--', process.execPath, echo] : [echo]
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  const waiting = new Map()
  let buffer = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk) => {
    buffer += chunk
    let i
    while ((i = buffer.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buffer.slice(0, i))
      buffer = buffer.slice(i + 1)
      const resolve = waiting.get(msg.id)
      waiting.delete(msg.id)
      if (resolve) resolve(msg)
    }
  })
  let nextId = 1
  const request = (method, params) =>
    new Promise((resolve) => {
      const id = nextId++
      waiting.set(id, resolve)
      child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n')
    })
  return { child, request }
}

const args = { repo: 'web', title: 'Fix the build', body: 'x'.repeat(200) }
const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]

// `through`: false (direct), true (intercept) or 'floor' (the passthrough process).
async function run(through, audited = false) {
  const t0 = process.hrtime.bigint()
  const p = startProcess(through, audited)
  await p.request('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } })
  const startup = Number(process.hrtime.bigint() - t0) / 1e6
  for (let i = 0; i < 500; i++) await p.request('tools/call', { name: 'echo', arguments: args }) // warm up
  const latencies = []
  for (let i = 0; i < SEQUENTIAL; i++) {
    const s = process.hrtime.bigint()
    await p.request('tools/call', { name: 'echo', arguments: args })
    latencies.push(Number(process.hrtime.bigint() - s) / 1000)
  }
  latencies.sort((a, b) => a - b)
  let sent = 0
  // CPU of each process over the concurrent phase alone: the driver, the echo server and,
  // when proxied, intercept (all its threads).
  const echoPid = serverPid(p, through)
  const cpu0 = { driver: process.cpuUsage(), echo: cpuNs(echoPid), proxy: through ? cpuNs(p.child.pid) : null }
  const k0 = through ? kernelCounts(p.child.pid) : null
  const c0 = process.hrtime.bigint()
  const worker = async () => {
    while (sent < CONCURRENT_TOTAL) {
      sent++
      await p.request('tools/call', { name: 'echo', arguments: args })
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  const throughput = CONCURRENT_TOTAL / (Number(process.hrtime.bigint() - c0) / 1e9)
  const driverCpu = process.cpuUsage(cpu0.driver)
  const k1 = through ? kernelCounts(p.child.pid) : null
  const kernel = k0 && k1 ? Object.fromEntries(Object.keys(k0).map((k) => [k, (k1[k] - k0[k]) / CONCURRENT_TOTAL])) : null
  const perCall = (ns) => ns / CONCURRENT_TOTAL / 1000
  const cpu = {
    driver: perCall((driverCpu.user + driverCpu.system) * 1000),
    echo: cpu0.echo === null ? null : perCall(cpuNs(echoPid) - cpu0.echo),
    proxy: cpu0.proxy === null ? null : perCall(cpuNs(p.child.pid) - cpu0.proxy),
  }
  let rssKb = null
  let cpuPerCall = null
  if (through && process.platform === 'linux') {
    const status = readFileSync(`/proc/${p.child.pid}/status`, 'utf8')
    rssKb = Number(/VmHWM:\s+(\d+)/.exec(status)[1])
    const fields = readFileSync(`/proc/${p.child.pid}/stat`, 'utf8').split(') ')[1].split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    cpuPerCall = (ticks / 100 / (SEQUENTIAL + CONCURRENT_TOTAL + 500)) * 1e6
    if (process.env.CPU_SPLIT) process.stderr.write(`utime ${fields[11]} stime ${fields[12]} ticks\n`)
  }
  p.child.stdin.end()
  await new Promise((r) => p.child.on('exit', r))
  return { startup, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), throughput, rssKb, cpuPerCall, cpu, kernel }
}

;(async () => {
  // ONLY=through (or direct, or floor) runs one side and prints its figures, e.g. to
  // attach a profiler to intercept.
  if (process.env.ONLY) {
    const runs = []
    const side = { through: true, direct: false, floor: 'floor' }[process.env.ONLY]
    for (let r = 0; r < Number(process.env.ROUNDS || 3); r++) runs.push(await run(side))
    process.stderr.write(JSON.stringify(runs, null, 1) + '\n')
    return
  }
  const rounds = Number(process.env.ROUNDS || 3)
  // AUDIT=1: also through intercept with the audit log on, compared with it off.
  const withAudit = Boolean(process.env.AUDIT)
  const withFloor = Boolean(process.env.FLOOR)
  const direct = []
  const proxied = []
  const audited = []
  const floor = []
  for (let r = 0; r < rounds; r++) {
    direct.push(await run(false))
    proxied.push(await run(true))
    if (withAudit) audited.push(await run(true, true))
    if (withFloor) floor.push(await run('floor'))
  }
  const med = (xs, k) => xs.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const d = { p50: med(direct, 'p50'), p99: med(direct, 'p99'), tp: med(direct, 'throughput'), su: med(direct, 'startup') }
  const t = { p50: med(proxied, 'p50'), p99: med(proxied, 'p99'), tp: med(proxied, 'throughput'), su: med(proxied, 'startup') }
  const cpuMed = (xs, k) => {
    const v = xs.map((x) => x.cpu[k]).filter((c) => c !== null).sort((a, b) => a - b)
    return v.length ? v[Math.floor(v.length / 2)].toFixed(2) : '?'
  }
  const rss = Math.max(...proxied.map((x) => x.rssKb || 0))
  const lines = [
    `rounds: ${rounds} (medians), sequential calls: ${SEQUENTIAL}, concurrent: ${CONCURRENT_TOTAL} with ${IN_FLIGHT} in flight`,
    `sequential latency direct   p50 ${d.p50.toFixed(1)} µs  p99 ${d.p99.toFixed(1)} µs`,
    `sequential latency through  p50 ${t.p50.toFixed(1)} µs  p99 ${t.p99.toFixed(1)} µs`,
    `added latency               p50 ${(t.p50 - d.p50).toFixed(1)} µs  p99 ${(t.p99 - d.p99).toFixed(1)} µs`,
    `throughput direct ${d.tp.toFixed(0)}/s, through ${t.tp.toFixed(0)}/s: ${((100 * t.tp) / d.tp).toFixed(1)}% of direct`,
    `peak RSS of intercept: ${(rss / 1024).toFixed(1)} MB`,
    `intercept CPU per call (both directions): ${med(proxied, 'cpuPerCall').toFixed(1)} µs (whole run, 10 ms ticks)`,
    `CPU per call, 64 in flight: direct driver ${cpuMed(direct, 'driver')} + echo ${cpuMed(direct, 'echo')} µs; ` +
      `through driver ${cpuMed(proxied, 'driver')} + echo ${cpuMed(proxied, 'echo')} + intercept ${cpuMed(proxied, 'proxy')} µs`,
    `start-up to initialize answered: direct ${d.su.toFixed(1)} ms, through ${t.su.toFixed(1)} ms (+${(t.su - d.su).toFixed(1)} ms)`,
  ]
  // Each round's proxied run against that round's direct run: the spread behind the median.
  const shares = (xs) => xs.map((x, i) => ((100 * x.throughput) / direct[i].throughput).toFixed(1)).join(' ')
  lines.push(`throughput as a share of direct, round by round: ${shares(proxied)}`)
  if (withFloor) lines.push(`the same through the passthrough: ${shares(floor)}`)
  const kernelMed = (xs, k) => {
    const v = xs.map((x) => x.kernel && x.kernel[k]).filter((c) => c != null).sort((a, b) => a - b)
    return v.length ? v[Math.floor(v.length / 2)].toFixed(3) : '?'
  }
  lines.push(
    `intercept per call, 64 in flight: ${kernelMed(proxied, 'reads')} reads, ${kernelMed(proxied, 'writes')} writes, ` +
      `${kernelMed(proxied, 'waits')} waits, ${kernelMed(proxied, 'preempted')} involuntary switches (yields that gave way included)`,
  )
  if (withFloor) {
    const f = { tp: med(floor, 'throughput'), p50: med(floor, 'p50') }
    lines.push(
      `passthrough (copies bytes, decides nothing): throughput ${f.tp.toFixed(0)}/s, ${((100 * f.tp) / d.tp).toFixed(1)}% of direct; ` +
        `CPU per call ${cpuMed(floor, 'proxy')} µs; added latency p50 ${(f.p50 - d.p50).toFixed(1)} µs`,
      `intercept throughput as a share of the passthrough's: ${((100 * t.tp) / f.tp).toFixed(1)}%`,
    )
  }
  if (withAudit) {
    const a = { p50: med(audited, 'p50'), p99: med(audited, 'p99'), tp: med(audited, 'throughput'), cpu: med(audited, 'cpuPerCall') }
    lines.push(
      `audit on: latency p50 ${a.p50.toFixed(1)} µs (${((100 * a.p50) / t.p50).toFixed(1)}% of audit off), p99 ${a.p99.toFixed(1)} µs`,
      `audit on: added latency p50 ${(a.p50 - d.p50).toFixed(1)} µs vs ${(t.p50 - d.p50).toFixed(1)} µs off`,
      `audit on: throughput ${a.tp.toFixed(0)}/s, ${((100 * a.tp) / t.tp).toFixed(1)}% of audit off; CPU per call ${a.cpu.toFixed(1)} µs vs ${med(proxied, 'cpuPerCall').toFixed(1)} µs`,
    )
  }
  process.stderr.write(lines.join('\n') + '\n')
})()

// CPU time (ns) a process has used so far, all its threads: the scheduler's own accounting,
// far finer than the 10 ms ticks of /proc/PID/stat. Linux only; null elsewhere.
function cpuNs(pid) {
  try {
    const { readdirSync } = require('node:fs')
    let total = 0
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
    }
    return total
  } catch {
    return null
  }
}

// The echo server's pid: the driver's own child when direct, intercept's child when proxied.
function serverPid(p, through) {
  if (!through) return p.child.pid
  try {
    const { readdirSync } = require('node:fs')
    for (const tid of readdirSync(`/proc/${p.child.pid}/task`)) {
      const kids = readFileSync(`/proc/${p.child.pid}/task/${tid}/children`, 'utf8').trim()
      if (kids) return Number(kids.split(' ')[0])
    }
  } catch {}
  return null
}

// Per process: read and write system calls (/proc/PID/io) and context switches, voluntary
// (it waited) and involuntary (it was preempted), summed over its threads. Linux only.
function kernelCounts(pid) {
  try {
    const { readdirSync } = require('node:fs')
    const io = readFileSync(`/proc/${pid}/io`, 'utf8')
    const field = (text, name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(text)[1])
    const counts = { reads: field(io, 'syscr'), writes: field(io, 'syscw'), waits: 0, preempted: 0 }
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')
      counts.waits += field(status, 'voluntary_ctxt_switches')
      counts.preempted += field(status, 'nonvoluntary_ctxt_switches')
    }
    return counts
  } catch {
    return null
  }
}
