"""`tmc syncer`: the agent that syncs one SyncTarget's workloads into its member cluster and their status back."""

# What `--resource-types` defaults to (kept here so the CLI can show it without importing the agent).
DEFAULT_RESOURCE_TYPES = (
    "deployments.apps",
    "statefulsets.apps",
    "daemonsets.apps",
    "jobs.batch",
    "cronjobs.batch",
    "services",
    "ingresses.networking.k8s.io",
    "configmaps",
    "secrets",
    "serviceaccounts",
)
