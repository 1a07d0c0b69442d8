"""Root conftest: runs before anything imports JAX, for the tests and the doctests in src/ alike.

Strict dtype promotion cannot be global (optax's Adam mixes int counts and floats); our own array code is
checked under it in tests/test_memories.py.
"""

import factrecall

factrecall.use_cpu_cores()
