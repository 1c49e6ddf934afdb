"""Adapters from public benchmark annotation files to the Foveate manifest."""
