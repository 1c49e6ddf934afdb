"""The controller: LangGraph loop, model backends, prompts, answers and the CLI."""
