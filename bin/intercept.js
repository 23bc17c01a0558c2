#!/usr/bin/env node
'use strict'
// The `intercept` command: hands argv to the native addon and reports its exit code.
// It never writes to stdout (MCP owns it) and owns the signals, so the addon can stop
// its upstream server cleanly (a Rust signal handler inside Node would loop forever).
let native
try {
  native = require('../index.js')
} catch (err) {
  process.stderr.write(`${err.message}\n`)
  process.exitCode = 1
  return
}
// `intercept init` writes client configs that start intercept; it cannot tell from inside
// Node where this installation is, so it is told: the native `intercept` executable of the
// platform package sits next to the addon (see docs/cli.md, "How entries start intercept").
if (process.argv[2] === 'init') {
  const { realpathSync } = require('node:fs')
  const addon = Object.keys(require.cache).find((file) => file.endsWith('.node'))
  process.env.INTERCEPT_NPM_LAUNCHER = realpathSync(__filename)
  if (addon) process.env.INTERCEPT_NPM_ADDON = addon
}
// The signal's number lets a command other than the proxy end at once with 128 + signal,
// as the native binary would be ended by it.
const { signals } = require('node:os').constants
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => native.shutdown(signals[signal]))
}
native.run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    process.stderr.write(`intercept: ${(err && err.message) || err}\n`)
    process.exitCode = 1
  },
)
