"""The throughput ceiling every benchmark compares against: a trivial FastAPI endpoint
returning ten items, served by uvicorn with uvloop and httptools.

    uvicorn loadtests.ceiling:app --loop uvloop --http httptools --workers N
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()

_ITEMS = [{"item_id": f"item-{i}", "score": 1.0 - i / 10} for i in range(10)]


@app.get("/recommend")
async def recommend(user_id: str, k: int = 10) -> dict[str, object]:
    return {"user_id": user_id, "items": _ITEMS[:k], "source": "static"}
