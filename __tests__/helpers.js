'use strict'
const { mkdtempSync, writeFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')

const root = join(__dirname, '..')

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
