"""The hub's HTTP layer: TLS and authentication, URL routing (`/clusters/<workspace>/api|apis/...`), discovery,
OpenAPI, the REST handlers over the object registry, list and watch streams, and the virtual workspaces. It builds no
controllers; `tmc.server` assembles a process from it."""
