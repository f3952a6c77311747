"""The hub's in-process controllers over the registry and the store's watch: the controller runtime and manager,
garbage collection, namespace and workspace deletion, and one subpackage each for placement, SyncTarget health and
status aggregation. They never import the HTTP layer."""
