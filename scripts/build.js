#!/usr/bin/env node
'use strict'
// Builds the native addon from source with cargo and puts it where index.js looks first:
// intercept.<platform>.node next to index.js. `--debug` builds without optimisations.
const { spawnSync } = require('node:child_process')
const { copyFileSync, existsSync, renameSync } = require('node:fs')
const { join, resolve } = require('node:path')
const { platformTriple } = require('../platform.js')

const root = resolve(__dirname, '..')
const debug = process.argv.includes('--debug')
const profile = debug ? 'debug' : 'release'

const cargoArgs = ['build', '--lib', '--features', 'node', '--locked']
if (!debug) cargoArgs.push('--release')
const result = spawnSync('cargo', cargoArgs, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
if (result.error) {
  console.error(`intercept: cannot run cargo (${result.error.message}). Install Rust from https://rustup.rs and retry.`)
  process.exit(1)
}
if (result.status !== 0) process.exit(result.status || 1)

const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(root, 'target')
const libName = { win32: 'intercept.dll', darwin: 'libintercept.dylib' }[process.platform] || 'libintercept.so'
const built = join(targetDir, profile, libName)
if (!existsSync(built)) {
  console.error(`intercept: cargo finished but ${built} is missing`)
  process.exit(1)
}
// Copy to a temporary name and rename, so a running process never loads a half-written file.
const dest = join(root, `intercept.${platformTriple()}.node`)
copyFileSync(built, `${dest}.tmp`)
renameSync(`${dest}.tmp`, dest)
console.error(`intercept: built ${dest} (${profile})`)
