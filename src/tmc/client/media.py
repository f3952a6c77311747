"""Content types of the Kubernetes API, shared by every transport of the client layer."""

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
