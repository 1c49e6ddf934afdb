"""Tools the controller calls on a VideoMemory; defined once for the agent, SFT data and GRPO."""
