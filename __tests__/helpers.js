'use strict'
const { mkdtempSync, writeFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')

const root = join(__dirname, '..')

// The audit log is on by default, in ~/.intercept/events: every intercept a test starts
// (and whatever it starts) writes to a temporary directory instead, unless a test says
// otherwise.
if (!process.env.INTERCEPT_AUDIT_DIR) process.env.INTERCEPT_AUDIT_DIR = mkdtempSync(join(tmpdir(), 'intercept-test-events-'))

/** A fresh temporary directory. */
function tempDir() {
  return mkdtempSync(join(tmpdir(), 'intercept-test-'))
}

/** Writes a file into `dir` and returns its path. */
function writeIn(dir, name, body) {
  const path = join(dir, name)
  writeFileSync(path, body)
  return path
}

module.exports = { root, tempDir, writeIn }
