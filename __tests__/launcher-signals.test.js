'use strict'
// The npm launcher owns SIGINT/SIGTERM/SIGHUP: every command, not only the proxy, must end
// on them, as the native binary does.
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn, execFileSync } = require('node:child_process')
const { openSync, closeSync, constants: fsConstants } = require('node:fs')
const { open } = require('node:fs/promises')
const { constants } = require('node:os')
const { join } = require('node:path')
const { tempDir } = require('./helpers.js')
const { LAUNCHER } = require('./mcp.js')

test(
  'validate under the launcher ends on SIGTERM and SIGINT while it is still reading its policy',
  { skip: process.platform === 'win32' && 'named pipes (mkfifo) are POSIX', timeout: 120_000 },
  async () => {
    for (const signal of ['SIGTERM', 'SIGINT']) {
      // A policy read from a pipe whose writer never finishes: validation cannot end by itself.
      const fifo = join(tempDir(), 'policy.yaml')
      execFileSync('mkfifo', [fifo])
      const child = spawn(process.execPath, [LAUNCHER, 'validate', '-c', fifo], { stdio: ['ignore', 'pipe', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (d) => {
        stderr += d
      })
      const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, signal: sig })))
      // Should intercept end without opening the pipe, open its reading end here, so that
      // the writer's open below does not wait forever.
      child.on('exit', () => {
        try {
          closeSync(openSync(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK))
        } catch {}
      })
      try {
        // Opening the writing end returns once intercept has opened the policy to read it,
        // so the launcher's signal handlers are installed and validation has begun.
        const writer = await open(fifo, 'w')
        await writer.write('tools:\n')
        child.kill(signal)
        assert.deepEqual(await exited, { code: 128 + constants.signals[signal], signal: null }, `${signal}: ${stderr}`)
        await writer.close()
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      }
    }
  },
)
