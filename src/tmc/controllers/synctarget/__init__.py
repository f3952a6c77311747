"""SyncTarget health (heartbeat, Ready), Location status and member-cluster metrics."""
