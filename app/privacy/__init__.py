"""Personal data: consent per purpose, pseudonyms for user ids, erasure and export.

``pseudonym`` and the consent stores depend on nothing else in the app; ``erasure`` ties the
stores of the other packages together for ``DELETE /users/{id}`` and the export.
"""
