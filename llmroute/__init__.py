"""llmroute: a command-line LLM router."""

__version__ = "0.1.0"
