'use strict'
// A real redis-server for tests, on a free loopback port with a temporary directory.
// A machine without redis-server fails the tests that need it: they are never skipped.
const { spawn } = require('node:child_process')
const net = require('node:net')
const { tempDir } = require('./helpers.js')

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.on('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.on('error', () => resolve(false))
  })
}

/** Starts redis-server; `password` sets requirepass. Returns { port, url, stop, start }. */
async function startRedis({ password } = {}) {
  const port = await freePort()
  const dir = tempDir()
  let child
  const start = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']
    if (password) args.push('--requirepass', password)
    child = spawn(process.env.REDIS_SERVER || 'redis-server', args, { stdio: 'ignore' })
    const failed = new Promise((_, reject) =>
      child.on('error', (e) =>
        reject(new Error(`cannot start redis-server (${e.message}); install it, e.g. apt-get install redis-server`)),
      ),
    )
    const ready = (async () => {
      for (let i = 0; i < 500 && !(await canConnect(port)); i++) await new Promise((r) => setTimeout(r, 20))
    })()
    await Promise.race([ready, failed])
  }
  const stop = async () => {
    if (!child) return
    const exited = new Promise((resolve) => child.on('exit', resolve))
    child.kill('SIGKILL')
    await exited
    child = undefined
  }
  await start()
  const auth = password ? `:${encodeURIComponent(password)}@` : ''
  return { port, url: `redis://${auth}127.0.0.1:${port}/0`, start, stop }
}

module.exports = { startRedis }
