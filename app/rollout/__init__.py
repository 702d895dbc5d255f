"""Guarded model rollout: a newly built model serves a share of traffic as a challenger until a
sequential test promotes it or rolls it back; every model change gets a before/after report."""
