"""Foveate: agentic question answering over long videos.

The repository keeps its parts in top-level folders (``memory/``, ``tools/``, ``agent/``,
``training/``, ``evals/``); they install as ``foveate.memory``, ``foveate.tools``,
``foveate.agent``, ``foveate.training`` and ``foveate.evals``. Dependencies point down:
memory <- tools <- agent <- evals / training; only the CLI (``foveate.cli``) imports across.
"""

__version__ = "0.1.0"
