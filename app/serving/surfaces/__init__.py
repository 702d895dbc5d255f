"""Lists built on the engine for places other than ``/recommend``.

Public modules: ``content_blocks`` (CMS slots, ``ContentBlocks``), ``content_slots`` (the slots
file), ``similar`` (items like an item), ``cart`` (complements of a cart, with
``complementary``), ``explain`` (a score split over model terms, history items and tokens).
"""
