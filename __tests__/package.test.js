'use strict'
// The npm package surface: the launcher, the loader's error, and the typings.
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const { root, tempDir, writeIn } = require('./helpers.js')
const { platformTriple } = require('../platform.js')
const api = require('..')

const launcher = join(root, 'bin', 'intercept.js')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))

function cli(args, env = {}) {
  return spawnSync(process.execPath, [launcher, ...args], { encoding: 'utf8', env: { ...process.env, ...env } })
}

test('the launcher runs the CLI and passes its exit code through', () => {
  const version = cli(['--version'])
  assert.equal(version.status, 0)
  assert.equal(version.stdout.trim(), `intercept ${pkg.version}`)

  const dir = tempDir()
  const good = writeIn(dir, 'good.yaml', 'tools: {}\n')
  const ok = cli(['validate', '-c', good])
  assert.equal(ok.status, 0)
  assert.equal(ok.stdout, 'Policy file is valid.\n')

  const bad = writeIn(dir, 'bad.yaml', 'default: maybe\n')
  const fail = cli(['validate', '-c', bad])
  assert.equal(fail.status, 1)
  assert.equal(fail.stdout, `${bad}:1:10: default must be "allow" or "deny", got "maybe"\n`)

  const check = cli(['check', '-c', good, '--tool', 'x', '--args', '[1]'])
  assert.equal(check.status, 1)
  assert.match(check.stdout, /^deny \(rule \(invalid arguments\)\): Tool arguments must be a JSON object, got an array/)

  assert.equal(cli(['nope']).status, 2)
})

test('a missing addon fails with the platform and how to build it, not the loader internals', () => {
  const r = spawnSync(process.execPath, [launcher, '--version'], {
    encoding: 'utf8',
    env: { ...process.env, INTERCEPT_NATIVE_PATH: '/nonexistent/intercept.node' },
  })
  assert.equal(r.status, 1)
  assert.equal(r.stdout, '', 'nothing on stdout, which belongs to MCP')
  assert.match(r.stderr, new RegExp(`no usable native addon for this platform \\(${platformTriple()}\\)`))
  assert.match(r.stderr, /npm run build/)
  assert.match(r.stderr, /https:\/\/rustup\.rs/)
})

test('index.d.ts declares exactly what the module exports', () => {
  const dts = readFileSync(join(root, 'index.d.ts'), 'utf8')
  const declared = [...dts.matchAll(/export declare (?:function|class) (\w+)/g)].map((m) => m[1]).sort()
  assert.deepEqual(declared, Object.keys(api).sort())
  for (const name of declared) assert.equal(typeof api[name], 'function', name)
  for (const method of ['evaluate', 'commit', 'rollback', 'evaluateAsync', 'commitAsync', 'rollbackAsync', 'filterTools']) {
    assert.equal(typeof api.Engine.prototype[method], 'function', method)
    assert.match(dts, new RegExp(`\\b${method}[<(]`))
  }
})

test('package.json ships every platform as an exact-version optional dependency', () => {
  const triples = {
    'x86_64-unknown-linux-gnu': 'linux-x64-gnu',
    'aarch64-unknown-linux-gnu': 'linux-arm64-gnu',
    'x86_64-unknown-linux-musl': 'linux-x64-musl',
    'x86_64-apple-darwin': 'darwin-x64',
    'aarch64-apple-darwin': 'darwin-arm64',
    'x86_64-pc-windows-msvc': 'win32-x64-msvc',
  }
  assert.deepEqual([...pkg.napi.targets].sort(), Object.keys(triples).sort())
  for (const platform of Object.values(triples)) {
    const name = `@policylayer/intercept-${platform}`
    assert.equal(pkg.optionalDependencies[name], pkg.version, name)
    const sub = JSON.parse(readFileSync(join(root, 'npm', platform, 'package.json'), 'utf8'))
    assert.equal(sub.name, name)
    assert.equal(sub.version, pkg.version)
    assert.equal(sub.main, `intercept.${platform}.node`)
    assert.ok(sub.os && sub.cpu, platform)
    if (platform.startsWith('linux')) assert.deepEqual(sub.libc, [platform.endsWith('musl') ? 'musl' : 'glibc'])
  }
})

test('every shipped policy in policies/ validates', () => {
  const { readdirSync } = require('node:fs')
  const files = readdirSync(join(root, 'policies')).filter((f) => f.endsWith('.yaml'))
  assert.ok(files.length >= 3, files.join(', '))
  for (const f of files) {
    const r = api.validate(join(root, 'policies', f))
    assert.deepEqual(r.errors, [], f)
  }
})
