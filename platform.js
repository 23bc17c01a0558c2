'use strict'
// Which prebuilt addon fits this machine: `<platform>-<arch>[-<abi>]`, as napi-rs names them,
// and what to tell the user when none could be loaded.
const { readFileSync } = require('node:fs')

const SUPPORTED = [
  'linux-x64-gnu',
  'linux-arm64-gnu',
  'linux-x64-musl',
  'linux-arm64-musl',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
]

/** The C library Node runs on (Linux only): `{ family: 'glibc' | 'musl', version? }`. */
function linuxLibc() {
  try {
    const report = process.report && process.report.getReport()
    const header = report && (typeof report === 'string' ? JSON.parse(report).header : report.header)
    if (header) {
      return header.glibcVersionRuntime ? { family: 'glibc', version: header.glibcVersionRuntime } : { family: 'musl' }
    }
  } catch {}
  try {
    if (readFileSync('/usr/bin/ldd', 'utf8').includes('musl')) return { family: 'musl' }
  } catch {}
  return { family: 'glibc' }
}

function platformTriple() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${linuxLibc().family === 'musl' ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

/** The machine as the user would describe it, e.g. `linux x64, glibc 2.36`. */
function describePlatform() {
  const machine = `${process.platform} ${process.arch}`
  if (process.platform !== 'linux') return machine
  const libc = linuxLibc()
  return `${machine}, ${libc.family}${libc.version ? ` ${libc.version}` : ''}`
}

/**
 * The error thrown when no addon loads. `attempts` is `[{ candidate, error }]` in the order
 * they were tried (`override`: INTERCEPT_NATIVE_PATH was the only one); the message names the platform, the package that should have been
 * installed, the install flags that leave it out, and the commands that fix it.
 */
function missingAddonError({ triple, attempts, override, packageName, version, packageDir }) {
  const platformPackage = `${packageName}-${triple}`
  const lines = [`${packageName}: no usable native addon for this platform (${triple}: ${describePlatform()}).`, 'Tried:']
  let platformPackageBroken = false
  for (const { candidate, error } of attempts) {
    const missing = error && error.code === 'MODULE_NOT_FOUND' && String(error.message).includes(candidate)
    if (candidate === platformPackage && !missing) platformPackageBroken = true
    lines.push(`  - ${candidate}: ${missing ? 'not found' : (error && error.message) || error}`)
  }
  if (override) {
    lines.push('INTERCEPT_NATIVE_PATH is set, so nothing else was tried: point it at a loadable build, or unset it.')
  } else if (!SUPPORTED.includes(triple)) {
    lines.push(`No prebuilt addon is published for ${triple} (prebuilt: ${SUPPORTED.join(', ')}).`)
  } else if (platformPackageBroken) {
    lines.push(
      `${platformPackage} is installed but does not load here (the error above).`,
      `Reinstall it with \`npm install ${platformPackage}@${version}\`, or build the addon from source (below).`,
    )
  } else {
    lines.push(
      `The addon comes from the optional dependency ${platformPackage}@${version}, which is not installed.`,
      'Optional dependencies are left out by npm --omit=optional or --no-optional, pnpm --no-optional,',
      'yarn --ignore-optional, `optional=false` in .npmrc, and by a lock file written on another platform',
      '(npm/cli#4828).',
      'Fix: install it next to this package, in the same project (add -g for a global install):',
      `  npm install ${platformPackage}@${version}`,
      `  (pnpm add ${platformPackage}@${version}, yarn add ${platformPackage}@${version})`,
      'or reinstall without the flags above.',
    )
  }
  lines.push(
    `To build the addon from source instead: install Rust (https://rustup.rs), then run \`npm run build\` in ${packageDir}`,
    '(the first release build takes a few minutes).',
    'INTERCEPT_NATIVE_PATH=/path/to/intercept.node loads a specific build.',
  )
  const error = new Error(lines.join('\n'))
  error.code = 'INTERCEPT_NATIVE_MISSING'
  return error
}

module.exports = { SUPPORTED, platformTriple, describePlatform, missingAddonError }
