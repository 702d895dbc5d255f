"""Personal data: consent per purpose, pseudonyms for user ids, erasure and export.

The names below are what the rest of the app reads (serving asks for consent and pseudonyms
through them only). ``pseudonym`` and the consent stores depend on nothing else in the app;
``erasure`` clears the stores of the other packages for ``DELETE /users/{id}`` and the export,
receiving those that belong to packages above privacy through the protocols it declares
(the composition root, ``app/bootstrap.py``, hands them in).
"""

from app.privacy.consent import ConsentUnavailable, Purpose
from app.privacy.pseudonym import Pseudonymizer
from app.privacy.service import ConsentService

__all__ = ["ConsentService", "ConsentUnavailable", "Pseudonymizer", "Purpose"]
