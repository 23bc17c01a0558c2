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
