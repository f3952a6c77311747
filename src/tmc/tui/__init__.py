"""`tmc dashboard`: a live Textual terminal dashboard of one hub workspace (docs/dashboard.md).

model.py holds what the watches delivered (pure, no I/O); feed.py keeps it live (one list+watch per kind, health and
metrics samplers); views.py turns it into table rows; table.py draws only the visible rows; app.py and screens.py are
the Textual parts; actions.py calls the CLI's own functions for cordon, pause, resume and force.
"""
