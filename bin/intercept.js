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
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => native.shutdown())
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
