#!/usr/bin/env node
'use strict'
// Per-call cost of the in-process Node API (engine.evaluate through the native addon),
// on the same 300-tool policy as the Rust benchmark. Prints p50/p99 in microseconds.
// Run: npm run build && node benches/node-api.js
//
// To compare builds, name the package directories (each with its index.js and addon):
//   node benches/node-api.js /tmp/before .
// Their measurements are interleaved, round by round (ROUNDS, default 10), so that both see
// the same machine.
const { resolve } = require('node:path')

function policy300() {
  const lines = ['version: "1"', 'tools:']
  for (let i = 0; i < 300; i++) {
    lines.push(`  tool_${i}:`, '    rules:')
    switch (i % 4) {
      case 0:
        lines.push(
          '      - name: checks',
          '        conditions:',
          '          - {path: args.repo, op: neq, value: prod}',
          "          - {path: args.title, op: regex, value: '^[A-Z]'}",
          '          - {path: args.count, op: lte, value: 100}',
        )
        break
      case 1:
        lines.push('      - {name: never, action: deny}')
        break
      case 2:
        lines.push('      - {name: limit, rate_limit: {max: 1000000000000, window: 86400}}')
        break
      default:
        lines.push(
          '      - name: spend',
          '        state: {counter: spent, window: day, increment_from: args.amount}',
          `        conditions: [{path: state.tool_${i}.spent, op: lte, value: 1000000000000}]`,
        )
    }
  }
  lines.push("  '*':", '    rules:', '      - {name: no dry runs, conditions: [{path: args.dry_run, op: exists, value: false}]}')
  return lines.join('\n') + '\n'
}

/** Times `fn` in batches, adding one per-call figure in microseconds per batch to `samples`. */
function sample(fn, samples, { batches, perBatch }) {
  for (let b = 0; b < batches; b++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < perBatch; i++) fn()
    samples.push(Number(process.hrtime.bigint() - start) / perBatch / 1000)
  }
}

function percentiles(samples) {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  return { p50: at(0.5), p99: at(0.99) }
}

/** The cases of one build of the package. */
function casesOf(dir, text) {
  const { Engine, validate } = require(dir)
  const engine = new Engine({ policy: text })
  const args = { repo: 'dev', title: 'Fix the build', count: 3 }
  const listing = Array.from({ length: 300 }, (_, i) => ({ name: `tool_${i}`, description: 'A tool', inputSchema: { type: 'object' } }))
  const each = { batches: 40, perBatch: 50, warmup: 20000 }
  return {
    'evaluate allow, no counter': [() => engine.evaluate({ tool: 'tool_100', args }), each],
    'evaluate deny rule': [() => engine.evaluate({ tool: 'tool_101', args }), each],
    'evaluate + commit, rolling counter': [() => engine.commit(engine.evaluate({ tool: 'tool_102', args })), each],
    'evaluate + commit, spend counter': [() => engine.commit(engine.evaluate({ tool: 'tool_103', args: { amount: 1 } })), each],
    'filterTools, 300 tools': [() => engine.filterTools(listing), { batches: 10, perBatch: 10, warmup: 500 }],
    'validate 300 tools': [() => validate(text), { batches: 10, perBatch: 1, warmup: 5 }],
  }
}

const ROUNDS = Number(process.env.ROUNDS) || 10
const text = policy300()
const dirs = process.argv.length > 2 ? process.argv.slice(2).map((d) => resolve(d)) : [resolve(__dirname, '..')]
const builds = dirs.map((dir) => ({ dir, cases: casesOf(dir, text), samples: {} }))
for (const build of builds) {
  for (const [name, [fn, { warmup }]] of Object.entries(build.cases)) {
    for (let i = 0; i < warmup; i++) fn()
    build.samples[name] = []
  }
}
for (let round = 0; round < ROUNDS; round++) {
  for (const name of Object.keys(builds[0].cases)) {
    for (const build of builds) {
      const [fn, plan] = build.cases[name]
      sample(fn, build.samples[name], plan)
    }
  }
}
for (const build of builds) {
  if (builds.length > 1) process.stderr.write(`${build.dir}\n`)
  for (const [name, samples] of Object.entries(build.samples)) {
    const { p50, p99 } = percentiles(samples)
    const unit = p50 > 1000 ? `${(p50 / 1000).toFixed(2)} ms p50, ${(p99 / 1000).toFixed(2)} ms p99` : `${p50.toFixed(2)} µs p50, ${p99.toFixed(2)} µs p99`
    process.stderr.write(`  ${name.padEnd(40)} ${unit}\n`)
  }
}
