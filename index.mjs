// The ESM entry point: the same API as index.js (one instance of it: this imports the
// CommonJS module rather than loading the addon a second time), with named exports that
// static analysis of index.js could not find.
import { createRequire } from 'node:module'

const api = createRequire(import.meta.url)('./index.js')

export const { Engine, validate, evaluate, run, shutdown } = api
export default api
