"""Workspaces (kcp's logical clusters): deleting a Workspace deletes everything in it and in its descendants."""
