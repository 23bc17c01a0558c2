'use strict'
// Reads the generated policies in policies/ and renders the table of policies/README.md.
// Shared by scripts/policies.js (which writes the table) and the test that checks it.
const { readdirSync, readFileSync } = require('node:fs')
const { join } = require('node:path')

const CATEGORIES = ['Read', 'Write', 'Execute', 'Financial', 'Destructive']
const BEGIN = '<!-- catalog:begin -->'
const END = '<!-- catalog:end -->'

/**
 * What a generated policy says about itself: its header fields and, from the comment
 * line above each tool, the tool's category and risk.
 */
function describe(text) {
  const header = {}
  for (const line of text.split('\n')) {
    if (!line.startsWith('#')) break
    const m = /^# ([A-Z][a-z]+): (.*)$/.exec(line)
    if (m) header[m[1].toLowerCase()] = m[2]
  }
  const tools = []
  const re = /^ {4}# (Read|Write|Execute|Financial|Destructive) · risk (\d)\/5/
  for (const line of text.split('\n')) {
    const m = re.exec(line)
    if (m) tools.push({ category: m[1], risk: Number(m[2]) })
  }
  return { header, tools }
}

/** Generated policies (those with a `# Package:` header), sorted by file name. */
function generated(dir) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((file) => ({ file, text: readFileSync(join(dir, file), 'utf8') }))
    .map(({ file, text }) => ({ file, ...describe(text) }))
    .filter((p) => p.header.package)
}

/** The markdown table, one row per generated policy. */
function table(dir) {
  const rows = [
    `| policy | package | version | tools | ${CATEGORIES.join(' | ')} | highest risk |`,
    `|---|---|---|--:|${CATEGORIES.map(() => '--:').join('|')}|:-:|`,
  ]
  let servers = 0
  let tools = 0
  for (const p of generated(dir)) {
    const [registry, spec] = p.header.package.split(' ')
    const at = spec.lastIndexOf('@')
    const name = spec.slice(0, at)
    const version = spec.slice(at + 1)
    const counts = CATEGORIES.map((c) => p.tools.filter((t) => t.category === c).length)
    const highest = p.tools.reduce((m, t) => Math.max(m, t.risk), 0)
    rows.push(
      `| [${p.file.replace(/\.yaml$/, '')}](${p.file}) | ${registry} \`${name}\` | ${version} | ${p.tools.length} | ${counts
        .map((n) => (n ? String(n) : '·'))
        .join(' | ')} | ${highest ? `${highest}/5` : '·'} |`,
    )
    servers += 1
    tools += p.tools.length
  }
  rows.push('')
  rows.push(`${servers} servers, ${tools} tools.`)
  return rows.join('\n')
}

/** The table as it stands in a README text, between the markers. */
function tableIn(readme) {
  const a = readme.indexOf(BEGIN)
  const b = readme.indexOf(END)
  if (a < 0 || b < a) return null
  return readme.slice(a + BEGIN.length, b).trim()
}

/** The README text with its table replaced. */
function withTable(readme, body) {
  const a = readme.indexOf(BEGIN)
  const b = readme.indexOf(END)
  if (a < 0 || b < a) return `${readme.trimEnd()}\n\n${BEGIN}\n${body}\n${END}\n`
  return `${readme.slice(0, a + BEGIN.length)}\n${body}\n${readme.slice(b)}`
}

module.exports = { CATEGORIES, describe, generated, table, tableIn, withTable }
