'use strict'
// The policy catalog in policies/: every file validates, every generated file is named
// and described as the catalog's conventions say, and the table in policies/README.md
// matches the files (regenerate both with `npm run policies`).
const test = require('node:test')
const assert = require('node:assert/strict')
const { readFileSync, readdirSync } = require('node:fs')
const { join } = require('node:path')
const { root } = require('./helpers.js')
const { generated, table, tableIn } = require('../scripts/policies-table.js')
const api = require('../index.js')

const dir = join(root, 'policies')
const catalog = JSON.parse(readFileSync(join(root, 'scripts', 'policies.json'), 'utf8'))

test('every catalog policy validates', () => {
  const files = readdirSync(dir, { recursive: true }).filter((f) => f.endsWith('.yaml'))
  for (const f of files) assert.deepEqual(api.validate(join(dir, f)).errors, [], f)
})

test('generated policies carry their header and one classified comment per tool', () => {
  const policies = generated(dir)
  assert.ok(policies.length >= 40, `${policies.length} generated policies`)
  const listed = new Map(catalog.servers.map((s) => [`${s.registry} ${s.package}@${s.version}`, s]))
  for (const p of policies) {
    for (const field of ['server', 'package', 'command', 'tools', 'scanned']) {
      assert.ok(p.header[field], `${p.file}: no "# ${field}:" header line`)
    }
    assert.ok(listed.has(p.header.package), `${p.file}: ${p.header.package} is not in scripts/policies.json`)
    const count = Number(/^(\d+) /.exec(p.header.tools)[1])
    assert.equal(p.tools.length, count, `${p.file}: ${count} tools in the header, ${p.tools.length} classified`)
    assert.match(p.file, /^[a-z0-9][a-z0-9_-]*\.yaml$/, p.file)
  }
})

test('policies/README.md lists exactly the generated policies', () => {
  const readme = readFileSync(join(dir, 'README.md'), 'utf8')
  const current = tableIn(readme)
  assert.ok(current, 'policies/README.md has no catalog table markers')
  assert.equal(current, table(dir), 'the table is stale: run `npm run policies -- --table`')
})
