"""Tools the controller calls on a VideoMemory; defined once for the agent, SFT data and GRPO."""

from tools.toolbox import TOOL_NAMES, ToolResult, VideoToolbox, tool_schemas

__all__ = ["TOOL_NAMES", "ToolResult", "VideoToolbox", "tool_schemas"]
