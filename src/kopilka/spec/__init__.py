"""The programme file's schema: what an operator writes, validated, one module per section.

``program`` is the whole file (``ProgramSpec``) and its own small sections; ``rules``,
``tiers`` and ``custom_events`` are the sections whose language their domains own. Pure:
Pydantic and ``kopilka.core`` only, so every domain can import the spec it runs on without
importing another domain (the shared kernel of ARCHITECTURE.md).
"""
