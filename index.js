'use strict'
// Loads the native addon for this platform and exposes the JS API (api.js; index.mjs
// re-exports it for ESM).
// Order: INTERCEPT_NATIVE_PATH, a local build next to this file (`npm run build`),
// then the prebuilt optional dependency `@policylayer/intercept-<platform>`.
const { join } = require('node:path')
const { SUPPORTED, platformTriple } = require('./platform.js')

function loadNative() {
  const triple = platformTriple()
  const override = process.env.INTERCEPT_NATIVE_PATH
  const candidates = override
    ? [override]
    : [join(__dirname, `intercept.${triple}.node`), `@policylayer/intercept-${triple}`]
  const problems = []
  for (const candidate of candidates) {
    try {
      return require(candidate)
    } catch (err) {
      const missing = err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(candidate)
      problems.push(`  - ${candidate}: ${missing ? 'not found' : (err && err.message) || err}`)
    }
  }
  const supported = SUPPORTED.includes(triple)
  const lines = [
    `@policylayer/intercept: no usable native addon for this platform (${triple}).`,
    ...problems,
    supported
      ? `The prebuilt package @policylayer/intercept-${triple} should have been installed as an optional dependency: reinstall without --omit=optional / --no-optional / --ignore-scripts,`
      : `No prebuilt addon is published for ${triple} (prebuilt: ${SUPPORTED.join(', ')}),`,
    `or build it from source: install Rust (https://rustup.rs), then run \`npm run build\` in ${__dirname}.`,
    'INTERCEPT_NATIVE_PATH=/path/to/intercept.node loads a specific build.',
  ]
  const error = new Error(lines.join('\n'))
  error.code = 'INTERCEPT_NATIVE_MISSING'
  throw error
}

const native = loadNative()

module.exports = require('./api.js').bind(native)
