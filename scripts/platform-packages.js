#!/usr/bin/env node
'use strict'
// The per-platform npm packages (npm/<platform>/), as the release workflow builds, fills and
// checks them. Each carries the Node addon (intercept.<platform>.node) and the native
// `intercept` executable (`intercept.exe` on Windows). Run from the package root.
//
//   build --target TRIPLE [--use-napi-cross | --cross-compile] [--out DIR]
//       builds the addon and the executable for TRIPLE into DIR (default build/), with the
//       same cross toolchain for both
//   place [--artifacts DIR] [-c CONFIG]
//       copies each target's executable from DIR/bindings-<triple>/ (default artifacts/) into
//       npm/<platform>/ with mode 0755 (`napi artifacts` moves the addons, not executables)
//   check [-c CONFIG]
//       every npm/<platform>/ holds its addon and executable at the root package's version,
//       package.json pins every one in optionalDependencies at that exact version, and it
//       has no lifecycle script that runs on install (`prepare` included: the release
//       deletes it from the published manifest)
//   smoke
//       with a downloaded addon and executable in the package root, on a machine of their
//       platform: both print the version and validate a policy, and the API evaluates a call
//       (needs no npm install)
//
// CONFIG is a napi config file (`{ binaryName, packageName, targets }`) that replaces
// package.json `napi`, e.g. one target for a local dry run.
const { spawnSync } = require('node:child_process')
const { chmodSync, copyFileSync, existsSync, readFileSync, statSync } = require('node:fs')
const { join, resolve } = require('node:path')

const root = join(__dirname, '..')
const exeName = (platform) => (platform.startsWith('win32') ? 'intercept.exe' : 'intercept')

/** napi's own triple parser, so platform names match the ones napi gives the packages. */
function parseTriple(triple) {
  return require('@napi-rs/cli').parseTriple(triple)
}

function fail(message) {
  console.error(`platform-packages: ${message}`)
  process.exit(1)
}

/** Fails on any argument `known` (flags, and options with their value) does not cover. */
function rejectUnknown(args, { flags = [], options = [] }) {
  for (let i = 0; i < args.length; i++) {
    if (options.includes(args[i])) i++
    else if (!flags.includes(args[i])) fail(`unknown argument ${JSON.stringify(args[i])} (expected ${[...flags, ...options].join(', ')})`)
  }
}

function option(args, names, fallback) {
  const i = args.findIndex((a) => names.includes(a))
  if (i === -1) return fallback
  if (i + 1 >= args.length) fail(`${args[i]} needs a value`)
  return args[i + 1]
}

function readConfig(args) {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8'))
  const configPath = option(args, ['-c', '--config-path'])
  const napi = configPath ? JSON.parse(readFileSync(configPath, 'utf8')) : pkg.napi
  if (!napi || !Array.isArray(napi.targets) || napi.targets.length === 0) fail('no napi targets configured')
  const targets = napi.targets.map((triple) => {
    const { platformArchABI } = parseTriple(triple)
    return { triple, platform: platformArchABI, exe: exeName(platformArchABI) }
  })
  return { pkg, binaryName: napi.binaryName || pkg.napi.binaryName, packageName: napi.packageName || pkg.name, targets }
}

function run(command, args, env = process.env) {
  console.error(`$ ${command} ${args.join(' ')}`)
  const r = spawnSync(command, args, { stdio: 'inherit', env, shell: process.platform === 'win32' })
  if (r.error) fail(`cannot run ${command}: ${r.error.message}`)
  if (r.status !== 0) fail(`${command} ${args.join(' ')} exited with ${r.status}`)
}

function build(args) {
  rejectUnknown(args, { flags: ['--use-napi-cross', '--cross-compile', '-x'], options: ['--target', '--out'] })
  const triple = option(args, ['--target'])
  if (!triple) fail('build needs --target TRIPLE')
  const out = option(args, ['--out'], 'build')
  const cross = ['--use-napi-cross', '--cross-compile', '-x'].filter((f) => args.includes(f))
  const napi = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'napi.cmd' : 'napi')
  const env = { ...process.env }
  // The glibc 2.17 cross toolchain's aarch64 gcc (4.8) does not define __ARM_ARCH, without
  // which ring's assembly does not build ("ARM assembler must define __ARM_ARCH").
  const cflags = `CFLAGS_${triple.replace(/-/g, '_')}`
  if (cross.includes('--use-napi-cross') && triple.startsWith('aarch64-') && !env[cflags]) env[cflags] = '-D__ARM_ARCH=8'
  // --no-js: index.js and index.d.ts are written by hand; the generated typings go to the
  // output directory, where they can be compared but are not shipped.
  run(napi, ['build', '--platform', '--release', '--target', triple, ...cross, '--features', 'node', '--no-js', '--dts', 'binding.d.ts', '--output-dir', out], env)
  // The same toolchain for the `[[bin]]`: napi copies it to the output directory as well.
  run(napi, ['build', '--release', '--target', triple, ...cross, '--bin', 'intercept', '--output-dir', out], env)
  const platform = parseTriple(triple).platformArchABI
  for (const file of [`intercept.${platform}.node`, exeName(platform)]) {
    if (!existsSync(join(out, file))) fail(`the build left no ${join(out, file)}`)
  }
}

function place(args) {
  rejectUnknown(args, { options: ['--artifacts', '-c', '--config-path'] })
  const { targets } = readConfig(args)
  const artifacts = resolve(option(args, ['--artifacts'], 'artifacts'))
  for (const { triple, platform, exe } of targets) {
    const source = join(artifacts, `bindings-${triple}`, exe)
    if (!existsSync(source)) fail(`missing ${source}: the build job of ${triple} uploads it next to the addon`)
    const dest = join('npm', platform, exe)
    copyFileSync(source, dest)
    // Artifacts lose their mode on the way; npm pack keeps the one set here.
    chmodSync(dest, 0o755)
    console.error(`platform-packages: ${source} -> ${dest}`)
  }
}

function check(args) {
  rejectUnknown(args, { options: ['-c', '--config-path'] })
  const { pkg, binaryName, packageName, targets } = readConfig(args)
  const problems = []
  // `prepare` builds a clone's addon from source. npm never runs it for a registry package,
  // but npm 11 lists it among the install scripts to approve when the package comes from a
  // tarball, git or a directory, so the published manifest carries none.
  for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) {
    if (pkg.scripts && pkg.scripts[hook]) {
      problems.push(`package.json scripts.${hook} would ship: remove it from the published manifest (npm pkg delete scripts.${hook})`)
    }
  }
  const pinned = pkg.optionalDependencies || {}
  for (const { platform, exe } of targets) {
    const name = `${packageName}-${platform}`
    if (pinned[name] !== pkg.version) {
      problems.push(`optionalDependencies["${name}"] is ${JSON.stringify(pinned[name])}, expected "${pkg.version}"`)
    }
    const dir = join('npm', platform)
    const sub = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    if (sub.name !== name) problems.push(`${dir}/package.json: name ${sub.name}, expected ${name}`)
    if (sub.version !== pkg.version) problems.push(`${dir}/package.json: version ${sub.version}, expected ${pkg.version}`)
    for (const file of [`${binaryName}.${platform}.node`, exe]) {
      if (!(sub.files || []).includes(file)) problems.push(`${dir}/package.json: files does not list ${file}`)
      if (!existsSync(join(dir, file))) problems.push(`${dir}/${file} is missing`)
    }
    if (!exe.endsWith('.exe') && existsSync(join(dir, exe)) && (statSync(join(dir, exe)).mode & 0o111) === 0) {
      problems.push(`${dir}/${exe} is not executable`)
    }
  }
  if (problems.length) fail(`not ready to publish:\n  ${problems.join('\n  ')}`)
  console.error(`platform-packages: ${targets.length} platform packages ready at ${pkg.version}`)
}

function smoke(args) {
  rejectUnknown(args, {})
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const { platformTriple } = require('../platform.js')
  const exe = join(root, exeName(platformTriple()))
  if (!existsSync(exe)) fail(`${exe} is missing`)
  chmodSync(exe, 0o755)
  const policy = join(root, 'policies', 'examples', 'server-everything.yaml')
  const launcher = [process.execPath, join(root, 'bin', 'intercept.js')]
  for (const [command, ...prefix] of [launcher, [exe]]) {
    const expect = (args, stdout) => {
      const r = spawnSync(command, [...prefix, ...args], { encoding: 'utf8' })
      if (r.status !== 0 || r.stdout !== stdout) {
        fail(`${command} ${[...prefix, ...args].join(' ')}: exit ${r.status}, printed ${JSON.stringify(r.stdout)}\n${r.stderr}`)
      }
    }
    expect(['--version'], `intercept ${version}\n`)
    expect(['validate', '-c', policy], 'Policy file is valid.\n')
  }
  const decision = require('../index.js').evaluate(policy, { tool: 'get-env', args: {} })
  if (decision.decision !== 'deny') fail(`the in-process API allowed a hidden tool: ${JSON.stringify(decision)}`)
  console.error(`platform-packages: ${platformTriple()} addon and ${exeName(platformTriple())} work`)
}

const [command, ...args] = process.argv.slice(2)
const commands = { build, place, check, smoke }
if (!commands[command]) fail(`usage: platform-packages.js build|place|check|smoke [options] (got ${JSON.stringify(command)})`)
commands[command](args)
