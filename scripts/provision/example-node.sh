# The Node example (examples/node-express): its npm packages (npm ci, from the committed
# package-lock.json) and its TypeScript build (dist/), which its faultline.toml starts. Skipped
# when the lockfile and sources are unchanged since the last build (a stamp in node_modules/).
# Node 20 and npm come from the machine; Debian's nodejs and npm when they are missing.
command -v npm >/dev/null || apt_install nodejs npm
example_node=examples/node-express
example_node_stamp=$example_node/node_modules/.faultline-build.sha
example_node_wanted=$(cat $example_node/package-lock.json $example_node/tsconfig.json $example_node/src/*.ts | sha256sum | cut -d' ' -f1)
if [ "$(cat "$example_node_stamp" 2>/dev/null)" != "$example_node_wanted" ] || [ ! -f $example_node/dist/server.js ]; then
    note "npm ci && npm run build in $example_node"
    (cd $example_node && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
    echo "$example_node_wanted" > "$example_node_stamp"
fi
