#!/usr/bin/env node
'use strict'
// Per-call cost of the in-process Node API (engine.evaluate through the native addon),
// on the same 300-tool policy as the Rust benchmark. Prints p50/p99 in microseconds.
// Run: npm run build && node benches/node-api.js
const { Engine, validate } = require('..')

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

/** Times `fn` in batches and returns per-call percentiles in microseconds. */
function measure(fn, { batches = 2000, perBatch = 50 } = {}) {
  for (let i = 0; i < 20000; i++) fn() // warm up
  const samples = []
  for (let b = 0; b < batches; b++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < perBatch; i++) fn()
    samples.push(Number(process.hrtime.bigint() - start) / perBatch / 1000)
  }
  samples.sort((a, b) => a - b)
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]
  return { p50: at(0.5), p99: at(0.99) }
}

const text = policy300()
const engine = new Engine({ policy: text })
const args = { repo: 'dev', title: 'Fix the build', count: 3 }
const cases = {
  'evaluate allow, no counter': () => engine.evaluate({ tool: 'tool_100', args }),
  'evaluate deny rule': () => engine.evaluate({ tool: 'tool_101', args }),
  'evaluate + commit, rolling counter': () => engine.commit(engine.evaluate({ tool: 'tool_102', args })),
  'evaluate + commit, spend counter': () => engine.commit(engine.evaluate({ tool: 'tool_103', args: { amount: 1 } })),
}
const results = {}
for (const [name, fn] of Object.entries(cases)) {
  results[name] = measure(fn, { batches: 400 })
}
results['validate 300 tools'] = measure(() => validate(text), { batches: 100, perBatch: 1 })
for (const [name, { p50, p99 }] of Object.entries(results)) {
  const unit = p50 > 1000 ? `${(p50 / 1000).toFixed(2)} ms p50, ${(p99 / 1000).toFixed(2)} ms p99` : `${p50.toFixed(2)} µs p50, ${p99.toFixed(2)} µs p99`
  process.stderr.write(`${name.padEnd(40)} ${unit}\n`)
}
