"""Tools the controller calls on a VideoMemory; defined once for the agent, SFT data and GRPO."""

from foveate.tools.declare import Range, ToolInputError, tool
from foveate.tools.handles import ClipHandles
from foveate.tools.toolbox import TOOL_NAMES, ToolResult, VideoToolbox, dispatch, tool_schemas, tool_signatures

__all__ = [
    "TOOL_NAMES",
    "ClipHandles",
    "Range",
    "ToolInputError",
    "ToolResult",
    "VideoToolbox",
    "dispatch",
    "tool",
    "tool_schemas",
    "tool_signatures",
]
