#!/usr/bin/env node
'use strict'
// npm install hook. Nothing to do when an addon already loads (a prebuilt platform
// package, or an earlier build); otherwise build it from source if cargo is available.
// It never fails the install: without an addon, the first use explains what to do.
const { spawnSync } = require('node:child_process')
const { join } = require('node:path')

function addonLoads() {
  try {
    require('../index.js')
    return true
  } catch {
    return false
  }
}

if (!addonLoads()) {
  const cargo = spawnSync('cargo', ['--version'], { stdio: 'ignore' })
  if (cargo.error || cargo.status !== 0) {
    console.error('intercept: no prebuilt addon for this platform and no Rust toolchain to build one.')
    console.error('intercept: install Rust (https://rustup.rs), then run `npm run build` in this package.')
  } else {
    console.error('intercept: no prebuilt addon found; building it from source with cargo (about a minute)...')
    const build = spawnSync(process.execPath, [join(__dirname, 'build.js')], { stdio: 'inherit' })
    if (build.status !== 0 || !addonLoads()) {
      console.error('intercept: building the addon failed; see the output above.')
    }
  }
}
