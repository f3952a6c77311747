"""Asyncio building blocks shared by everything that reconciles: the hub's controllers, the simulated cluster's and
the syncer. Nothing here knows about HTTP, the object service or the syncer protocol."""
