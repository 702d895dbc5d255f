"""Where lists are shown, built on the engine.

Public modules: ``served_lists`` (``ServedLists``: the sequence every surface runs around a
list: experiment variant, its strategy, the exposure, the explanation; used by ``/recommend``,
content blocks and the console), ``content_blocks`` (CMS slots, ``ContentBlocks``),
``content_slots`` (the slots file), ``similar`` (items like an item), ``cart`` (complements of
a cart, with ``complementary``), ``explain`` (a score split over model terms, history items and
tokens).
"""
