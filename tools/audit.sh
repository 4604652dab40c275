#!/usr/bin/env bash
# Dependency audit: pip-audit over the installed environment (sluice's runtime and dev dependencies).
#
#   tools/audit.sh            # uses .venv/bin; BIN=/path/to/venv/bin tools/audit.sh for another one
#
# Exit 0: every dependency was checked and none has a known vulnerability.
# Exit 1: vulnerabilities found (listed), or the audit itself failed for another reason.
# Exit 0 with "AUDIT SKIPPED": no vulnerability database was reachable (no network, or an index
# mirror without PyPI's JSON API). That is the one failure tolerated, and it says so loudly.
set -uo pipefail

BIN=${BIN:-.venv/bin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() {  # run <service>: pip-audit against one vulnerability service; JSON in $work/<service>.json
    "$BIN/pip-audit" --local --skip-editable --progress-spinner off --timeout 10 \
        --vulnerability-service "$1" --format json --output "$work/$1.json" 2>"$work/$1.err"
}

verdict() {  # verdict <service> <exit code>: prints a summary; returns 0 ok, 1 vulnerable, 2 unreachable
    "$BIN/python" - "$work/$1.json" "$work/$1.err" "$1" "$2" <<'EOF'
import json, re, sys
path, err_path, service, code = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
err = open(err_path, errors="replace").read()
network = re.search(r"ConnectionError|NameResolution|Max retries exceeded|timed out|Temporary failure", err)
try:
    deps = json.load(open(path))["dependencies"]
except (OSError, ValueError, KeyError):
    deps = None
if deps is None:
    if network:
        print(f"{service}: unreachable ({network.group(0)})")
        sys.exit(2)
    print(f"{service}: pip-audit failed (exit {code}):\n{err[-2000:]}")
    sys.exit(1)
vulnerable = [d for d in deps if d.get("vulns")]
checked = [d for d in deps if "skip_reason" not in d]
for d in vulnerable:
    for v in d["vulns"]:
        fixes = ", ".join(v.get("fix_versions") or []) or "no fixed version yet"
        print(f"VULNERABLE {d['name']} {d['version']}: {v['id']} (fixed in: {fixes})")
if vulnerable:
    sys.exit(1)
if not checked:  # every package "not found": the index answering has no vulnerability data
    print(f"{service}: no package could be checked ({len(deps)} skipped, e.g. {deps[0].get('skip_reason', '')[:80] if deps else ''})")
    sys.exit(2)
print(f"audited {len(checked)} packages against {service}: no known vulnerabilities"
      + (f" ({len(deps) - len(checked)} not found there)" if len(checked) < len(deps) else ""))
EOF
}

if [ ! -x "$BIN/pip-audit" ]; then
    echo "pip-audit is not installed in $BIN: pip install -e '.[dev]'" >&2
    exit 1
fi
for service in pypi osv; do
    run "$service"
    verdict "$service" $?
    case $? in
        0) exit 0 ;;
        1) exit 1 ;;
    esac
done
echo "AUDIT SKIPPED: no vulnerability database is reachable from here (no network?); run tools/audit.sh where PyPI or api.osv.dev answers"
exit 0
