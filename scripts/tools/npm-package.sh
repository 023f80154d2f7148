# Sourced by the scripts that run an npm package (s3rver, @asyncapi/parser): each is installed at a pinned
# version under its own folder of .tools/.
#   npm_package_version PREFIX PACKAGE              the version installed under PREFIX, or nothing
#   npm_package_install PREFIX PACKAGE VERSION WHO  installs PACKAGE@VERSION unless that version is there

npm_package_version() {
  local package_json="$1/node_modules/$2/package.json"
  if [[ -f "$package_json" ]]; then
    node -p "require('$package_json').version"
  fi
  return 0
}

npm_package_install() {
  local prefix="$1" package="$2" version="$3" who="$4"
  if [[ "$(npm_package_version "$prefix" "$package")" != "$version" ]]; then
    command -v npm >/dev/null || { echo "$who: npm is required to install $package@$version" >&2; exit 1; }
    echo "$who: installing $package@$version into $prefix" >&2
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "$package@$version" >&2
  fi
}
