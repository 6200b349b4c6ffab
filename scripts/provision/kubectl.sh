# kubectl, whose built-in kustomize (`kubectl kustomize`) renders deploy/kubernetes/ for
# tests/deploy.rs, offline and with no cluster. This machine image ships it (the `kubectl`
# Debian package); Debian's own kubernetes-client (1.20) is too old for the manifests'
# kustomize features (replacements), so there is no fallback to it.
if ! command -v kubectl >/dev/null; then
    note "kubectl is missing: tests/deploy.rs needs kubectl 1.27 or later (kustomize v5) on the PATH"
    exit 1
fi
