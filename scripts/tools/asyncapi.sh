#!/usr/bin/env bash
# Validates AsyncAPI documents with @asyncapi/parser (npm), installed under .tools/ like s3rver.
# Usage: scripts/tools/asyncapi.sh install            install @asyncapi/parser unless that version is there
#        scripts/tools/asyncapi.sh validate FILE...   exit 0 when every FILE parses without an error
#                                                     (diagnostics on standard error), 1 when one does not,
#                                                     3 when the parser is not installed
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$repo_root/scripts/tools/npm-package.sh"
version="3.6.3"
prefix="$repo_root/.tools/asyncapi-parser"

install() {
  npm_package_install "$prefix" @asyncapi/parser "$version" asyncapi.sh
}

validate() {
  [[ $# -gt 0 ]] || { echo "usage: $0 validate FILE..." >&2; exit 2; }
  command -v node >/dev/null || { echo "asyncapi.sh: node is required to run @asyncapi/parser" >&2; exit 3; }
  if [[ "$(npm_package_version "$prefix" @asyncapi/parser)" != "$version" ]]; then
    echo "asyncapi.sh: @asyncapi/parser@$version is not installed under $prefix; run: scripts/tools/asyncapi.sh install" >&2
    exit 3
  fi
  node - "$prefix" "$@" <<'JS'
const [prefix, ...files] = process.argv.slice(2);
const { createRequire } = require('module');
const { Parser, DiagnosticSeverity } = createRequire(prefix + '/')('@asyncapi/parser');
const fs = require('fs');
const severities = { [DiagnosticSeverity.Error]: 'error', [DiagnosticSeverity.Warning]: 'warning', [DiagnosticSeverity.Information]: 'info', [DiagnosticSeverity.Hint]: 'hint' };
(async () => {
  let failed = false;
  for (const file of files) {
    const { document, diagnostics } = await new Parser().parse(fs.readFileSync(file, 'utf8'), { source: file });
    for (const d of diagnostics) {
      console.error(`${file}: ${severities[d.severity] ?? d.severity}: ${d.code}: ${d.message} at ${d.path.join('.') || '(root)'}`);
    }
    const errors = diagnostics.filter(d => d.severity === DiagnosticSeverity.Error).length;
    if (document === undefined || errors > 0) {
      failed = true;
      console.error(`${file}: not a valid AsyncAPI document (${errors} errors)`);
    } else {
      console.log(`${file}: valid AsyncAPI ${document.version()}, ${document.allMessages().length} messages, ${document.channels().length} channels`);
    }
  }
  process.exit(failed ? 1 : 0);
})().catch(error => { console.error(error); process.exit(1); });
JS
}

case "${1:-}" in
  install) install ;;
  validate) shift; validate "$@" ;;
  *) echo "usage: $0 install | validate FILE..." >&2; exit 2 ;;
esac
