#!/usr/bin/env node
// solc adapter: the native `solc` command line that py-solc-x and ape-solidity call, served
// by solcjs (the WebAssembly build of the same compiler, from npm).
//
// Why: this machine cannot download native solc binaries, but py-solc-x and ape-solidity
// only run executables named `solc-v<version>` in py-solc-x's install folder. The launcher
// that alliance.toolchain.ensure_solc_adapter() installs there runs this script with
// ALLIANCE_NODE_MODULES pointing at the checkout's node_modules.
//
// Supported:
//   --version                 prints the version in native solc's format
//   --standard-json           reads Standard JSON input on stdin, writes output on stdout
//   --base-path <dir>         import callback root (default: the working directory)
//   --include-path <dir>      extra import roots; node_modules is always the last one
// Accepted and ignored (solcjs has no such options; they do not change the output):
//   --allow-paths <dirs>, --output-dir/-o <dir>, --overwrite, --pretty-json
// Anything else fails like native solc does ("unrecognised option"), so a flag that
// would change the output is never silently dropped.

import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const scriptDir = path.dirname(fileURLToPath(import.meta.url))
const nodeModules = path.resolve(
  process.env.ALLIANCE_NODE_MODULES ?? path.join(scriptDir, '..', 'node_modules')
)
const require = createRequire(path.join(nodeModules, 'alliance-solc-adapter.cjs'))

const IGNORED_WITH_VALUE = new Set(['--allow-paths', '--output-dir', '-o'])
const IGNORED_FLAGS = new Set(['--overwrite', '--pretty-json', '-p'])

function fail (message) {
  process.stderr.write(`${message}\n`)
  process.exit(1)
}

function parseArguments (argv) {
  const options = { version: false, standardJson: false, basePath: null, includePaths: [] }
  for (let index = 0; index < argv.length; index += 1) {
    const [flag, inlineValue] = argv[index].split(/=(.*)/s, 2)
    const takeValue = () => {
      if (inlineValue !== undefined) return inlineValue
      index += 1
      if (index >= argv.length) fail(`option '${flag}' requires an argument`)
      return argv[index]
    }
    if (flag === '--version') options.version = true
    else if (flag === '--standard-json') options.standardJson = true
    else if (flag === '--base-path') options.basePath = takeValue()
    else if (flag === '--include-path') options.includePaths.push(takeValue())
    else if (IGNORED_WITH_VALUE.has(flag)) takeValue()
    else if (IGNORED_FLAGS.has(flag)) continue
    else if (flag === '-') continue // "read from stdin"; standard JSON always does
    else fail(`unrecognised option '${flag}'`)
  }
  return options
}

function nativeVersionString (solc) {
  // solcjs reports e.g. "0.8.30+commit.73712a01.Emscripten.clang"; tools parse the part
  // up to the commit hash, so present it the way a native Linux build does.
  const [versionAndCommit] = solc.version().match(/^\d+\.\d+\.\d+(-nightly[.\d]+)?\+commit\.[0-9a-f]+/)
  return `${versionAndCommit}.Linux.g++`
}

function makeImportCallback (basePath, includePaths) {
  const roots = [basePath, ...includePaths, nodeModules].map((root) => path.resolve(root))
  return function importCallback (sourceUnitName) {
    const candidates = path.isAbsolute(sourceUnitName)
      ? [sourceUnitName]
      : roots.map((root) => path.join(root, sourceUnitName))
    for (const candidate of candidates) {
      if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
        return { contents: fs.readFileSync(candidate, 'utf8') }
      }
    }
    return { error: `File not found in ${roots.join(', ')}: ${sourceUnitName}` }
  }
}

async function readStdin () {
  // Streamed, not fs.readFileSync(0): a pipe can be non-blocking, and a synchronous read
  // then fails with EAGAIN as soon as the writer is slower than the reader.
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

async function main () {
  const options = parseArguments(process.argv.slice(2))
  const solc = require('solc')
  if (options.version) {
    process.stdout.write(
      `solc, the solidity compiler commandline interface\nVersion: ${nativeVersionString(solc)}\n`
    )
    return
  }
  if (!options.standardJson) fail('only --version and --standard-json are supported')
  const input = await readStdin()
  const callback = makeImportCallback(options.basePath ?? process.cwd(), options.includePaths)
  // The library call (not the solcjs CLI) keeps stdout pure JSON: the CLI prints SMT
  // solver notices on stdout, which breaks the parsers on the other end.
  process.stdout.write(solc.compile(input, { import: callback }))
  process.stdout.write('\n')
}

await main()
