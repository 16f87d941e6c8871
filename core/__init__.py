"""Shared vocabulary of lorag: settings, chat/chunk/citation types, prompt assembly and the CLI entry.

Everything here is light to import; heavy dependencies (torch, vllm, faiss) live behind the other packages.
"""
