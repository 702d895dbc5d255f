"""The items a list may hold.

Public modules: ``items`` (``ItemCatalogue``, loaded from the published model), ``availability``
(operators' hidden / in-stock overrides, SQLite or Redis), ``rule_config`` (the business-rules
file: ``ItemFilter``, ``Boost``, ``BusinessRules``), ``rules`` (``ItemRules``: those rules and
overrides applied to a score vector before the top-k cut).
"""
