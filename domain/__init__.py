"""The pure core of StacksDB: entities, value objects, index algorithms and ports.

Nothing here imports a framework: only the standard library, Pydantic and NumPy.
"""
