'use strict'
// Loads the native addon for this platform and exposes the JS API (api.js; index.mjs
// re-exports it for ESM).
// Order: INTERCEPT_NATIVE_PATH, a local build next to this file (`npm run build`),
// then the prebuilt optional dependency `@policylayer/intercept-<platform>`, which the
// release pins at this package's exact version. Nothing is built or fetched at install time.
const { join } = require('node:path')
const { platformTriple, missingAddonError } = require('./platform.js')

function loadNative() {
  const triple = platformTriple()
  const override = process.env.INTERCEPT_NATIVE_PATH
  const candidates = override
    ? [override]
    : [join(__dirname, `intercept.${triple}.node`), `@policylayer/intercept-${triple}`]
  const attempts = []
  for (const candidate of candidates) {
    try {
      return require(candidate)
    } catch (error) {
      attempts.push({ candidate, error })
    }
  }
  const { name, version } = require('./package.json')
  throw missingAddonError({ triple, attempts, override, packageName: name, version, packageDir: __dirname })
}

const native = loadNative()

module.exports = require('./api.js').bind(native)
