'use strict'
// Through the npm launcher (the addon runs inside Node): the MCP server's whole process
// group stops with intercept, SIGTERM or SIGKILL, even a grandchild behind a shell that
// ignores SIGTERM and its stdin closing.
const test = require('node:test')
const assert = require('node:assert/strict')
const { existsSync, readFileSync } = require('node:fs')
const { join } = require('node:path')
const { tempDir, writeIn } = require('./helpers.js')
const { LAUNCHER, rawProcess } = require('./mcp.js')

const PATIENCE_MS = 10_000
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Whether `pid` runs; a zombie (dead, awaiting whoever adopted it) does not. */
function running(pid) {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  const stat = `/proc/${pid}/stat`
  return !(existsSync(stat) && /^\s*Z/.test(readFileSync(stat, 'utf8').split(')').pop()))
}

async function waitFor(what, check) {
  const deadline = Date.now() + PATIENCE_MS
  for (;;) {
    const value = check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`)
    await sleep(20)
  }
}

/** Starts the launcher over a shell server whose grandchild ignores SIGTERM and stdin EOF. */
async function start() {
  const dir = tempDir()
  const policy = writeIn(dir, 'policy.yaml', 'tools: {}\n')
  const pidFile = join(dir, 'grandchild.pid')
  const server = ['bash', '-c', `trap "" TERM; sleep 1000 & echo $! > '${pidFile}'; wait`]
  const args = [LAUNCHER, '-c', policy, '--state', 'memory', '--no-audit', '--shutdown-timeout', '0.5', '--', ...server]
  const proc = rawProcess(process.execPath, args)
  const grandchild = await waitFor('the server writes its pid', () => {
    const text = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : ''
    return text ? Number(text) : 0
  })
  assert.ok(running(grandchild), 'the grandchild runs')
  return { proc, grandchild }
}

async function assertGone(pid) {
  try {
    await waitFor(`the grandchild ${pid} is gone`, () => !running(pid))
  } catch (err) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
    throw err
  }
}

test('SIGTERM to the launcher stops the server’s whole process group', async () => {
  const { proc, grandchild } = await start()
  proc.child.kill('SIGTERM')
  const { code } = await proc.exited
  assert.equal(typeof code, 'number', `the launcher exits by itself; stderr:\n${proc.stderr()}`)
  await assertGone(grandchild)
})

test('SIGKILL of the launcher takes the server’s process group with it', async () => {
  const { proc, grandchild } = await start()
  proc.child.kill('SIGKILL')
  await proc.exited
  await assertGone(grandchild)
})
