"""The hub's health monitor: component states from the store's and controllers' checks and every SyncTarget."""
