#!/usr/bin/env node
'use strict'
// Builds the native addon from source with cargo and puts it where index.js looks first:
// intercept.<platform>.node next to index.js. `--debug` builds without optimisations.
//
// `npm run build` runs it, in a git checkout or in the installed package (the package ships
// the Rust sources). It is also the checkout's `prepare` script (`--prepare`), so `npm install`
// in a clone leaves a working addon; npm does not run `prepare` for a package installed from
// the registry, which gets its addon from the per-platform optional dependency instead.
const { spawnSync } = require('node:child_process')
const { copyFileSync, existsSync, renameSync } = require('node:fs')
const { join, resolve } = require('node:path')
const { platformTriple } = require('../platform.js')

const root = resolve(__dirname, '..')
const debug = process.argv.includes('--debug')
const prepare = process.argv.includes('--prepare')
const profile = debug ? 'debug' : 'release'

function addonLoads() {
  try {
    require(join(root, 'index.js'))
    return true
  } catch {
    return false
  }
}

const cargo = spawnSync('cargo', ['--version'], { stdio: 'ignore' })
if (cargo.error || cargo.status !== 0) {
  // Without Rust, a checkout whose addon already loads (an earlier build, or
  // INTERCEPT_NATIVE_PATH) is still usable: `prepare` leaves it as it is.
  if (prepare && addonLoads()) {
    console.error('intercept: cargo not found; keeping the native addon that already loads.')
    process.exit(0)
  }
  console.error('intercept: cannot build the native addon: cargo was not found.')
  console.error('intercept: install Rust from https://rustup.rs, then run `npm run build` in this directory.')
  process.exit(1)
}

// Measured on a 2-core machine shared with other builds: a release build from an empty target
// directory took 5 to 7.5 minutes (4.5 to 5 minutes of CPU time, most of it in the
// dependencies and the LTO link); an up-to-date build takes a second, and cargo rebuilds only
// what changed.
console.error(
  debug
    ? 'intercept: building the native addon from source with cargo (debug)...'
    : 'intercept: building the native addon from source with cargo; the first release build takes a few minutes (5 to 8 on 2 cores), later ones only rebuild what changed...',
)
// A release build names the host's triple, as `napi build` (which the release workflow uses)
// always does: both then share target/<triple>/release and build nothing twice. A debug build
// stays in target/debug, next to what `cargo test` builds.
const cargoArgs = ['build', '--lib', '--features', 'node', '--locked']
let outDir = 'debug'
if (!debug) {
  const rustc = spawnSync('rustc', ['-vV'], { encoding: 'utf8' })
  const host = /^host: (\S+)$/m.exec(rustc.stdout || '')
  if (!host) {
    console.error(`intercept: cannot tell the host's target from \`rustc -vV\` (${(rustc.error && rustc.error.message) || rustc.stderr})`)
    process.exit(1)
  }
  cargoArgs.push('--release', '--target', host[1])
  outDir = join(host[1], 'release')
}
const result = spawnSync('cargo', cargoArgs, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
if (result.error) {
  console.error(`intercept: cannot run cargo (${result.error.message}). Install Rust from https://rustup.rs and retry.`)
  process.exit(1)
}
if (result.status !== 0) process.exit(result.status || 1)

const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(root, 'target')
const libName = { win32: 'intercept.dll', darwin: 'libintercept.dylib' }[process.platform] || 'libintercept.so'
const built = join(targetDir, outDir, libName)
if (!existsSync(built)) {
  console.error(`intercept: cargo finished but ${built} is missing`)
  process.exit(1)
}
// Copy to a temporary name and rename, so a running process never loads a half-written file.
const dest = join(root, `intercept.${platformTriple()}.node`)
copyFileSync(built, `${dest}.tmp`)
renameSync(`${dest}.tmp`, dest)
console.error(`intercept: built ${dest} (${profile})`)
