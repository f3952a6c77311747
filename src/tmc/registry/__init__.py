"""The object layer below HTTP and the controllers: which resources each workspace serves (`resources`), and the
object service that creates, reads, updates, patches and deletes them with Kubernetes semantics (`service`), through
defaulting strategies (`strategies`), validation and admission (`admission`). The API handlers and the in-process
controllers both write through it, so every write follows the same rules."""
