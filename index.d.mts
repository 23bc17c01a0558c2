/* Types of `import … from '@policylayer/intercept'`: the named exports of index.d.ts, and the whole API as the default export. */
import * as intercept from './index.js'

export * from './index.js'
export default intercept
