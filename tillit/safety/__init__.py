"""What keeps people safe: no-trace headers, log scrubbing, validation, limits, purge."""
