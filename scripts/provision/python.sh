# The Python side of the tests: a virtualenv at .venv with every tests/python/requirements-*.txt
# installed (the official openai and anthropic SDKs, redis-py, …). Tests find it through
# FAULTLINE_PYTHON, or at .venv/bin/python.
shopt -s nullglob
requirements=(tests/python/requirements-*.txt)
if [ ${#requirements[@]} -gt 0 ]; then
    if [ ! -x .venv/bin/python ]; then
        note "creating .venv"
        python3 -m venv .venv
    fi
    stamp=.venv/.requirements.sha
    wanted=$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
        note "pip install ${requirements[*]}"
        .venv/bin/python -m pip install -q --disable-pip-version-check $(printf -- '-r %s ' "${requirements[@]}")
        echo "$wanted" > "$stamp"
    fi
    export FAULTLINE_PYTHON="$PWD/.venv/bin/python"
fi
shopt -u nullglob
