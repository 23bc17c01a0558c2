#!/usr/bin/env node
'use strict'
// Regenerates the policy catalog: installs every server listed in scripts/policies.json
// from npm or PyPI into a cache directory, scans it with `intercept scan`, writes
// policies/<name>.yaml and the table of policies/README.md.
//
//   npm run policies                         # everything
//   npm run policies -- --only tavily-mcp    # one server (a package name; repeatable)
//   npm run policies -- --no-install         # rescan what is already installed
//   npm run policies -- --install-only       # fill the cache, scan nothing
//   npm run policies -- --table              # only rewrite the table of policies/README.md
//
// The cache (default: $INTERCEPT_POLICIES_CACHE or <tmp>/intercept-policies) keeps the
// installs between runs. Servers that cannot be installed or scanned are listed in the
// README with the reason; their old policy file, if any, is left alone.
const { spawn, spawnSync } = require('node:child_process')
const { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join, resolve } = require('node:path')
const { table, withTable } = require('./policies-table.js')

const root = resolve(__dirname, '..')
const policiesDir = join(root, 'policies')
const catalog = JSON.parse(readFileSync(join(__dirname, 'policies.json'), 'utf8'))

const argv = process.argv.slice(2)
const only = argv.flatMap((a, i) => (argv[i - 1] === '--only' ? [a] : []))
const install = !argv.includes('--no-install')
const installOnly = argv.includes('--install-only')
const tableOnly = argv.includes('--table')
const cache = resolve(process.env.INTERCEPT_POLICIES_CACHE || join(tmpdir(), 'intercept-policies'))
const binary = process.env.INTERCEPT_BINARY || join(root, 'target', 'debug', 'intercept')
const timeout = process.env.INTERCEPT_SCAN_TIMEOUT || '90s'

/**
 * policies/<file>.yaml: the MCP registry name, else the package name, with `.` and `/`
 * turned into `-`, in lower case (so that names never clash on case-insensitive disks).
 */
function fileName(registryName, pkg) {
  const base = registryName || pkg.replace(/^@/, '')
  return `${base.replace(/[./]/g, '-').toLowerCase()}.yaml`
}

function slug(server) {
  return `${server.registry}-${server.package.replace(/^@/, '').replace(/[/@.]/g, '-')}-${server.version}`
}

function run(cmd, args, options = {}) {
  // An install that hangs (a stuck download) must not hold up the whole catalog.
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 600_000, killSignal: 'SIGKILL', ...options })
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`)
  if (r.status !== 0) {
    const tail = `${r.stdout || ''}${r.stderr || ''}`.trim().split('\n').slice(-5).join(' | ')
    throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} failed (exit ${r.status}): ${tail}`)
  }
  return r
}

const INSTALL_ENV = {
  ...process.env,
  // Browser downloads are not needed to list tools (and may not be reachable).
  PUPPETEER_SKIP_DOWNLOAD: '1',
  PUPPETEER_SKIP_CHROMIUM_DOWNLOAD: '1',
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1',
}

/** Installs an npm package; returns the command that starts it and its registry name. */
function installNpm(server, dir) {
  const pkgDir = join(dir, 'node_modules', ...server.package.split('/'))
  if (install && !existsSync(join(pkgDir, 'package.json'))) {
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), '{"private":true}\n')
    run('npm', ['install', '--no-audit', '--no-fund', '--omit=dev', `${server.package}@${server.version}`], {
      cwd: dir,
      env: INSTALL_ENV,
    })
  }
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))
  let bin = server.bin
  if (!bin) {
    const bins = typeof manifest.bin === 'string' ? { [manifest.name.split('/').pop()]: manifest.bin } : manifest.bin || {}
    const names = Object.keys(bins)
    bin = names.length === 1 ? names[0] : names.find((n) => n === manifest.name.split('/').pop()) || names[0]
  }
  if (!bin) throw new Error(`${server.package} declares no executable`)
  return {
    command: [join(dir, 'node_modules', '.bin', bin)],
    display: ['npx', '-y', server.package],
    registryName: manifest.mcpName,
  }
}

/** Installs a PyPI package in a virtualenv of its own. */
function installPypi(server, dir) {
  const python = join(dir, 'bin', 'python')
  // `requires` pins what a server's own metadata leaves open (e.g. `mcp<2`).
  const specs = [`${server.package}==${server.version}`, ...(server.requires || [])]
  const stamp = `${specs.join(' ')}\n`
  const installed = existsSync(join(dir, '.installed')) ? readFileSync(join(dir, '.installed'), 'utf8') : ''
  if (install && installed !== stamp) {
    if (!existsSync(python)) run('python3', ['-m', 'venv', dir])
    run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...specs])
    writeFileSync(join(dir, '.installed'), stamp)
  }
  const lib = join(dir, 'lib')
  const site = join(lib, readdirSync(lib).find((d) => d.startsWith('python')), 'site-packages')
  const norm = server.package.replace(/[-.]/g, '_').toLowerCase()
  const info = readdirSync(site).find((d) => d.toLowerCase().startsWith(`${norm}-`) && d.endsWith('.dist-info'))
  if (!info) throw new Error(`${server.package}: no .dist-info in ${site}`)
  const metadata = readFileSync(join(site, info, 'METADATA'), 'utf8')
  const registryName = (/mcp-name:\s*([\w.\-/]+)/.exec(metadata) || [])[1]
  let bin = server.bin
  if (!bin) {
    const entries = existsSync(join(site, info, 'entry_points.txt'))
      ? readFileSync(join(site, info, 'entry_points.txt'), 'utf8')
      : ''
    const section = /\[console_scripts\]([^[]*)/.exec(entries)
    const names = section ? [...section[1].matchAll(/^\s*([\w.-]+)\s*=/gm)].map((m) => m[1]) : []
    bin = names.find((n) => n === server.package) || names[0]
  }
  if (!bin) throw new Error(`${server.package} declares no console script`)
  return { command: [join(dir, 'bin', bin)], display: ['uvx', server.package], registryName }
}

/** Runs `intercept scan` and resolves with its stderr tail on failure. */
function scan(server, started, out, scratch) {
  const fill = (s) => s.replaceAll('{dir}', scratch)
  const shown = (s) => s.replaceAll('{dir}', '/path/to/dir')
  const args = (server.args || []).map(fill)
  const env = { ...process.env }
  for (const [k, v] of Object.entries(server.env || {})) env[k] = fill(v)
  const envNames = Object.keys(server.env || {}).filter((k) => !/PATH$/.test(k) || !/\{dir\}/.test(server.env[k]))
  const display = [
    ...envNames.map((k) => `${k}=…`),
    ...started.display,
    ...(server.args || []).map(shown),
  ].join(' ')
  const scanArgs = [
    'scan', '-o', out, '--timeout', timeout,
    '--package', `${server.registry} ${server.package}@${server.version}`,
    '--display-command', display,
    '--', ...started.command, ...args,
  ]
  return new Promise((done) => {
    const child = spawn(binary, scanArgs, { env, cwd: scratch, stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d) => {
      err += d
    })
    child.on('close', (code) => done(code === 0 ? null : reason(err, code)))
  })
}

/** One line: intercept's error and the last line of the server's stderr, if any. */
function reason(stderr, code) {
  const lines = stderr.trim().split('\n')
  const error = lines.find((l) => l.startsWith('Error: ')) || `exit ${code}`
  const marker = lines.findIndex((l) => l.startsWith("--- last lines of the server's stderr"))
  const last = marker >= 0 ? lines.slice(marker + 1).filter((l) => l.trim() && !/^\s+at /.test(l)).pop() : undefined
  return last && !error.includes(last.trim()) ? `${error} (server: ${last.trim()})` : error
}

async function main() {
  if (!installOnly && !tableOnly && !existsSync(binary)) run('cargo', ['build', '--bin', 'intercept'], { cwd: root, stdio: 'inherit' })
  mkdirSync(cache, { recursive: true })
  const servers = tableOnly ? [] : catalog.servers.filter((s) => only.length === 0 || only.includes(s.package))
  const skipped = []
  let written = 0
  for (const server of servers) {
    if (server.skip) {
      skipped.push({ server, reason: server.skip })
      continue
    }
    const dir = join(cache, slug(server))
    const scratch = join(cache, 'scratch', slug(server))
    mkdirSync(scratch, { recursive: true })
    let started
    try {
      started = server.registry === 'npm' ? installNpm(server, dir) : installPypi(server, dir)
    } catch (e) {
      console.error(`✗ ${server.package}: install failed: ${e.message}`)
      skipped.push({ server, reason: `install failed: ${e.message}` })
      continue
    }
    if (installOnly) {
      console.error(`✓ ${server.package} installed`)
      continue
    }
    const file = fileName(started.registryName, server.package)
    console.error(`… ${server.package}@${server.version} → policies/${file}`)
    const failure = await scan(server, started, join(policiesDir, file), scratch)
    if (failure) {
      console.error(`✗ ${server.package}: ${failure}`)
      skipped.push({ server, reason: failure })
    } else {
      written += 1
    }
  }
  if (installOnly) return
  const readmePath = join(policiesDir, 'README.md')
  let readme = existsSync(readmePath) ? readFileSync(readmePath, 'utf8') : '# Policy catalog\n'
  readme = withTable(readme, table(policiesDir))
  if (only.length === 0 && !tableOnly) readme = withSkipped(readme, skipped)
  writeFileSync(readmePath, readme)
  console.error(`${written} policies written, ${skipped.length} servers skipped`)
}

const SKIP_BEGIN = '<!-- skipped:begin -->'
const SKIP_END = '<!-- skipped:end -->'

/** The list of servers the last full run could not scan, with the reason. */
function withSkipped(readme, skipped) {
  // No local paths in the README: the cache lives wherever the run put it.
  const clean = (s) => s.split(cache).join('<cache>').replace(/\|/g, '/').slice(0, 300)
  const body = skipped.length
    ? skipped.map(({ server, reason }) => `- ${server.registry} \`${server.package}@${server.version}\`: ${clean(reason)}`).join('\n')
    : '(none)'
  const a = readme.indexOf(SKIP_BEGIN)
  const b = readme.indexOf(SKIP_END)
  if (a < 0 || b < a) return `${readme.trimEnd()}\n\n${SKIP_BEGIN}\n${body}\n${SKIP_END}\n`
  return `${readme.slice(0, a + SKIP_BEGIN.length)}\n${body}\n${readme.slice(b)}`
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
