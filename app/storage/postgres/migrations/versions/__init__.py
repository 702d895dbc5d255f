"""One script per schema change, applied in order by ``recserve db upgrade``."""
