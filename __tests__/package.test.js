'use strict'
// The npm package surface: the launcher, the loader's error, the typings, the platform
// packages and what the published package needs to build from source.
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } = require('node:fs')
const { dirname, join } = require('node:path')
const { root, tempDir, writeIn } = require('./helpers.js')
const { SUPPORTED, platformTriple } = require('../platform.js')
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
  assert.match(r.stderr, new RegExp(`no usable native addon for this platform \\(${platformTriple()}: ${process.platform} ${process.arch}`))
  assert.match(r.stderr, /\/nonexistent\/intercept\.node: not found/)
  assert.match(r.stderr, /INTERCEPT_NATIVE_PATH is set, so nothing else was tried/)
  assert.match(r.stderr, /npm run build/)
  assert.match(r.stderr, /https:\/\/rustup\.rs/)
})

/**
 * Loads a copy of the package's loader from a directory of its own (no local build next to
 * it), with `setup(dir)` adding what the test needs; returns the error it throws.
 */
function loaderErrorIn(setup = () => {}, preload) {
  const dir = tempDir()
  for (const f of ['index.js', 'platform.js', 'package.json']) copyFileSync(join(root, f), join(dir, f))
  setup(dir)
  const script = `try { require(${JSON.stringify(join(dir, 'index.js'))}); console.log('{}') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }`
  const args = preload ? ['-r', preload, '-e', script] : ['-e', script]
  const env = { ...process.env }
  delete env.INTERCEPT_NATIVE_PATH
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', cwd: dir, env })
  assert.equal(r.status, 0, r.stderr)
  return { dir, ...JSON.parse(r.stdout) }
}

test('without its platform package, the error names the platform, the package, the flags that skip it and the fix', () => {
  const { dir, code, message } = loaderErrorIn()
  assert.equal(code, 'INTERCEPT_NATIVE_MISSING')
  const triple = platformTriple()
  const wanted = `@policylayer/intercept-${triple}@${pkg.version}`
  assert.match(message, new RegExp(`for this platform \\(${triple}: ${process.platform} ${process.arch}`))
  if (process.platform === 'linux') assert.match(message, triple.endsWith('musl') ? /, musl\)/ : /, glibc \d+\.\d+\)/)
  assert.ok(message.includes(`optional dependency ${wanted}, which is not installed`), message)
  for (const flag of ['npm --omit=optional', '--no-optional', 'pnpm --no-optional', 'yarn --ignore-optional', '`optional=false` in .npmrc']) {
    assert.ok(message.includes(flag), `${flag} in\n${message}`)
  }
  assert.ok(message.includes(`  npm install ${wanted}\n`), message)
  assert.ok(message.includes(`run \`npm run build\` in ${dir}`), message)
  // There is no install script any more: skipping scripts is not a cause.
  assert.doesNotMatch(message, /ignore-scripts/)
})

test('a platform package that is installed but does not load is reported as such', () => {
  const triple = platformTriple()
  const { message } = loaderErrorIn((dir) => {
    const sub = join(dir, 'node_modules', '@policylayer', `intercept-${triple}`)
    mkdirSync(sub, { recursive: true })
    writeFileSync(join(sub, 'package.json'), JSON.stringify({ name: `@policylayer/intercept-${triple}`, main: 'broken.node' }))
    writeFileSync(join(sub, 'broken.node'), 'not a shared library')
  })
  assert.match(message, new RegExp(`@policylayer/intercept-${triple}: .*broken\\.node`))
  assert.ok(message.includes(`@policylayer/intercept-${triple} is installed but does not load here`), message)
  assert.ok(message.includes(`npm install @policylayer/intercept-${triple}@${pkg.version}`), message)
})

test('on a platform without a prebuilt package, the error lists the prebuilt ones and the source build', () => {
  const dir = tempDir()
  const preload = writeIn(dir, 'arch.js', "Object.defineProperty(process, 'arch', { value: 'riscv64' })\n")
  const { message } = loaderErrorIn(() => {}, preload)
  const triple = platformTriple().replace(process.arch, 'riscv64')
  assert.ok(message.includes(`No prebuilt addon is published for ${triple} (prebuilt: ${SUPPORTED.join(', ')})`), message)
  assert.match(message, /npm run build/)
  assert.doesNotMatch(message, /npm install @policylayer/)
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

const TRIPLES = {
  'x86_64-unknown-linux-gnu': 'linux-x64-gnu',
  'aarch64-unknown-linux-gnu': 'linux-arm64-gnu',
  'x86_64-unknown-linux-musl': 'linux-x64-musl',
  'aarch64-unknown-linux-musl': 'linux-arm64-musl',
  'x86_64-apple-darwin': 'darwin-x64',
  'aarch64-apple-darwin': 'darwin-arm64',
  'x86_64-pc-windows-msvc': 'win32-x64-msvc',
}

test('every platform has a package with its addon and its executable, and the loader knows it', () => {
  assert.deepEqual([...pkg.napi.targets].sort(), Object.keys(TRIPLES).sort())
  assert.deepEqual([...SUPPORTED].sort(), Object.values(TRIPLES).sort())
  for (const platform of Object.values(TRIPLES)) {
    const name = `@policylayer/intercept-${platform}`
    const sub = JSON.parse(readFileSync(join(root, 'npm', platform, 'package.json'), 'utf8'))
    assert.equal(sub.name, name)
    assert.equal(sub.version, pkg.version)
    assert.equal(sub.main, `intercept.${platform}.node`)
    const exe = platform.startsWith('win32') ? 'intercept.exe' : 'intercept'
    assert.deepEqual(sub.files, [`intercept.${platform}.node`, exe], platform)
    assert.ok(sub.os && sub.cpu, platform)
    assert.ok(!sub.bin, `${platform}: the main package owns the intercept command`)
    if (platform.startsWith('linux')) assert.deepEqual(sub.libc, [platform.endsWith('musl') ? 'musl' : 'glibc'])
  }
})

test('the committed package.json installs with npm ci: no unpublished optional dependencies, no install scripts', () => {
  // The release pins the platform packages (napi pre-publish); a lock file cannot list
  // packages that are not published yet, so the committed manifest names none.
  assert.equal(pkg.optionalDependencies, undefined)
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'))
  assert.equal(lock.packages[''].optionalDependencies, undefined)
  assert.equal(lock.packages[''].hasInstallScript, undefined)
  for (const hook of ['preinstall', 'install', 'postinstall']) assert.equal(pkg.scripts[hook], undefined, hook)
  // A clone builds its addon from source; npm runs `prepare` only for a local project or a
  // git dependency, never for a package installed from the registry.
  assert.equal(pkg.scripts.prepare, 'node scripts/build.js --prepare')
  assert.ok(!pkg.files.includes('scripts/install.js'))
  assert.ok(!existsSync(join(root, 'scripts', 'install.js')))
})

test('the release steps on placeholder builds: every platform package filled and pinned at the exact version', () => {
  // The publish job's commands (napi artifacts, placing the executables, napi pre-publish
  // without publishing, the final check), in a copy, with placeholder files for the builds.
  const dir = tempDir()
  for (const f of ['package.json', 'index.js', 'index.d.ts', 'platform.js']) copyFileSync(join(root, f), join(dir, f))
  cpSync(join(root, 'npm'), join(dir, 'npm'), { recursive: true })
  for (const [triple, platform] of Object.entries(TRIPLES)) {
    const out = join(dir, 'artifacts', `bindings-${triple}`)
    mkdirSync(out, { recursive: true })
    writeFileSync(join(out, `intercept.${platform}.node`), 'addon placeholder')
    writeFileSync(join(out, platform.startsWith('win32') ? 'intercept.exe' : 'intercept'), 'executable placeholder')
  }
  const napi = join(root, 'node_modules', '.bin', 'napi')
  const step = (command, args) => {
    const r = spawnSync(command, args, { cwd: dir, encoding: 'utf8' })
    assert.equal(r.status, 0, `${command} ${args.join(' ')}\n${r.stdout}\n${r.stderr}`)
  }
  const packages = join(root, 'scripts', 'platform-packages.js')
  const notReady = spawnSync(process.execPath, [packages, 'check'], { cwd: dir, encoding: 'utf8' })
  assert.equal(notReady.status, 1, 'check fails before the release steps')
  assert.match(notReady.stderr, /optionalDependencies\["@policylayer\/intercept-linux-x64-gnu"\] is undefined/)
  step(napi, ['artifacts'])
  step(process.execPath, [packages, 'place'])
  step(napi, ['pre-publish', '-t', 'npm', '--no-gh-release', '--skip-optional-publish'])
  const withPrepare = spawnSync(process.execPath, [packages, 'check'], { cwd: dir, encoding: 'utf8' })
  assert.equal(withPrepare.status, 1, 'check refuses a manifest that still has prepare')
  assert.match(withPrepare.stderr, /scripts\.prepare would ship/)
  step('npm', ['pkg', 'delete', 'scripts.prepare'])
  step(process.execPath, [packages, 'check'])
  const released = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  assert.equal(released.scripts.prepare, undefined)
  assert.equal(released.scripts.build, 'node scripts/build.js', 'npm run build still builds from source')
  assert.deepEqual(
    released.optionalDependencies,
    Object.fromEntries(Object.values(TRIPLES).map((p) => [`@policylayer/intercept-${p}`, pkg.version])),
  )
  assert.equal(readFileSync(join(dir, 'index.js'), 'utf8'), readFileSync(join(root, 'index.js'), 'utf8'), 'napi artifacts keeps the loader')
  if (process.platform !== 'win32') assert.equal(statSync(join(dir, 'npm', 'linux-arm64-musl', 'intercept')).mode & 0o777, 0o755)
})

test('the release script names a mistyped argument instead of ignoring it', () => {
  const packages = join(root, 'scripts', 'platform-packages.js')
  const typo = spawnSync(process.execPath, [packages, 'build', '--target', 'x86_64-unknown-linux-musl', '--cross-compil'], { cwd: root, encoding: 'utf8' })
  assert.equal(typo.status, 1)
  assert.match(typo.stderr, /unknown argument "--cross-compil" \(expected --use-napi-cross, --cross-compile, -x, --target, --out\)/)
  const command = spawnSync(process.execPath, [packages, 'publish'], { cwd: root, encoding: 'utf8' })
  assert.equal(command.status, 1)
  assert.match(command.stderr, /usage: platform-packages\.js build\|place\|check\|smoke/)
})

test('the packed main package holds everything cargo needs to build it', () => {
  // The files npm would publish, copied on their own: cargo must parse the manifest there
  // (it checks every declared target, benches included) with the shipped lock file.
  const packed = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })
  assert.equal(packed.status, 0, packed.stderr)
  const files = JSON.parse(packed.stdout)[0].files.map((f) => f.path)
  const dir = tempDir()
  for (const f of files) {
    mkdirSync(dirname(join(dir, f)), { recursive: true })
    copyFileSync(join(root, f), join(dir, f))
  }
  // `cargo fetch` loads the manifest as a build does (every declared target must exist) and
  // checks the lock file, without compiling; the dependencies are in cargo's cache already.
  const host = /^host: (\S+)$/m.exec(spawnSync('rustc', ['-vV'], { encoding: 'utf8' }).stdout)[1]
  const fetch = spawnSync('cargo', ['fetch', '--locked', '--offline', '--target', host], { cwd: dir, encoding: 'utf8' })
  assert.equal(fetch.status, 0, fetch.stderr)
  const meta = spawnSync('cargo', ['metadata', '--no-deps', '--locked', '--offline', '--format-version', '1'], { cwd: dir, encoding: 'utf8' })
  assert.equal(meta.status, 0, meta.stderr)
  const [crate] = JSON.parse(meta.stdout).packages
  for (const target of crate.targets) {
    // Tests and examples cargo finds on its own are optional; declared ones must be there.
    if (['test', 'example'].some((k) => target.kind.includes(k))) continue
    assert.ok(existsSync(target.src_path), `${target.kind} ${target.name}: ${target.src_path} is not packed`)
  }
  assert.ok(files.includes(crate.readme), `readme ${crate.readme}`)
  for (const f of ['Cargo.toml', 'Cargo.lock', 'build.rs', 'scripts/build.js', 'src/lib.rs', 'src/main.rs']) assert.ok(files.includes(f), f)
  // Files the library and the binary embed with include_str!/include_bytes! are shipped with
  // them. (The benches are shipped only because cargo parses every declared target.)
  for (const f of files.filter((f) => f.startsWith('src/') && f.endsWith('.rs'))) {
    for (const [, embedded] of readFileSync(join(root, f), 'utf8').matchAll(/include_(?:str|bytes)!\("([^"]+)"\)/g)) {
      assert.ok(existsSync(join(dir, dirname(f), embedded)), `${f} embeds ${embedded}, which is not packed`)
    }
  }
  assert.ok(!files.some((f) => f.endsWith('.node')), 'no addon in the main package')
})

test('every shipped policy in policies/ validates', () => {
  const files = readdirSync(join(root, 'policies'), { recursive: true }).filter((f) => f.endsWith('.yaml'))
  assert.ok(files.length >= 3, files.join(', '))
  for (const f of files) {
    const r = api.validate(join(root, 'policies', f))
    assert.deepEqual(r.errors, [], f)
  }
})

test('the docs pin the package at its own version, and the package ships its changelog and security policy', () => {
  const pinned = /@policylayer\/intercept@(\d+\.\d+\.\d+[^\s/"'`,)]*)/g
  const stale = []
  for (const file of ['README.md', ...readdirSync(join(root, 'docs')).map((f) => join('docs', f))]) {
    for (const [text, version] of readFileSync(join(root, file), 'utf8').matchAll(pinned)) {
      if (version !== pkg.version) stale.push(`${file}: ${text}`)
    }
  }
  assert.deepEqual(stale, [], `pinned at another version than ${pkg.version}`)
  for (const file of ['CHANGELOG.md', 'SECURITY.md']) assert.ok(pkg.files.includes(file), `${file} is not in files`)
})
