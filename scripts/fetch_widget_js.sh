#!/usr/bin/env bash
# Fetch the JavaScript the book serves itself, so that its pages never load anything from a CDN.
#
#   bash scripts/fetch_widget_js.sh          # does nothing when the files are there and current
#   bash scripts/fetch_widget_js.sh --force  # fetch again
#
# What, at the exact versions pinned in book/package.json and book/package-lock.json (with
# integrity hashes, which `npm ci` checks):
#   - @jupyter-widgets/html-manager: dist/embed-amd.js (it holds the base and controls widgets)
#     and the icon fonts its CSS refers to, plus RequireJS (require.js), which loads it;
#   - MathJax 3 (es5/tex-mml-chtml.js and the components and fonts it loads on demand).
# Where: book/_extra/_static/{widgets,mathjax}/, which Sphinx copies to _static/ through
# html_extra_path (see book/_config.yml). The copies are not committed (book/.gitignore).
# Network: `npm ci` needs the npm registry, or a warm npm cache (~/.npm), the first time; later
# builds reuse the copies and never go online. To upgrade: change the versions in
# book/package.json, run `npm install --package-lock-only` in book/, then this script.
set -euo pipefail
cd "$(dirname "$0")/.."
static=book/_extra/_static
widgets=$static/widgets
mathjax=$static/mathjax
stamp=$widgets/VERSIONS.txt
lock_sum=$(sha256sum book/package-lock.json | cut -d' ' -f1)

if [[ "${1:-}" != "--force" && -f "$widgets/embed-amd.js" && -f "$widgets/require.js" \
      && -f "$mathjax/tex-mml-chtml.js" && -f "$stamp" ]] && grep -q "$lock_sum" "$stamp"; then
  exit 0
fi
command -v npm >/dev/null || {
  echo "fetch_widget_js: npm not found. Install Node.js 18 or newer (Debian: apt install npm), then rerun." >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp book/package.json book/package-lock.json "$work/"
echo "fetch_widget_js: npm ci (versions pinned in book/package-lock.json) ..."
if ! npm ci --prefix "$work" --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error; then
  echo "fetch_widget_js: npm ci failed. The first build needs the npm registry (or a warm npm" \
       "cache) once; after that the book builds offline. Behind a proxy: npm config set proxy URL." >&2
  exit 1
fi
modules=$work/node_modules

# Widgets: keep our own require-config.js, replace the rest.
find "$widgets" -maxdepth 1 -type f ! -name require-config.js -delete
cp "$modules/requirejs/require.js" "$widgets/"
cp "$modules/@jupyter-widgets/html-manager/dist/embed-amd.js" "$widgets/"
# Icon fonts (hashed names; the bundle resolves them against RequireJS's baseUrl).
cp "$modules/@jupyter-widgets/html-manager/dist/"*.{woff2,woff,ttf,eot,svg} "$widgets/"
cp "$modules/@jupyter-widgets/html-manager/dist/embed.js.LICENSE.txt" "$widgets/THIRD-PARTY-LICENSES.txt"

# MathJax: the combined TeX/MathML-to-HTML build and the folders it loads components from.
rm -rf "$mathjax"
mkdir -p "$mathjax"
cp -r "$modules/mathjax/es5/"{tex-mml-chtml.js,a11y,adaptors,input,output,sre,ui} "$mathjax/"
rm -rf "$mathjax/output/svg" "$mathjax/output/svg.js"
cp "$modules/mathjax/LICENSE" "$mathjax/LICENSE"

{
  echo "Copied by scripts/fetch_widget_js.sh from npm (book/package-lock.json sha256 $lock_sum)."
  for pkg in @jupyter-widgets/html-manager requirejs @fortawesome/fontawesome-free mathjax; do
    node -e 'const p = require(process.argv[1] + "/package.json");
             console.log(`${p.name} ${p.version}, licence ${p.license}`)' "$modules/$pkg"
  done
  echo "require.js carries its MIT licence in its header; THIRD-PARTY-LICENSES.txt lists the"
  echo "libraries bundled in embed-amd.js; the icon fonts are Font Awesome Free;"
  echo "MathJax's licence is in ../mathjax/LICENSE."
} > "$stamp"
cat "$stamp"
