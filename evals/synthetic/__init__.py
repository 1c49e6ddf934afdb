"""The procedural long-video world with ground-truth event logs, and tiny local models."""
