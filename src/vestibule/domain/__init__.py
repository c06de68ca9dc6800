"""Protocol-independent domain rules of Vestibule.

Nothing here imports Django or a protocol package: these modules decide, the
Django apps persist and serve. ``emails`` normalizes and checks addresses,
``roles`` is the role catalog's rule engine, ``claims`` maps asserted claims to
an identity, and ``pipeline`` holds the login pipeline's pure decisions.
"""
