"""The batch tier: builds as transactions over versioned data, rollback, status and locking."""
