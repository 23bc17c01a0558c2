#!/usr/bin/env node
'use strict'
// The packaging test: builds this machine's platform package the way the release does, packs
// it and the main package, installs both into empty projects (npm, npm --ignore-scripts, pnpm)
// with no Rust toolchain on PATH, and checks that what users run works: `npx intercept
// --version`, the proxy in front of server-everything (through the npm launcher and through the
// platform package's executable), require() and ESM import of the API. Then it checks that the
// packed main package builds from source with `npm run build` and loads what it built.
//
// node scripts/package-test.js [--keep]      (--keep leaves the temporary directory)
//
// The platform package is not on the registry before a release, so each test project maps it
// to the packed tarball with an override (npm `overrides`, pnpm `pnpm.overrides`): the package
// manager then resolves the main package's exact-version optional dependency to that file, as
// it would resolve it from the registry. Nothing else is installed: the main package has no
// other dependencies.
const { spawnSync, spawn } = require('node:child_process')
const fs = require('node:fs')
const { tmpdir } = require('node:os')
const { join, dirname, delimiter } = require('node:path')
const { parseTriple } = require('@napi-rs/cli')
const { platformTriple } = require('../platform.js')

const started = process.hrtime.bigint()
const root = join(__dirname, '..')
const PNPM = 'pnpm@10.34.9'
const keep = process.argv.includes('--keep')
const work = fs.mkdtempSync(join(tmpdir(), 'intercept-package-test-'))
const pkg = JSON.parse(fs.readFileSync(join(root, 'package.json'), 'utf8'))
const timings = []
const results = []

function log(message) {
  console.error(`package-test: ${message}`)
}

/** Runs `fn`, recording how long it took under `name`. */
function timed(name, fn) {
  const start = process.hrtime.bigint()
  try {
    return fn()
  } finally {
    timings.push([name, Number(process.hrtime.bigint() - start) / 1e9])
  }
}

async function timedAsync(name, fn) {
  const start = process.hrtime.bigint()
  try {
    return await fn()
  } finally {
    timings.push([name, Number(process.hrtime.bigint() - start) / 1e9])
  }
}

/** Environment without the variables an enclosing `npm run` sets, which would steer the npm under test. */
function cleanEnv(extra) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v
  return { ...env, ...extra }
}

/** Runs a command to completion; throws with its output if it fails. */
function sh(command, args, { cwd = root, env = cleanEnv(), input } = {}) {
  const r = spawnSync(command, args, { cwd, env, input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  if (r.error) throw new Error(`${command} ${args.join(' ')}: ${r.error.message}`)
  if (r.status !== 0) {
    const shown = args.map((a) => (a.includes('\n') ? '<script>' : a)).join(' ')
    throw new Error(`${command} ${shown} (in ${cwd}) exited with ${r.status}\n${r.stdout}\n${r.stderr}`)
  }
  return r
}

/** Like sh, but the output goes straight to the terminal (long builds). */
function shLoud(command, args, { cwd = root, env = cleanEnv() } = {}) {
  log(`$ ${command} ${args.join(' ')}`)
  const r = spawnSync(command, args, { cwd, env, stdio: ['ignore', 'inherit', 'inherit'] })
  if (r.error) throw new Error(`${command}: ${r.error.message}`)
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${r.status}`)
}

function check(project, name, fn) {
  try {
    const detail = fn()
    results.push({ project, name, ok: true, detail })
  } catch (err) {
    results.push({ project, name, ok: false, detail: String((err && err.message) || err).trim() })
  }
}

async function checkAsync(project, name, fn) {
  try {
    const detail = await fn()
    results.push({ project, name, ok: true, detail })
  } catch (err) {
    results.push({ project, name, ok: false, detail: String((err && err.message) || err).trim() })
  }
}

function expect(condition, message) {
  if (!condition) throw new Error(message)
}

// --- the host's target --------------------------------------------------------------------

const rustHost = /^host: (\S+)$/m.exec(sh('rustc', ['-vV']).stdout)[1]
const platform = parseTriple(rustHost).platformArchABI
if (platform !== platformTriple()) {
  throw new Error(`rustc builds for ${rustHost} (${platform}) but Node runs as ${platformTriple()}`)
}
const platformPackage = `${pkg.name}-${platform}`
const exe = process.platform === 'win32' ? 'intercept.exe' : 'intercept'

// --- 1. the platform package, as the release builds it ------------------------------------

// A copy of what the release job starts from: the files npm would publish, package.json and
// this platform's npm directory, with a napi config that names this one target.
const stage = join(work, 'stage')
const artifacts = join(stage, 'artifacts', `bindings-${rustHost}`)
timed('build platform package (napi build: addon + executable)', () => {
  shLoud(process.execPath, [join(root, 'scripts', 'platform-packages.js'), 'build', '--target', rustHost, '--out', artifacts])
})
timed('stage, napi artifacts, napi pre-publish, pack', () => {
  const listed = JSON.parse(sh('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root }).stdout)[0].files
  for (const { path } of listed) {
    fs.mkdirSync(dirname(join(stage, path)), { recursive: true })
    fs.copyFileSync(join(root, path), join(stage, path))
  }
  fs.cpSync(join(root, 'npm', platform), join(stage, 'npm', platform), { recursive: true })
  const config = join(stage, 'napi.host.json')
  fs.writeFileSync(config, JSON.stringify({ binaryName: pkg.napi.binaryName, packageName: pkg.napi.packageName, targets: [rustHost] }))
  const napi = join(root, 'node_modules', '.bin', 'napi')
  // The release job's publish steps, in order (.github/workflows/release.yml).
  shLoud(napi, ['artifacts', '--cwd', stage, '-c', config])
  shLoud(process.execPath, [join(root, 'scripts', 'platform-packages.js'), 'place', '-c', config], { cwd: stage })
  shLoud(napi, ['pre-publish', '--cwd', stage, '-c', config, '-t', 'npm', '--no-gh-release', '--skip-optional-publish'])
  shLoud('npm', ['pkg', 'delete', 'scripts.prepare'], { cwd: stage })
  shLoud(process.execPath, [join(root, 'scripts', 'platform-packages.js'), 'check', '-c', config], { cwd: stage })
})

const tarballs = join(work, 'tarballs')
fs.mkdirSync(tarballs)
function pack(dir) {
  const [info] = JSON.parse(sh('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tarballs], { cwd: dir }).stdout)
  return { file: join(tarballs, info.filename), size: info.size, unpackedSize: info.unpackedSize, files: info.files }
}
const platformTgz = pack(join(stage, 'npm', platform))
const mainTgz = pack(stage)
const stagedPkg = JSON.parse(fs.readFileSync(join(stage, 'package.json'), 'utf8'))

check('tarballs', 'main package pins the platform package at its exact version', () => {
  expect(stagedPkg.optionalDependencies && stagedPkg.optionalDependencies[platformPackage] === pkg.version,
    `optionalDependencies: ${JSON.stringify(stagedPkg.optionalDependencies)}`)
  return `${platformPackage}: ${pkg.version}`
})
check('tarballs', 'main package has no install scripts and no addon', () => {
  const scripts = stagedPkg.scripts || {}
  const hooks = ['preinstall', 'install', 'postinstall', 'prepare'].filter((s) => scripts[s])
  expect(hooks.length === 0, `install scripts: ${hooks.join(', ')}`)
  const binaries = mainTgz.files.filter((f) => f.path.endsWith('.node'))
  expect(binaries.length === 0, `ships ${binaries.map((f) => f.path).join(', ')}`)
  return `${mainTgz.files.length} files`
})
check('tarballs', 'platform package holds the addon and the executable (mode 755)', () => {
  const listing = sh('tar', ['-tvzf', platformTgz.file]).stdout
  const addon = `package/intercept.${platform}.node`
  expect(listing.includes(addon), `no ${addon} in\n${listing}`)
  const line = listing.split('\n').find((l) => l.endsWith(`package/${exe}`))
  expect(line, `no package/${exe} in\n${listing}`)
  if (process.platform !== 'win32') expect(line.startsWith('-rwxr-xr-x'), `mode: ${line}`)
  return line.split(/\s+/)[0]
})

// --- 2. a PATH without Rust ---------------------------------------------------------------

// node, npm and npx linked into a directory of their own, then the system directories that
// hold no cargo or rustc (sh, tar and the like).
const bin = join(work, 'bin')
fs.mkdirSync(bin)
function which(name) {
  for (const dir of (process.env.PATH || '').split(delimiter)) {
    const candidate = join(dir, name)
    if (dir && fs.existsSync(candidate)) return fs.realpathSync(candidate)
  }
  throw new Error(`${name} is not on PATH`)
}
fs.symlinkSync(process.execPath, join(bin, 'node'))
fs.symlinkSync(which('npm'), join(bin, 'npm'))
fs.symlinkSync(which('npx'), join(bin, 'npx'))
const systemDirs = ['/usr/local/bin', '/usr/bin', '/bin'].filter(
  (dir) => fs.existsSync(dir) && !['cargo', 'rustc', 'rustup'].some((tool) => fs.existsSync(join(dir, tool))),
)
const noRustPath = [bin, ...systemDirs].join(delimiter)
const noRustEnv = cleanEnv({ PATH: noRustPath, INTERCEPT_AUDIT_DIR: join(work, 'events') })
delete noRustEnv.CARGO_HOME
delete noRustEnv.RUSTUP_HOME
delete noRustEnv.CARGO
const cargoVisible = spawnSync('sh', ['-c', 'command -v cargo || command -v rustc'], { env: noRustEnv, encoding: 'utf8' })
if (cargoVisible.status === 0) throw new Error(`cannot hide Rust: ${cargoVisible.stdout.trim()} is still on ${noRustPath}`)

// --- 3. install into empty projects -------------------------------------------------------

const POLICY = `hide:
  - get-env
tools:
  echo:
    rules:
      - name: no shell expansions
        conditions:
          - path: args.message
            op: regex
            value: '^[^$\`]*$'
        on_deny: "Messages must not contain shell expansions"
`
const everything = join(root, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js')

// What the user runs in an installed project, each checked the same way: the same body after
// a CommonJS require and after an ESM import.
const API_BODY = `
const policy = process.argv[1]
const engine = new Engine({ policy })
console.log(JSON.stringify({
  validate: validate(policy).valid,
  evaluate: evaluate(policy, { tool: 'get-env', args: {} }).decision,
  engine: engine.evaluate({ tool: 'echo', args: { message: '$(id)' } }).decision,
}))`
const REQUIRE_SCRIPT = `const { Engine, evaluate, validate } = require('@policylayer/intercept')${API_BODY}`
const IMPORT_SCRIPT = `import { Engine, evaluate, validate } from '@policylayer/intercept'${API_BODY}`
const EXPECTED_API = { validate: true, evaluate: 'deny', engine: 'deny' }

/**
 * Speaks MCP over stdio to `command`: initialize, one allowed call (echo) and one denied call
 * (get-env, hidden by the policy). Resolves with both answers.
 */
function proxyRoundTrip(command, args, { cwd, env }) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stderr = ''
    let buffer = ''
    const answers = new Map()
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`no answer within 60 s; stderr:\n${stderr}`))
    }, 60000)
    const send = (msg) => child.stdin.write(`${JSON.stringify(msg)}\n`)
    child.stderr.on('data', (d) => {
      stderr += d
    })
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (answers.has(2) && answers.has(3)) resolve({ allowed: answers.get(2), denied: answers.get(3), code })
      else reject(new Error(`exited with ${code} before answering; stderr:\n${stderr}`))
    })
    child.stdout.on('data', (d) => {
      buffer += d
      let newline
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        if (!line.trim()) continue
        const msg = JSON.parse(line)
        if (msg.id === undefined || msg.method) continue
        answers.set(msg.id, msg)
        if (msg.id === 1) {
          send({ jsonrpc: '2.0', method: 'notifications/initialized' })
          send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hello' } } })
          send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'get-env', arguments: {} } })
        }
        if (answers.has(2) && answers.has(3)) child.stdin.end()
      }
    })
    send({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'package-test', version: '1' } },
    })
  })
}

function expectRoundTrip({ allowed, denied }) {
  const allowedText = allowed.result && allowed.result.content && allowed.result.content[0].text
  expect(allowedText === 'Echo: hello', `allowed call: ${JSON.stringify(allowed)}`)
  const deniedText = denied.result && denied.result.content && denied.result.content[0].text
  expect(denied.result && denied.result.isError === true && /^\[INTERCEPT POLICY DENIED\] .*hidden/.test(deniedText),
    `denied call: ${JSON.stringify(denied)}`)
  return `${allowedText} / ${deniedText}`
}

const MODES = [
  { name: 'npm', install: (dir) => sh('npm', ['install', '--no-audit', '--no-fund', mainTgz.file], { cwd: dir, env: noRustEnv }) },
  {
    name: 'npm --ignore-scripts',
    install: (dir) => sh('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', mainTgz.file], { cwd: dir, env: noRustEnv }),
  },
  {
    name: PNPM,
    install: (dir) =>
      sh('npx', ['-y', PNPM, 'add', '--store-dir', join(work, 'pnpm-store'), `file:${mainTgz.file}`], { cwd: dir, env: noRustEnv }),
  },
]

async function testProject(mode, index) {
  const dir = join(work, `project-${index}`)
  fs.mkdirSync(dir)
  const override = { [platformPackage]: `file:${platformTgz.file}` }
  fs.writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: `intercept-package-test-${index}`, version: '1.0.0', private: true, overrides: override, pnpm: { overrides: override } }, null, 2),
  )
  const policy = join(dir, 'policy.yaml')
  fs.writeFileSync(policy, POLICY)
  const run = (command, args) => sh(command, args, { cwd: dir, env: noRustEnv })

  let output
  timed(`${mode.name}: install`, () =>
    check(mode.name, 'installs without cargo', () => {
      const r = mode.install(dir)
      output = `${r.stdout}\n${r.stderr}`
      return output.trim().split('\n').filter(Boolean).slice(-1)[0]
    }),
  )
  if (output === undefined) return
  check(mode.name, 'says nothing about install or build scripts', () => {
    expect(!/install.scripts|allowScripts|build script|approve-builds/i.test(output), `install output:\n${output}`)
  })
  let platformDir
  check(mode.name, `${platformPackage} installed as the main package's optional dependency`, () => {
    const mainDir = fs.realpathSync(join(dir, 'node_modules', '@policylayer', 'intercept'))
    const manifest = require.resolve(`${platformPackage}/package.json`, { paths: [mainDir] })
    const { version } = JSON.parse(fs.readFileSync(manifest, 'utf8'))
    expect(version === pkg.version, `version ${version}`)
    platformDir = dirname(manifest)
    return version
  })

  timed(`${mode.name}: checks`, () => {
    check(mode.name, 'npx intercept --version', () => {
      const out = run('npx', ['intercept', '--version']).stdout.trim()
      expect(out === `intercept ${pkg.version}`, `printed ${JSON.stringify(out)}`)
      return out
    })
    check(mode.name, `platform package's ${exe} --version`, () => {
      expect(platformDir, 'no platform package')
      const path = join(platformDir, exe)
      if (process.platform !== 'win32') expect((fs.statSync(path).mode & 0o111) !== 0, `${path} is not executable`)
      const out = run(path, ['--version']).stdout.trim()
      expect(out === `intercept ${pkg.version}`, `printed ${JSON.stringify(out)}`)
      return out
    })
    check(mode.name, "require('@policylayer/intercept')", () => {
      const out = JSON.parse(run('node', ['-e', REQUIRE_SCRIPT, POLICY]).stdout)
      expect(JSON.stringify(out) === JSON.stringify(EXPECTED_API), JSON.stringify(out))
      return JSON.stringify(out)
    })
    check(mode.name, "import { Engine, evaluate, validate } from '@policylayer/intercept'", () => {
      const out = JSON.parse(run('node', ['--input-type=module', '-e', IMPORT_SCRIPT, POLICY]).stdout)
      expect(JSON.stringify(out) === JSON.stringify(EXPECTED_API), JSON.stringify(out))
      return JSON.stringify(out)
    })
  })
  const proxyArgs = ['-c', policy, '--state', 'memory', '--', process.execPath, everything]
  await timedAsync(`${mode.name}: proxy`, async () => {
    await checkAsync(mode.name, 'proxy via the npm launcher: one allowed, one denied call', async () =>
      expectRoundTrip(await proxyRoundTrip(join(dir, 'node_modules', '.bin', 'intercept'), proxyArgs, { cwd: dir, env: noRustEnv })),
    )
    await checkAsync(mode.name, `proxy via the platform package's ${exe}: one allowed, one denied call`, async () => {
      expect(platformDir, 'no platform package')
      return expectRoundTrip(await proxyRoundTrip(join(platformDir, exe), proxyArgs, { cwd: dir, env: noRustEnv }))
    })
  })
}

// --- 4. the packed main package builds from source ----------------------------------------

function testSourceBuild() {
  // Inside a directory that declares a Cargo workspace of its own, as a user's project may:
  // the package must still build as its own workspace.
  const outer = join(work, 'source-build')
  fs.mkdirSync(outer)
  fs.writeFileSync(join(outer, 'Cargo.toml'), '[workspace]\nresolver = "2"\n')
  sh('tar', ['-xzf', mainTgz.file, '-C', outer])
  const dir = join(outer, 'package')
  // The repository's target directory, so the dependencies are not compiled again. npm dates
  // packed files 1985, and cargo names units by paths relative to the package, so it would
  // take the repository's build for this one and compile nothing: dated now, the shipped
  // sources are compiled for real.
  const now = new Date()
  for (const f of fs.readdirSync(dir, { recursive: true })) fs.utimesSync(join(dir, f), now, now)
  const env = cleanEnv({ CARGO_TARGET_DIR: process.env.CARGO_TARGET_DIR || join(root, 'target') })
  timed('source build: npm run build', () =>
    check('source build', 'npm run build in the unpacked main package (cargo on PATH)', () => {
      shLoud('npm', ['run', 'build'], { cwd: dir, env })
      const addon = join(dir, `intercept.${platform}.node`)
      expect(fs.existsSync(addon), `${addon} was not built`)
      return `${(fs.statSync(addon).size / 1e6).toFixed(1)} MB addon`
    }),
  )
  check('source build', 'the built addon loads (no platform package, no cargo on PATH)', () => {
    const script = `const api = require('./index.js'); const d = api.evaluate(process.argv[1], { tool: 'get-env', args: {} }); console.log(d.decision + ' ' + d.reason)`
    const out = sh('node', ['-e', script, POLICY], { cwd: dir, env: noRustEnv }).stdout.trim()
    expect(out === 'deny hidden', out)
    return out
  })
}

// --- run ----------------------------------------------------------------------------------

async function main() {
  for (const [i, mode] of MODES.entries()) await testProject(mode, i + 1)
  testSourceBuild()
  const total = Number(process.hrtime.bigint() - started) / 1e9

  const kb = (n) => `${(n / 1024).toFixed(0)} kB`
  console.log('\nTarballs')
  console.log(`  ${pkg.name}@${pkg.version}: ${kb(mainTgz.size)} packed, ${kb(mainTgz.unpackedSize)} unpacked, ${mainTgz.files.length} files`)
  console.log(`  ${platformPackage}@${pkg.version}: ${kb(platformTgz.size)} packed, ${kb(platformTgz.unpackedSize)} unpacked, ${platformTgz.files.length} files`)
  console.log(`\nResults (platform ${platform}, PATH without cargo: ${noRustPath})`)
  for (const r of results) {
    console.log(`  ${r.ok ? 'PASS' : 'FAIL'}  [${r.project}] ${r.name}${r.ok && r.detail ? `: ${r.detail}` : ''}`)
    if (!r.ok) console.log(r.detail.replace(/^/gm, '        '))
  }
  console.log('\nTimings')
  for (const [name, seconds] of timings) console.log(`  ${seconds.toFixed(1).padStart(7)} s  ${name}`)
  console.log(`  ${total.toFixed(1).padStart(7)} s  in all`)
  const failed = results.filter((r) => !r.ok)
  if (!keep) fs.rmSync(work, { recursive: true, force: true })
  else console.log(`\nkept ${work}`)
  if (failed.length) {
    console.log(`\n${failed.length} of ${results.length} checks failed`)
    process.exitCode = 1
  } else {
    console.log(`\nall ${results.length} checks passed`)
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
