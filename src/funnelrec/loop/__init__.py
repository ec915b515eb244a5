"""The loop: training data from the serving store, scheduled refit with a guarded swap, and
a simulator that closes the loop through the real HTTP API (see DESIGN.md, scope item 19)."""
